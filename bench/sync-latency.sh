#!/usr/bin/env bash
# The per-commit cost of synchronous replication, in one run on throwaway local clusters: pgbench TPC-B on the origin
# with 1 and with 8 clients, first with the subscription asynchronous, then with synchronous: true (the origin's
# COMMIT returns only once navette has applied the transaction on the replica and the replica has flushed it).
# Both clusters run fsync=on, synchronous_commit=on.
#
# Usage: bash bench/sync-latency.sh   (SECONDS_PER_RUN=30 SCALE=10 by default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-30}
SCALE=${SCALE:-10}

source bench/lib.sh
machine
echo "   load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

ORIGIN=$(start_cluster origin)
REPLICA=$(start_cluster replica)
for p in "$ORIGIN" "$REPLICA"; do
  psql_at "$p" -c "CREATE DATABASE bench" >/dev/null
  # pgbench -i writes the same rows on both (the history table starts empty): no initial copy needed.
  "$BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$p" -U postgres bench >/dev/null 2>&1
  # pgbench_history has no key; TPC-B only inserts into it, but navette wants every table to have an identity.
  psql_at "$p" -d bench -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL" >/dev/null
done

config() { # synchronous: true|false
  cat > "$ROOT/navette.yaml" <<YAML
nodes:
  origin: { conninfo: "host=127.0.0.1 port=$ORIGIN dbname=bench user=postgres" }
  replica: { conninfo: "host=127.0.0.1 port=$REPLICA dbname=bench user=postgres" }
sets:
  bench: { tables: ["public.pgbench_*"] }
subscriptions:
  to_replica: { from: origin, to: replica, sets: [bench], initial_copy: false, synchronous: $1 }
YAML
  "${NAVETTE[@]}" apply -c "$ROOT/navette.yaml" | sed 's/^/   /'
}
start_daemon() {
  "${NAVETTE[@]}" run -c "$ROOT/navette.yaml" > "$ROOT/daemon-$1.log" 2>&1 &
  DAEMON=$!
  # Streaming (and, when synchronous, counted by the origin) before the load starts.
  for _ in $(seq 1 300); do
    state=$(psql_at "$ORIGIN" -Atc "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'navette_to_replica' AND flush_lsn IS NOT NULL")
    [ -n "$state" ] && break
    sleep 0.1
  done
  echo "   walsender navette_to_replica: sync_state ${state:-none}"
}
stop_daemon() { kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; DAEMON=; }
bench() { # mode clients
  local out
  out=$("$BIN/pgbench" -n -M prepared -c "$2" -j "$2" -T "$SECONDS_PER_RUN" -P 5 -h 127.0.0.1 -p "$ORIGIN" -U postgres bench 2>&1)
  local tps lat sd
  tps=$(echo "$out" | awk -F'= ' '/^tps = /{split($2, a, " "); print a[1]}')
  lat=$(echo "$out" | awk -F'= ' '/^latency average/{split($2, a, " "); print a[1]}')
  sd=$(echo "$out" | awk -F'= ' '/^latency stddev/{split($2, a, " "); print a[1]}')
  echo "$1 $2 $tps $lat $sd" >> "$ROOT/results"
  echo "   $1, $2 client(s): $tps tps, latency average $lat ms (stddev $sd ms)"
}

echo "== asynchronous subscription"
config false
start_daemon async
bench async 1
bench async 8
stop_daemon

echo "== synchronous subscription"
config true
psql_at "$ORIGIN" -Atc "SHOW synchronous_standby_names" | sed 's/^/   synchronous_standby_names = /'
start_daemon sync
bench sync 1
bench sync 8
"${NAVETTE[@]}" status -c "$ROOT/navette.yaml" | sed 's/^/   /' || true
"${NAVETTE[@]}" wait -c "$ROOT/navette.yaml" --timeout 120 >/dev/null
stop_daemon
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
  [ "$(table_md5 "$ORIGIN" bench $t)" = "$(table_md5 "$REPLICA" bench $t)" ] || { echo "   $t differs between origin and replica" >&2; exit 1; }
done
echo "   origin and replica hold the same rows (md5 of each pgbench table)"

echo
echo "== results: pgbench TPC-B (-M prepared, scale $SCALE, $SECONDS_PER_RUN s per run) on the origin"
python3 - "$ROOT/results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    mode, clients, tps, lat, sd = line.split()
    rows[(mode, int(clients))] = (float(tps), float(lat), float(sd) if sd else float('nan'))
print(f"   {'clients':>7} {'async tps':>10} {'async ms':>9} {'sync tps':>9} {'sync ms':>8} {'added ms/commit':>16} {'tps ratio':>10}")
for c in sorted({k[1] for k in rows}):
    a, s = rows.get(('async', c)), rows.get(('sync', c))
    if not a or not s: continue
    print(f"   {c:>7} {a[0]:>10.0f} {a[1]:>9.2f} {s[0]:>9.0f} {s[1]:>8.2f} {s[1] - a[1]:>16.2f} {s[0] / a[0]:>10.2f}")
PY
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
