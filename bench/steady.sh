#!/usr/bin/env bash
# Navette in steady state, side by side with PostgreSQL's built-in logical replication, in one run on the same
# throwaway local clusters (one origin; navette targets nav1, nav2, nav3; the built-in subscription's own target):
#   1. commit-to-visible lag under pgbench TPC-B at a fixed rate (TPS tx/s, WARMUP s, then DURATION s measured): a
#      heartbeat row stamped on the origin every BEAT_MS, and one poller per replica (one long-lived psql each, every
#      POLL_MS) noting when it first sees each row; lag = first seen - stamp, same machine, same clock. navette (one
#      subscription, to nav1) and the built-in subscription are attached to the origin at the same time and follow the
#      same workload. The probe also polls the origin itself: that floor (commit + polling) is in every figure. The CPU
#      time of each consumer's processes during the window is reported beside;
#   2. origin overhead: unthrottled pgbench TPS on the origin (OVERHEAD_S s per run) with no consumer (slots idle),
#      with navette alone streaming, with the built-in alone streaming; each twice, in the order none, navette,
#      built-in, built-in, navette, none (a drift over the runs weighs on every mode alike), with the CPU the
#      consumer's processes used;
#   3. memory: the navette daemon's VmRSS and VmHWM, sampled every second, with three subscriptions (origin -> nav1,
#      nav2, nav3, one daemon, restarted after their copies) under the same fixed-rate workload (lag measured again);
#   then every replica must hold exactly the origin's rows (md5 of every row of every table), or the script fails.
# Usage: bash bench/steady.sh   (SCALE=10 TPS=300 CLIENTS=4 WARMUP=10 DURATION=60 OVERHEAD_S=30 OVERHEAD_CLIENTS=4
#                                BEAT_MS=50 POLL_MS=5 by default; KEEP_LOGS=DIR keeps the logs and raw figures, daemon at -v)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCALE=${SCALE:-10}
TPS=${TPS:-300}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-10}
CLIENTS=${CLIENTS:-4}
OVERHEAD_S=${OVERHEAD_S:-30}
OVERHEAD_CLIENTS=${OVERHEAD_CLIENTS:-4}
BEAT_MS=${BEAT_MS:-50}
POLL_MS=${POLL_MS:-5}
TABLES="pgbench_accounts pgbench_branches pgbench_tellers pgbench_history heartbeat"

source bench/lib.sh
keep() { [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp "$ROOT"/*.json "$ROOT"/*.txt "$ROOT"/navette.yaml "$KEEP_LOGS"/ 2>/dev/null; }
trap 'keep || true; cleanup' EXIT

machine
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "   load average at the start: $LOAD_START"
ORIGIN=$(start_cluster origin); BUILTIN=$(start_cluster builtin)
declare -A NAV
for n in nav1 nav2 nav3; do NAV[$n]=$(start_cluster "$n"); done
for p in "$ORIGIN" "$BUILTIN" "${NAV[@]}"; do psql_at "$p" -c "CREATE DATABASE bench" >/dev/null; done

echo "== pgbench -i -s $SCALE on the origin, heartbeat table, schema on the four targets"
"$BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$ORIGIN" -U postgres bench 2>&1 | tail -1 | sed 's/^/   /'
psql_at "$ORIGIN" -d bench -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" \
  -c "CREATE TABLE heartbeat (id bigint PRIMARY KEY, stamped timestamptz NOT NULL)" -c "CHECKPOINT" >/dev/null
for p in "$BUILTIN" "${NAV[@]}"; do "$BIN/pg_dump" -s -h 127.0.0.1 -p "$ORIGIN" -U postgres bench | psql_at "$p" -d bench >/dev/null; done

pgbench_at() { "$BIN/pgbench" -n -h 127.0.0.1 -p "$ORIGIN" -U postgres "$@" bench; }
position() { psql_at "$1" -d bench -Atc "SELECT (SELECT count(*) FROM pgbench_history) || ':' || (SELECT coalesce(max(id), 0) FROM heartbeat)"; }
caught_up() { # port... -> waits until each holds as many history rows and heartbeats as the origin; prints the seconds waited
  local t0 want p; t0=$(now); want=$(position "$ORIGIN")
  for p in "$@"; do
    local deadline=$((SECONDS + 600))
    until [ "$(position "$p")" = "$want" ]; do
      [ "$SECONDS" -lt "$deadline" ] || { echo "   replica on port $p did not catch up within 600 s" >&2; exit 1; }
      sleep 0.1
    done
  done
  elapsed "$t0" "$(now)"
}
write_config() { # targets...
  { echo "nodes:"
    echo "  origin: { conninfo: \"host=127.0.0.1 port=$ORIGIN dbname=bench user=postgres\" }"
    for n in "$@"; do echo "  $n: { conninfo: \"host=127.0.0.1 port=${NAV[$n]} dbname=bench user=postgres\" }"; done
    echo "sets:"
    echo "  pgbench: { tables: [public.pgbench_*, public.heartbeat] }"
    echo "subscriptions:"
    for n in "$@"; do echo "  to_$n: { from: origin, to: $n, sets: [pgbench], copy_workers: 2 }"; done
  } > "$ROOT/navette.yaml"
}
start_daemon() { # log name, targets... -> DAEMON, once every target's subscription streams
  local log=$1; shift
  "${NAVETTE[@]}" run -c "$ROOT/navette.yaml" ${KEEP_LOGS:+-v} > "$ROOT/navette-$log.log" 2>&1 &
  DAEMON=$!
  for n in "$@"; do
    until psql_at "${NAV[$n]}" -d bench -Atc "SELECT state FROM navette.subscription WHERE name = 'to_$n'" 2>/dev/null | grep -q streaming; do
      kill -0 "$DAEMON" 2>/dev/null || { echo "   navette run ended; its log:"; tail -20 "$ROOT/navette-$log.log"; exit 1; }
      sleep 0.05
    done
  done
}
stop_daemon() { kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=; }
builtin_streams() { psql_at "$ORIGIN" -Atc "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'builtin_sub'"; }
builtin_off() {
  psql_at "$BUILTIN" -d bench -c "ALTER SUBSCRIPTION builtin_sub DISABLE" >/dev/null
  until [ "$(builtin_streams)" = 0 ]; do sleep 0.05; done
}
builtin_on() {
  psql_at "$BUILTIN" -d bench -c "ALTER SUBSCRIPTION builtin_sub ENABLE" >/dev/null
  until [ "$(builtin_streams)" = 1 ]; do sleep 0.05; done
}
cpu_of() { # pid,pid... -> CPU seconds (user + system) used so far by those still running
  python3 -c "
import os, sys
t = 0
for p in filter(None, sys.argv[1].split(',')):
    try: f = open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split(); t += int(f[11]) + int(f[12])
    except OSError: pass
print(t / os.sysconf('SC_CLK_TCK'))" "$1"
}
overhead() { # label [pids of the consumer streaming] -> appends "label|tps|consumer cores" to $ROOT/overhead.txt
  psql_at "$ORIGIN" -d bench -c "CHECKPOINT" >/dev/null
  local tps c0 c1 cpu=""; c0=$(cpu_of "${2:-}")
  tps=$(pgbench_at -c "$OVERHEAD_CLIENTS" -j "$OVERHEAD_CLIENTS" -T "$OVERHEAD_S" 2>&1 | grep -oP '^tps = \K[0-9.]+' | head -1)
  c1=$(cpu_of "${2:-}")
  [ -n "${2:-}" ] && cpu=$(python3 -c "print(f'{($c1 - $c0) / $OVERHEAD_S:.2f}')")
  echo "$1|$tps|$cpu" >> "$ROOT/overhead.txt"
  printf '   %-34s %8.0f tps%s\n' "$1" "$tps" "${cpu:+   consumer CPU: $cpu cores}"
}
pids_of() { psql_at "$1" -d bench -Atc "SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity WHERE $2"; }
# The processes of each consumer: navette's daemon and every session it holds (walsenders on the origin, apply sessions
# on the targets); the built-in's walsender and apply worker.
navette_pids() { # targets, comma-separated
  local p t; p="$DAEMON,$(pids_of "$ORIGIN" "application_name LIKE 'navette%'")"
  for t in ${1//,/ }; do p+=",$(pids_of "${NAV[$t]}" "application_name LIKE 'navette%'")"; done
  echo "$p"
}
builtin_pids() { echo "$(pids_of "$ORIGIN" "application_name = 'builtin_sub'"),$(pids_of "$BUILTIN" "backend_type = 'logical replication worker'")"; }
steady_run() { # label, navette targets (comma-separated), probe replicas (NAME=PORT)... -> $ROOT/LABEL.json
  local label=$1 targets=$2; shift 2
  # The probe opens its sessions, then starts pgbench, waits WARMUP s and measures DURATION s; pgbench runs 3 s past it.
  python3 bench/lag-probe.py --origin "$ORIGIN" --seconds "$DURATION" --beat-ms "$BEAT_MS" --poll-ms "$POLL_MS" \
    --load "$BIN/pgbench -n -h 127.0.0.1 -p $ORIGIN -U postgres -R $TPS -c $CLIENTS -j 2 -T $((WARMUP + DURATION + 3)) bench" \
    --load-out "$ROOT/pgbench-$label.txt" --warmup "$WARMUP" --rss-pid "$DAEMON" --rss-skip 10 \
    --cpu "navette ($targets)=$(navette_pids "$targets")" --cpu "built-in=$(builtin_pids)" --out "$ROOT/$label.json" \
    "${@/#/--replica=}" || { echo "   the lag probe failed"; kill -0 "$DAEMON" 2>/dev/null || echo "   (the navette daemon is gone: killed from outside?)"; exit 1; }
  kill -0 "$DAEMON" 2>/dev/null || { echo "   the navette daemon ended during the run; its log:"; tail -5 "$ROOT"/navette-*.log; exit 1; }
  echo "   pgbench (warm-up included): $(grep -oP '^tps = \K[0-9.]+' "$ROOT/pgbench-$label.txt" | head -1) tps," \
       "latency average $(grep -oP '^latency average = \K[0-9.]+ ms' "$ROOT/pgbench-$label.txt")," \
       "schedule lag $(grep -oP '^rate limit schedule lag: avg \K[0-9.]+ \(max [0-9.]+\) ms' "$ROOT/pgbench-$label.txt" || echo '?')"
}

# --- initial copies ---------------------------------------------------------------------------------
echo "== navette (to_nav1) and built-in initial copies"
write_config nav1
"${NAVETTE[@]}" apply -c "$ROOT/navette.yaml" >/dev/null
start_daemon copy1 nav1; stop_daemon
psql_at "$ORIGIN" -d bench -c "CREATE PUBLICATION builtin_pub FOR TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history, heartbeat" >/dev/null
psql_at "$BUILTIN" -d bench -c "CREATE SUBSCRIPTION builtin_sub CONNECTION 'host=127.0.0.1 port=$ORIGIN dbname=bench user=postgres' PUBLICATION builtin_pub" >/dev/null
until [ "$(psql_at "$BUILTIN" -d bench -Atc "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" = 0 ]; do sleep 0.05; done
start_daemon steady1 nav1   # a fresh process: its memory figures do not include the copy
caught_up "${NAV[nav1]}" "$BUILTIN" >/dev/null
echo "   both streaming and caught up"

# --- 1. steady state ----------------------------------------------------------------------------------
echo "== 1. steady state: pgbench -R $TPS -c $CLIENTS, $WARMUP s of warm-up then $DURATION s measured; heartbeat every $BEAT_MS ms, polled every $POLL_MS ms;" \
     "navette (1 subscription) and built-in attached at once"
steady_run steady nav1 origin="$ORIGIN" navette="${NAV[nav1]}" builtin="$BUILTIN"

# --- 2. origin overhead -------------------------------------------------------------------------------
# Three modes, each run twice in the order none, navette, built-in, built-in, navette, none, so that a drift of the
# origin's throughput over the runs (tables growing, other load) weighs on every mode alike.
echo "== 2. origin overhead: pgbench -c $OVERHEAD_CLIENTS -j $OVERHEAD_CLIENTS -T $OVERHEAD_S, with no consumer or one streaming"
caught_up "${NAV[nav1]}" "$BUILTIN" >/dev/null
stop_daemon; builtin_off
for mode in none navette builtin builtin navette none; do
  case $mode in
    none) [ -z "$DAEMON" ] || stop_daemon; builtin_off
          overhead "no consumer" ;;
    navette) builtin_off; [ -n "$DAEMON" ] || start_daemon "overhead-$SECONDS" nav1; caught_up "${NAV[nav1]}" >/dev/null
             overhead "navette streaming" "$(navette_pids nav1)"
             echo "      caught up $(caught_up "${NAV[nav1]}") s after the run" ;;
    builtin) [ -z "$DAEMON" ] || stop_daemon; builtin_on; caught_up "$BUILTIN" >/dev/null
             overhead "built-in streaming" "$(builtin_pids)"
             echo "      caught up $(caught_up "$BUILTIN") s after the run" ;;
  esac
done
builtin_on

# --- 3. memory with three subscriptions -----------------------------------------------------------------
echo "== 3. memory: one daemon, three subscriptions (to_nav1, to_nav2, to_nav3), same fixed-rate workload"
write_config nav1 nav2 nav3
"${NAVETTE[@]}" apply -c "$ROOT/navette.yaml" >/dev/null
start_daemon copy3 nav1 nav2 nav3; stop_daemon
start_daemon steady3 nav1 nav2 nav3
caught_up "${NAV[nav1]}" "${NAV[nav2]}" "${NAV[nav3]}" "$BUILTIN" >/dev/null
steady_run memory nav1,nav2,nav3 origin="$ORIGIN" nav1="${NAV[nav1]}" nav2="${NAV[nav2]}" nav3="${NAV[nav3]}" builtin="$BUILTIN"

# --- check ----------------------------------------------------------------------------------------------
caught_up "${NAV[nav1]}" "${NAV[nav2]}" "${NAV[nav3]}" "$BUILTIN" >/dev/null
stop_daemon
for t in $TABLES; do
  a=$(table_md5 "$ORIGIN" bench "$t")
  for p in "${NAV[nav1]}" "${NAV[nav2]}" "${NAV[nav3]}" "$BUILTIN"; do
    b=$(table_md5 "$p" bench "$t")
    [ "$a" = "$b" ] || { echo "   MISMATCH in $t on the replica on port $p (origin $a, replica $b)"; exit 1; }
  done
done
ROWS=$(psql_at "$ORIGIN" -d bench -Atc "SELECT (SELECT count(*) FROM pgbench_history) || ' history rows, ' || (SELECT count(*) FROM heartbeat) || ' heartbeats'")
echo "   the four replicas are identical to the origin in every table ($ROWS)"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "== results (scale $SCALE; load average $LOAD_START at the start, $LOAD_END at the end)"
python3 - "$ROOT" "$TPS" "$DURATION" <<'PY'
import json, sys
root, tps, duration = sys.argv[1], sys.argv[2], sys.argv[3]
steady, memory = json.load(open(f"{root}/steady.json")), json.load(open(f"{root}/memory.json"))
def ratio(a, b): return f"{a / b:.2f}x" if b else "-"
print(f"   1. commit-to-visible lag, pgbench at {tps} tx/s, {duration} s measured, {steady['beats']} heartbeats "
      f"(both consumers attached at once; the origin ran {steady['cpu']['transactions'] / steady['cpu']['seconds']:.0f} tx/s in the window)")
print(f"      {'':<28} {'p50':>9} {'p99':>9} {'max':>9}")
r = steady["replicas"]
for name, label in (("navette", "navette"), ("builtin", "built-in")):
    v = r[name]
    print(f"      {label:<28} {v['p50_ms']:6.1f} ms {v['p99_ms']:6.1f} ms {v['max_ms']:6.1f} ms")
n, b = r["navette"], r["builtin"]
print(f"      {'navette / built-in':<28} {ratio(n['p50_ms'], b['p50_ms']):>9} {ratio(n['p99_ms'], b['p99_ms']):>9} {ratio(n['max_ms'], b['max_ms']):>9}")
o = r["origin"]
print(f"      {'probe floor (origin itself)':<28} {o['p50_ms']:6.1f} ms {o['p99_ms']:6.1f} ms {o['max_ms']:6.1f} ms")
c = steady["cpu"]
cn, cb = c["by"]["navette (nav1)"], c["by"]["built-in"]
print(f"      consumer CPU per origin transaction: navette {cn['ms_per_txn']:.3f} ms, built-in {cb['ms_per_txn']:.3f} ms "
      f"({ratio(cn['ms_per_txn'], cb['ms_per_txn'])}; daemon + walsender + apply sessions, {c['transactions']} transactions)")
rows = [l.split("|") for l in open(f"{root}/overhead.txt").read().splitlines()]
modes = {}
for k, v, cores in rows:
    modes.setdefault(k, []).append((float(v), float(cores) if cores else None))
mean = {k: sum(t for t, _ in v) / len(v) for k, v in modes.items()}
base = mean["no consumer"]
print(f"   2. origin throughput, unthrottled pgbench {len(rows)} runs (each mode twice, mirrored order); "
      f"reference: no consumer, {base:.0f} tps")
for k, v in modes.items():
    cores = [c for _, c in v if c is not None]
    print(f"      {k:<22} {mean[k]:6.0f} tps  {mean[k] / base:6.1%}   runs: " + ", ".join(f"{t:.0f}" for t, _ in v)
          + (f"; consumer processes {sum(cores) / len(cores):.2f} cores" if cores else ""))
print(f"      navette / built-in: {ratio(mean['navette streaming'], mean['built-in streaming'])}")
rss = memory["rss"]
print(f"   3. navette daemon memory, 3 subscriptions, pgbench at {tps} tx/s, {duration} s measured "
      f"(the origin ran {memory['cpu']['transactions'] / memory['cpu']['seconds']:.0f} tx/s in the window)")
print(f"      steady VmRSS (median from 10 s)  {rss['steady_median_kb'] / 1024:6.0f} MB   (from 10 s after the load started)")
print(f"      peak VmRSS sample                {rss['peak_rss_kb'] / 1024:6.0f} MB")
print(f"      VmHWM (process lifetime peak)    {rss['hwm_kb'] / 1024:6.0f} MB")
one = steady["rss"]
print(f"      (1 subscription, run 1: median {one['steady_median_kb'] / 1024:.0f} MB, VmHWM {one['hwm_kb'] / 1024:.0f} MB)")
m = memory["replicas"]
print("      lag during this run: " + ", ".join(f"{k} p50 {v['p50_ms']:.1f} / p99 {v['p99_ms']:.1f} / max {v['max_ms']:.1f} ms"
                                           for k, v in m.items() if k != "origin"))
c = memory["cpu"]
print("      consumer CPU per origin transaction: " + ", ".join(f"{k} {v['ms_per_txn']:.3f} ms" for k, v in c["by"].items()))
PY
