#!/usr/bin/env bash
# navette compare against the plain way (dump both sides with COPY, ordered by key, and diff the files), side by side in
# one run on the same clusters: a pgbench database replicated by navette, with 1,000 rows of pgbench_accounts damaged
# on the replica (SCALE=100: 10 million rows). Both must find exactly the damaged rows.
# Usage: bash bench/compare.sh        (SCALE=100 by default; PARALLEL=N navette compare --parallel; KEEP_LOGS=DIR)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCALE=${SCALE:-100}
PARALLEL=${PARALLEL:-4}
source bench/lib.sh

machine
ORIGIN=$(start_cluster origin); REPLICA=$(start_cluster replica)
for p in $ORIGIN $REPLICA; do psql_at "$p" -c "CREATE DATABASE bench" >/dev/null; done
echo "== pgbench -i -s $SCALE on the origin, navette copies it to the replica"
"$BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$ORIGIN" -U postgres bench 2>&1 | tail -1 | sed 's/^/   /'
psql_at "$ORIGIN" -d bench -c "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY" -c "VACUUM ANALYZE" >/dev/null
"$BIN/pg_dump" -s -h 127.0.0.1 -p "$ORIGIN" -U postgres bench | psql_at "$REPLICA" -d bench >/dev/null
cat > "$ROOT/navette.yaml" <<YAML
nodes:
  origin: { conninfo: "host=127.0.0.1 port=$ORIGIN dbname=bench user=postgres" }
  replica: { conninfo: "host=127.0.0.1 port=$REPLICA dbname=bench user=postgres" }
sets:
  pgbench: { tables: [public.pgbench_*] }
subscriptions:
  bench: { from: origin, to: replica, sets: [pgbench], copy_workers: 2 }
YAML
"${NAVETTE[@]}" apply -c "$ROOT/navette.yaml" >/dev/null
"${NAVETTE[@]}" run -c "$ROOT/navette.yaml" > "$ROOT/navette.log" 2>&1 &
DAEMON=$!
"${NAVETTE[@]}" wait -c "$ROOT/navette.yaml" --timeout 1800 >/dev/null
psql_at "$REPLICA" -d bench -c "VACUUM ANALYZE" >/dev/null
ROWS=$(psql_at "$ORIGIN" -d bench -Atc "SELECT count(*) FROM pgbench_accounts")
echo "   $ROWS accounts, $(psql_at "$ORIGIN" -d bench -Atc "SELECT pg_size_pretty(pg_database_size('bench'))") on each node"

echo "== damage: 1000 rows of pgbench_accounts changed on the replica behind navette's back"
DAMAGED=$(psql_at "$REPLICA" -d bench -Atc "SET session_replication_role = replica; WITH d AS (UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % (SELECT greatest(1, count(*) / 1000) FROM pgbench_accounts) = 7 RETURNING 1) SELECT count(*) FROM d")
echo "   $DAMAGED rows damaged"

echo "== plain: COPY both sides ordered by key, diff"
t0=$(now)
DIFFS=0
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
  key=$(psql_at "$ORIGIN" -d bench -Atc "SELECT string_agg(a.attname, ', ' ORDER BY k.o) FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(n, o), pg_attribute a WHERE i.indrelid = '$t'::regclass AND i.indisprimary AND a.attrelid = i.indrelid AND a.attnum = k.n")
  psql_at "$ORIGIN" -d bench -c "COPY (SELECT * FROM $t ORDER BY $key) TO STDOUT" > "$ROOT/a.txt" & A=$!
  psql_at "$REPLICA" -d bench -c "COPY (SELECT * FROM $t ORDER BY $key) TO STDOUT" > "$ROOT/b.txt" & B=$!
  wait "$A" "$B"
  n=$( (diff "$ROOT/a.txt" "$ROOT/b.txt" || true) | grep -c '^<' || true)
  DIFFS=$((DIFFS + n))
done
t1=$(now); PLAIN_S=$(elapsed "$t0" "$t1")
rm -f "$ROOT/a.txt" "$ROOT/b.txt"
echo "   $DIFFS differing rows found in $PLAIN_S s"

echo "== navette compare (in the stream, while replication runs; --parallel $PARALLEL)"
t0=$(now)
set +e
"${NAVETTE[@]}" compare -c "$ROOT/navette.yaml" --parallel "$PARALLEL" --json > "$ROOT/compare.json" 2> "$ROOT/compare.err"
CODE=$?
set -e
t1=$(now); NAV_S=$(elapsed "$t0" "$t1")
FOUND=$(python3 -c "import json; r=json.load(open('$ROOT/compare.json')); print(sum(len(t['missing'])+len(t['extra'])+len(t['different']) for t in r))")
echo "   $FOUND differing rows found in $NAV_S s (exit code $CODE)"
[ "$FOUND" = "$DAMAGED" ] && [ "$DIFFS" = "$DAMAGED" ] || { echo "   MISMATCH: damaged $DAMAGED, plain found $DIFFS, navette found $FOUND"; cat "$ROOT/compare.err"; exit 1; }
RSS_MB=$(( $(awk '/VmHWM/ {print $2}' /proc/$DAEMON/status) / 1024 ))

echo
echo "== results ($ROWS rows in pgbench_accounts, $DAMAGED damaged)"
printf '   %-52s %8s s\n' "COPY both sides ordered by key + diff" "$PLAIN_S"
printf '   %-52s %8s s  (%sx faster)\n' "navette compare" "$NAV_S" "$(python3 -c "print(f'{$PLAIN_S / $NAV_S:.1f}')")"
printf '   %-52s %8s MB\n' "daemon peak RSS" "$RSS_MB"
