#!/usr/bin/env bash
# How long writes are unavailable during `navette switchover`, in one run on throwaway local clusters: an origin and
# two replicas (pgbench tables, pgbench_history given a bigserial key so a sequence has to follow the origin), the
# daemon running, then ROUNDS switchovers a -> b and back while idle, and ROUNDS under a pgbench TPC-B load at TPS
# transactions/s. The window is what navette prints: from the old origin's ALTER DATABASE ... read-only to the new
# origin's RESET (the time no node accepts a client's write). Afterwards every table is compared between the nodes.
#
# Usage: bash bench/switchover.sh   (ROUNDS=3 TPS=200 by default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-3}
TPS=${TPS:-200}

source bench/lib.sh
PGBENCH=
trap '[ -n "$PGBENCH" ] && kill "$PGBENCH" 2>/dev/null; cleanup' EXIT

machine
echo "   load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

A=$(start_cluster a); B=$(start_cluster b); C=$(start_cluster c)
for p in $A $B $C; do psql_at "$p" -c "CREATE DATABASE bench" >/dev/null; done
"$BIN/pgbench" -i -q -s 10 -h 127.0.0.1 -p "$A" -U postgres bench >/dev/null 2>&1
psql_at "$A" -d bench -c "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY" >/dev/null
for p in $B $C; do "$BIN/pg_dump" -s -h 127.0.0.1 -p "$A" -U postgres bench | psql_at "$p" -d bench >/dev/null; done

cat > "$ROOT/navette.yaml" <<YAML
nodes:
  a: { conninfo: "host=127.0.0.1 port=$A dbname=bench user=postgres" }
  b: { conninfo: "host=127.0.0.1 port=$B dbname=bench user=postgres" }
  c: { conninfo: "host=127.0.0.1 port=$C dbname=bench user=postgres" }
sets:
  bench: { tables: [public.pgbench_accounts, public.pgbench_branches, public.pgbench_tellers, public.pgbench_history] }
subscriptions:
  a_to_b: { from: a, to: b, sets: [bench] }
  a_to_c: { from: a, to: c, sets: [bench] }
YAML
"${NAVETTE[@]}" apply -c "$ROOT/navette.yaml" >/dev/null
"${NAVETTE[@]}" run -c "$ROOT/navette.yaml" > "$ROOT/daemon.log" 2>&1 &
DAEMON=$!
"${NAVETTE[@]}" wait -c "$ROOT/navette.yaml" --timeout 300 >/dev/null
port_of() { case $1 in a) echo "$A";; b) echo "$B";; c) echo "$C";; esac; }

switch() { # phase to -> appends "phase window" to samples
  local out
  out=$("${NAVETTE[@]}" switchover -c "$ROOT/navette.yaml" --to "$2" --grace 5 2>&1) || { echo "$out"; exit 1; }
  local w; w=$(echo "$out" | sed -n 's/.*writes were unavailable for \([0-9.]*\) s.*/\1/p' | tail -1)
  echo "   $1: switchover to $2: $w s"
  echo "$1 $w" >> "$ROOT/samples"
}

echo "== idle: $ROUNDS switchovers a -> b and $ROUNDS back"
for i in $(seq "$ROUNDS"); do switch idle b; sleep 2; switch idle a; sleep 2; done

echo "== under pgbench TPC-B at $TPS tx/s (2 clients on the origin): $ROUNDS switchovers each way"
for i in $(seq "$ROUNDS"); do
  for to in b a; do
    from=$([ "$to" = b ] && echo a || echo b)
    "$BIN/pgbench" -n -R "$TPS" -c 2 -j 2 -T 600 -h 127.0.0.1 -p "$(port_of "$from")" -U postgres bench > "$ROOT/pgbench.log" 2>&1 &
    PGBENCH=$!
    sleep 8
    switch load "$to"
    # pgbench's clients end when their origin turns read-only; any left are stopped here.
    kill "$PGBENCH" 2>/dev/null || true; wait "$PGBENCH" 2>/dev/null || true; PGBENCH=
    sleep 2
  done
done

"${NAVETTE[@]}" wait -c "$ROOT/navette.yaml" --timeout 120 >/dev/null
echo "== tables compared between the nodes (md5 of every row, ordered)"
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
  ma=$(table_md5 "$A" bench "$t"); mb=$(table_md5 "$B" bench "$t"); mc=$(table_md5 "$C" bench "$t")
  n=$(psql_at "$A" -d bench -Atc "SELECT count(*) FROM $t")
  [ "$ma" = "$mb" ] && [ "$ma" = "$mc" ] && echo "   $t: identical on a, b, c ($n rows)" || { echo "   $t: DIFFERS ($ma $mb $mc)"; exit 1; }
done
echo "== navette apply afterwards: $("${NAVETTE[@]}" apply -c "$ROOT/navette.yaml" | head -1)"

echo "== write-unavailability window (s)"
python3 - "$ROOT/samples" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
for phase in ("idle", "load"):
    v = sorted(float(w) for p, w in rows if p == phase)
    if v:
        print(f"   {phase:5} n={len(v)}  median {statistics.median(v):.2f}  min {v[0]:.2f}  max {v[-1]:.2f}")
PY
