#!/usr/bin/env python3
"""Commit-to-visible lag probe for bench/steady.sh (standard library only: every session is one long-lived psql).

    lag-probe.py --origin PORT --replica NAME=PORT [--replica ...] --seconds N [--beat-ms 50] [--poll-ms 5]
                 [--load 'COMMAND ...' --load-out FILE [--warmup S]] [--rss-pid PID] [--rss-skip S]
                 [--cpu LABEL=PID,PID...] [--out FILE.json]

Once every session is open, the --load command (pgbench) is started, and after --warmup seconds the measured window
of --seconds begins:

- writer: one psql session on the origin inserts heartbeat(id, clock_timestamp()) every --beat-ms, on a fixed
  schedule (autocommit: each row its own transaction; the stamp is taken in the INSERT, so the lag also contains
  the origin's own commit, a WAL flush);
- one poller per replica: one psql session asked, every --poll-ms, for the heartbeat ids above the last one it saw,
  with that replica's clock_timestamp() (same machine, same clock as the stamps); an id's first-seen time is the
  first answer that contains it;
- with --rss-pid, VmRSS and VmHWM of that process read from /proc every second from the load's start;
- with --cpu, the CPU time (user + system) the listed processes used between the first and the last heartbeat, summed
  per label, and the origin's transactions meanwhile (pgbench_history rows: one per pgbench transaction).
After --seconds the writer stops; the pollers keep going until they saw the last id (60 s at most). The stamps are
then read back from the origin and lag = first seen - stamp. Prints one line per replica and writes every figure to
--out as JSON. Exit 1 if a replica never showed an id.
"""
import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import threading
import time


def psql(port):
    return subprocess.Popen(
        ["psql", "-X", "-q", "-At", "-F", " ", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
         "-U", "postgres", "-d", "bench"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)


def ask(session, sql):
    session.stdin.write(sql + "\n")
    session.stdin.flush()
    line = session.stdout.readline()
    if not line:
        raise RuntimeError(f"psql ended while answering: {sql}")
    return line.rstrip("\n")


def percentile(sorted_values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, min(len(sorted_values), math.ceil(p / 100 * len(sorted_values))) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--origin", type=int, required=True)
    ap.add_argument("--replica", action="append", required=True, help="NAME=PORT")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--beat-ms", type=float, default=50)
    ap.add_argument("--poll-ms", type=float, default=5)
    ap.add_argument("--load", help="command started once every session is open (its output goes to --load-out)")
    ap.add_argument("--load-out")
    ap.add_argument("--warmup", type=float, default=0, help="seconds between the load's start and the window's")
    ap.add_argument("--rss-pid", type=int)
    ap.add_argument("--rss-skip", type=float, default=10, help="seconds after the load's start left out of the steady RSS median")
    ap.add_argument("--cpu", action="append", default=[], help="LABEL=PID,PID...")
    ap.add_argument("--out")
    args = ap.parse_args()
    replicas = [(r.split("=", 1)[0], int(r.split("=", 1)[1])) for r in args.replica]
    cpu_pids = [(c.split("=", 1)[0], [int(x) for x in c.split("=", 1)[1].split(",") if x]) for c in args.cpu]
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds():
        r = {}
        for label, pids in cpu_pids:
            total = 0.0
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / tick
                except OSError:
                    pass  # a session that ended: its time is not counted
            r[label] = total
        return r

    origin = psql(args.origin)
    first_id = int(ask(origin, "SELECT coalesce(max(id), 0) + 1 FROM heartbeat;"))
    last_written = [first_id - 1]
    writing = threading.Event()
    writing.set()
    written = threading.Event()  # set once the writer has stopped: last_written is final
    seen = {name: {} for name, _ in replicas}
    polls = {name: 0 for name, _ in replicas}
    errors = []
    # Every poller has its session open and has asked once before the load starts; the writer starts the window.
    ready = threading.Barrier(len(replicas) + 1)  # pollers, main
    go = threading.Event()
    loaded = threading.Event()  # the load has started (the RSS samples count from there)

    window = {}

    def writer():
        go.wait()
        if not writing.is_set():
            return
        try:
            window["txns0"], window["cpu0"], window["start"] = int(ask(origin, "SELECT count(*) FROM pgbench_history;")), cpu_seconds(), time.time()
            i, start = first_id, time.monotonic()
            while writing.is_set():
                # RETURNING makes psql answer once the row is committed, so last_written only holds committed ids.
                ask(origin, f"INSERT INTO heartbeat VALUES ({i}, clock_timestamp()) RETURNING id;")
                last_written[0] = i
                i += 1
                delay = start + (i - first_id) * args.beat_ms / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            window["txns1"], window["cpu1"] = int(ask(origin, "SELECT count(*) FROM pgbench_history;")), cpu_seconds()
            window["seconds"] = time.monotonic() - start
        except Exception as e:  # reported below, the run fails
            errors.append(f"writer: {e}")

    def poller(name, port):
        try:
            s = psql(port)
            ask(s, "SELECT 1;")
            ready.wait()
            last, mine = first_id - 1, seen[name]
            deadline = None
            while True:
                line = ask(s, f"SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '-'), "
                              f"extract(epoch FROM clock_timestamp()) FROM heartbeat WHERE id > {last};")
                ids, at = line.split(" ")
                polls[name] += 1
                if ids != "-":
                    for x in ids.split(","):
                        mine.setdefault(int(x), float(at))
                    last = max(last, int(ids.rsplit(",", 1)[-1]))
                if written.is_set():
                    deadline = deadline or time.monotonic() + 60
                    if last >= last_written[0] or time.monotonic() > deadline:
                        break
                time.sleep(args.poll_ms / 1000)
            s.stdin.close()
            s.wait()
        except Exception as e:  # reported below, the run fails
            errors.append(f"{name}: {e}")
            ready.abort()

    rss = []

    def rss_sampler():
        loaded.wait()
        t0 = time.monotonic()
        while writing.is_set():
            try:
                with open(f"/proc/{args.rss_pid}/status") as f:
                    fields = dict(l.split(":", 1) for l in f if l.startswith(("VmRSS", "VmHWM")))
                rss.append((round(time.monotonic() - t0, 1), int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])))
            except (OSError, KeyError) as e:
                errors.append(f"rss: {e}")
                return
            time.sleep(1)

    threads = [threading.Thread(target=poller, args=r) for r in replicas]
    threads.append(threading.Thread(target=writer))
    if args.rss_pid:
        threads.append(threading.Thread(target=rss_sampler))
    for t in threads:
        t.start()
    load = None
    try:
        ready.wait(timeout=60)
        if args.load:
            load = subprocess.Popen(shlex.split(args.load), stdout=open(args.load_out or os.devnull, "w"), stderr=subprocess.STDOUT)
        loaded.set()
        time.sleep(args.warmup)
    except threading.BrokenBarrierError:
        errors.append("a poller could not start")
    if errors:
        writing.clear()
    loaded.set()
    go.set()
    time.sleep(args.seconds if not errors else 0)
    writing.clear()
    threads[len(replicas)].join()  # the writer
    written.set()
    for t in threads:
        t.join()
    if load is not None and load.wait() != 0:
        errors.append(f"the load command ended with exit code {load.returncode}")

    stamps = {}
    origin.stdin.write(f"SELECT id, extract(epoch FROM stamped) FROM heartbeat WHERE id BETWEEN {first_id} AND {last_written[0]} ORDER BY id;\n"
                       "SELECT 'end';\n")
    origin.stdin.flush()
    for line in origin.stdout:
        if line.strip() == "end":
            break
        i, at = line.split()
        stamps[int(i)] = float(at)
    origin.stdin.close()
    origin.wait()

    result = {"beats": len(stamps), "beat_ms": args.beat_ms, "poll_ms": args.poll_ms, "seconds": args.seconds, "replicas": {},
              # every heartbeat: [id, stamp (epoch s), first seen on each replica in --replica order (null: never)]
              "raw": [[i, stamps[i]] + [seen[name].get(i) for name, _ in replicas] for i in sorted(stamps)]}
    for name, _ in replicas:
        lags = sorted((seen[name][i] - stamps[i]) * 1000 for i in stamps if i in seen[name])
        missing = len(stamps) - len(lags)
        r = {"samples": len(lags), "missing": missing, "polls": polls[name],
             "p50_ms": percentile(lags, 50), "p99_ms": percentile(lags, 99), "max_ms": lags[-1] if lags else float("nan"),
             "mean_ms": statistics.mean(lags) if lags else float("nan"), "min_ms": lags[0] if lags else float("nan")}
        result["replicas"][name] = r
        if missing:
            errors.append(f"{name}: {missing} of {len(stamps)} heartbeats never seen")
        print(f"   lag {name:<10} {r['samples']:>5} beats  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
              f"max {r['max_ms']:7.1f} ms  (min {r['min_ms']:.1f}, mean {r['mean_ms']:.1f}; {polls[name]} polls)")
    if args.rss_pid:
        steady = [kb for t, kb, _ in rss if t >= args.rss_skip] or [kb for _, kb, _ in rss]  # a window shorter than the skip: all
        result["rss"] = {"samples": rss, "steady_median_kb": statistics.median(steady) if steady else None,
                         "peak_rss_kb": max((kb for _, kb, _ in rss), default=None), "hwm_kb": rss[-1][2] if rss else None}
        if steady:
            print(f"   daemon RSS: median {statistics.median(steady) / 1024:.0f} MB (samples from {args.rss_skip:g} s after the load started), "
                  f"peak sample {result['rss']['peak_rss_kb'] / 1024:.0f} MB, VmHWM {result['rss']['hwm_kb'] / 1024:.0f} MB")
    if cpu_pids and "cpu1" in window:
        txns = window["txns1"] - window["txns0"]
        result["cpu"] = {"transactions": txns, "seconds": window["seconds"], "start": window["start"], "by": {}}
        for label, _ in cpu_pids:
            used = window["cpu1"][label] - window["cpu0"][label]
            result["cpu"]["by"][label] = {"cpu_s": used, "ms_per_txn": used * 1000 / txns if txns else float("nan")}
            print(f"   cpu {label:<34} {used:6.2f} s  ({used / window['seconds']:5.1%} of a core, "
                  f"{used * 1000 / max(txns, 1):.3f} ms per origin transaction; {txns} transactions)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f)
    for e in errors:
        print(f"   PROBE ERROR {e}")
    raise SystemExit(1 if errors else 0)


if __name__ == "__main__":
    main()
