#!/usr/bin/env bash
# Navette benchmark, everything side by side in one run on throwaway local clusters:
#   1. initial copy of a pgbench database: navette (COPY under the slot's snapshot) vs pg_dump | psql
#   2. catch-up of one pgbench (TPC-B) backlog, with every consumer stopped while it is written:
#      navette vs PostgreSQL's built-in logical replication (subscription disabled, then enabled),
#      and the decoding limit (pg_recvlogical reading pgoutput from an identical slot into /dev/null).
#   3. one 5-million-row UPDATE (scale 50): time and peak RSS of each consumer;
#   then bench/steady.sh on clusters of its own: steady-state lag at a fixed rate, origin overhead, daemon memory.
# Usage: bash bench/run.sh            (SCALE=50 TXNS=20000 CLIENTS=4 COPY_WORKERS=4 by default; KEEP_LOGS=DIR keeps server and daemon logs;
#                                      STEADY=0 skips bench/steady.sh, whose settings pass through, e.g. DURATION=60)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCALE=${SCALE:-50}
TXNS=${TXNS:-20000}
CLIENTS=${CLIENTS:-4}

source bench/lib.sh

machine
ORIGIN=$(start_cluster origin); DUMP=$(start_cluster dump); NAV=$(start_cluster navette); BUILTIN=$(start_cluster builtin)
for p in $DUMP $NAV $BUILTIN; do psql_at "$p" -c "CREATE DATABASE bench" >/dev/null; done
psql_at "$ORIGIN" -c "CREATE DATABASE bench" >/dev/null

echo "== pgbench -i -s $SCALE on the origin"
"$BIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$ORIGIN" -U postgres bench 2>&1 | tail -1
psql_at "$ORIGIN" -d bench -c "ALTER TABLE pgbench_history REPLICA IDENTITY FULL; CHECKPOINT;" >/dev/null
SIZE=$(psql_at "$ORIGIN" -d bench -Atc "SELECT pg_size_pretty(pg_database_size('bench'))")
echo "   database size: $SIZE"

# --- 1. initial copy -------------------------------------------------------------------------------
echo "== initial copy"
t0=$(now)
"$BIN/pg_dump" -h 127.0.0.1 -p "$ORIGIN" -U postgres bench | psql_at "$DUMP" -d bench >/dev/null
t1=$(now); DUMP_S=$(elapsed "$t0" "$t1")
echo "   pg_dump | psql:        $DUMP_S s"

"$BIN/pg_dump" -s -h 127.0.0.1 -p "$ORIGIN" -U postgres bench | psql_at "$NAV" -d bench >/dev/null
"$BIN/pg_dump" -s -h 127.0.0.1 -p "$ORIGIN" -U postgres bench | psql_at "$BUILTIN" -d bench >/dev/null
cat > "$ROOT/navette.yaml" <<YAML
nodes:
  origin: { conninfo: "host=127.0.0.1 port=$ORIGIN dbname=bench user=postgres" }
  replica: { conninfo: "host=127.0.0.1 port=$NAV dbname=bench user=postgres" }
sets:
  pgbench: { tables: [public.pgbench_*] }
subscriptions:
  bench: { from: origin, to: replica, sets: [pgbench], copy_workers: ${COPY_WORKERS:-4} }
YAML
"${NAVETTE[@]}" apply -c "$ROOT/navette.yaml" >/dev/null
t0=$(now)
"${NAVETTE[@]}" run -c "$ROOT/navette.yaml" > "$ROOT/navette-copy.log" 2>&1 &
DAEMON=$!
until psql_at "$NAV" -d bench -Atc "SELECT state FROM navette.subscription" | grep -q streaming; do sleep 0.05; done
t1=$(now); NAV_COPY_S=$(elapsed "$t0" "$t1")
echo "   navette initial copy:  $NAV_COPY_S s (process start to streaming)"
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=

# The built-in subscription copies too (not timed here: its copy is single-connection per table and
# its sync workers are limited by max_sync_workers_per_subscription); it must be idle before the backlog.
psql_at "$ORIGIN" -d bench -c "CREATE PUBLICATION builtin_pub FOR TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history" >/dev/null
t0=$(now)
psql_at "$BUILTIN" -d bench -c "CREATE SUBSCRIPTION builtin_sub CONNECTION 'host=127.0.0.1 port=$ORIGIN dbname=bench user=postgres' PUBLICATION builtin_pub" >/dev/null
until [ "$(psql_at "$BUILTIN" -d bench -Atc "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" = 0 ]; do sleep 0.05; done
t1=$(now); BUILTIN_COPY_S=$(elapsed "$t0" "$t1")
echo "   built-in subscription copy: $BUILTIN_COPY_S s"
psql_at "$BUILTIN" -d bench -c "ALTER SUBSCRIPTION builtin_sub DISABLE" >/dev/null
psql_at "$ORIGIN" -d bench -c "SELECT pg_create_logical_replication_slot('decoding_limit', 'pgoutput')" >/dev/null
sleep 1

# --- 2. catch-up ------------------------------------------------------------------------------------
echo "== backlog: pgbench -c $CLIENTS -t $((TXNS / CLIENTS)) with every consumer stopped"
"$BIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" -t "$((TXNS / CLIENTS))" -h 127.0.0.1 -p "$ORIGIN" -U postgres bench 2>&1 | grep -E "^(number of transactions actually|tps)" | sed 's/^/   /'
# The end is read inside one last small transaction: a consumer has applied it once its progress (the end of the last
# commit applied) passes that position. WAL written after it outside any transaction (autovacuum) is a position no
# consumer's progress reaches.
END_LSN=$(psql_at "$ORIGIN" -d bench -At -c "BEGIN" -c "UPDATE pgbench_branches SET filler = filler WHERE bid = 1" -c "SELECT pg_current_wal_lsn()" -c "COMMIT")
BACKLOG=$(psql_at "$ORIGIN" -d bench -Atc "SELECT pg_size_pretty(pg_current_wal_lsn() - confirmed_flush_lsn) FROM pg_replication_slots WHERE slot_name = 'navette_bench'")
echo "   WAL backlog: $BACKLOG, ends at $END_LSN"

t0=$(now)
"$BIN/pg_recvlogical" -h 127.0.0.1 -p "$ORIGIN" -U postgres -d bench --slot decoding_limit --start \
  -o proto_version=1 -o publication_names=builtin_pub --endpos="$END_LSN" -f /dev/null --no-loop 2>/dev/null || true
t1=$(now); LIMIT_S=$(elapsed "$t0" "$t1")

t0=$(now)
"${NAVETTE[@]}" run -c "$ROOT/navette.yaml" ${KEEP_LOGS:+-v} > "$ROOT/navette-catchup.log" 2>&1 &
DAEMON=$!
until origin_past "$NAV" navette_bench "$END_LSN"; do sleep 0.05; done
t1=$(now); NAV_S=$(elapsed "$t0" "$t1")
# CPU each process spent (the machine's cores are shared by the walsender, the consumer and the target's backend).
NAV_CPU=$(cpu_s "$DAEMON")
NAV_WALSENDER_CPU=$(cpu_s "$(psql_at "$ORIGIN" -Atc "SELECT pid FROM pg_stat_replication WHERE application_name = 'navette_bench'")")
NAV_BACKEND_CPU=$(cpu_s "$(psql_at "$NAV" -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = 'navette_bench_apply'")")
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
# The daemon logs when it starts streaming: the time before that is process start-up and connections.
STREAM_AT=$(grep -m1 "streaming origin -> replica" "$ROOT/navette-catchup.log" | awk '{print $1}')
NAV_APPLY_S=$(python3 -c "
import datetime
t0 = datetime.datetime.fromtimestamp($t0, datetime.timezone.utc)
h, m, s = '$STREAM_AT'.split(':')
start = t0.replace(hour=int(h), minute=int(m), second=int(float(s)), microsecond=int(round(float(s) % 1 * 1e6)))
print(f'{$t1 - start.timestamp():.2f}')")

ORIGIN_NAME=$(psql_at "$BUILTIN" -d bench -Atc "SELECT 'pg_' || oid FROM pg_subscription WHERE subname = 'builtin_sub'")
t0=$(now)
psql_at "$BUILTIN" -d bench -c "ALTER SUBSCRIPTION builtin_sub ENABLE" >/dev/null
until origin_past "$BUILTIN" "$ORIGIN_NAME" "$END_LSN"; do sleep 0.05; done
t1=$(now); BUILTIN_S=$(elapsed "$t0" "$t1")
BUILTIN_WALSENDER_CPU=$(cpu_s "$(psql_at "$ORIGIN" -Atc "SELECT pid FROM pg_stat_replication WHERE application_name = 'builtin_sub'")")
BUILTIN_WORKER_CPU=$(cpu_s "$(psql_at "$BUILTIN" -d bench -Atc "SELECT pid FROM pg_stat_subscription WHERE subname = 'builtin_sub' AND relid IS NULL")")

for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
  a=$(table_md5 "$ORIGIN" bench "$t"); b=$(table_md5 "$NAV" bench "$t"); c=$(table_md5 "$BUILTIN" bench "$t")
  [ "$a" = "$b" ] && [ "$a" = "$c" ] || { echo "   MISMATCH in $t (origin $a navette $b built-in $c)"; exit 1; }
done
echo "   all three copies identical to the origin after catch-up"

# --- 3. one big transaction -------------------------------------------------------------------------
# A single UPDATE of every account (5 million rows at scale 50) with every consumer stopped, then each drains it alone;
# navette spills it to disk above max_transaction_memory, and the peak RSS of its process (VmHWM) is reported.
BIG_ROWS=$(psql_at "$ORIGIN" -d bench -Atc "SELECT count(*) FROM pgbench_accounts")
echo "== big transaction: one UPDATE of $BIG_ROWS rows with every consumer stopped"
psql_at "$BUILTIN" -d bench -c "ALTER SUBSCRIPTION builtin_sub DISABLE" >/dev/null
sleep 1
t0=$(now)
BIG_END=$(psql_at "$ORIGIN" -d bench -At -c "BEGIN" -c "UPDATE pgbench_accounts SET abalance = abalance + 1" -c "SELECT pg_current_wal_lsn()" -c "COMMIT")
t1=$(now); BIG_ORIGIN_S=$(elapsed "$t0" "$t1")
echo "   the UPDATE took $BIG_ORIGIN_S s on the origin; WAL ends at $BIG_END"

t0=$(now)
"$BIN/pg_recvlogical" -h 127.0.0.1 -p "$ORIGIN" -U postgres -d bench --slot decoding_limit --start \
  -o proto_version=1 -o publication_names=builtin_pub --endpos="$BIG_END" -f /dev/null --no-loop 2>/dev/null || true
t1=$(now); BIG_LIMIT_S=$(elapsed "$t0" "$t1")

t0=$(now)
"${NAVETTE[@]}" run -c "$ROOT/navette.yaml" > "$ROOT/navette-big.log" 2>&1 &
DAEMON=$!
until origin_past "$NAV" navette_bench "$BIG_END"; do sleep 0.2; done
t1=$(now); BIG_NAV_S=$(elapsed "$t0" "$t1")
BIG_NAV_HWM=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$DAEMON/status")
kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
BIG_SPILL=$(grep -m1 -o "[0-9]* changes ([0-9.]*[kMG]*B) went to a spill file" "$ROOT/navette-big.log" || echo "no spill")

t0=$(now)
psql_at "$BUILTIN" -d bench -c "ALTER SUBSCRIPTION builtin_sub ENABLE" >/dev/null
BIG_BUILTIN_HWM=0
until origin_past "$BUILTIN" "$ORIGIN_NAME" "$BIG_END"; do
  pid=$(psql_at "$BUILTIN" -d bench -Atc "SELECT pid FROM pg_stat_subscription WHERE subname = 'builtin_sub' AND relid IS NULL AND pid IS NOT NULL LIMIT 1")
  if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
    hwm=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${hwm:-0}" -gt "$BIG_BUILTIN_HWM" ] && BIG_BUILTIN_HWM=$hwm
  fi
  sleep 0.2
done
t1=$(now); BIG_BUILTIN_S=$(elapsed "$t0" "$t1")
a=$(table_md5 "$ORIGIN" bench pgbench_accounts); b=$(table_md5 "$NAV" bench pgbench_accounts); c=$(table_md5 "$BUILTIN" bench pgbench_accounts)
[ "$a" = "$b" ] && [ "$a" = "$c" ] || { echo "   MISMATCH in pgbench_accounts after the big transaction (origin $a navette $b built-in $c)"; exit 1; }
echo "   all three copies identical to the origin after the big transaction"

rate() { python3 -c "print(f'{$TXNS / $1:,.0f}')"; }
echo
echo "== results (scale $SCALE, $TXNS transactions)"
printf '   %-44s %8s s\n' "initial copy, pg_dump | psql" "$DUMP_S"
printf '   %-44s %8s s  (%sx pg_dump | psql)\n' "initial copy, navette (${COPY_WORKERS:-4} connections)" "$NAV_COPY_S" "$(python3 -c "print(f'{$DUMP_S / $NAV_COPY_S:.2f}')")"
printf '   %-44s %8s s\n' "initial copy, built-in subscription" "$BUILTIN_COPY_S"
printf '   %-44s %8s s  %8s tx/s\n' "catch-up, decoding limit (pg_recvlogical)" "$LIMIT_S" "$(rate "$LIMIT_S")"
printf '   %-44s %8s s  %8s tx/s\n' "catch-up, navette (process start to caught up)" "$NAV_S" "$(rate "$NAV_S")"
printf '   %-44s %8s s  %8s tx/s\n' "catch-up, navette (streaming start to caught up)" "$NAV_APPLY_S" "$(rate "$NAV_APPLY_S")"
printf '   %-44s %8s s  %8s tx/s\n' "catch-up, built-in (ENABLE to caught up)" "$BUILTIN_S" "$(rate "$BUILTIN_S")"
printf '   %-44s %8s s\n' "big transaction ($BIG_ROWS rows), decoding limit" "$BIG_LIMIT_S"
printf '   %-44s %8s s  peak RSS %s MB (%s)\n' "big transaction, navette (process start)" "$BIG_NAV_S" "$BIG_NAV_HWM" "$BIG_SPILL"
printf '   %-44s %8s s  apply worker peak RSS %s MB\n' "big transaction, built-in (ENABLE)" "$BIG_BUILTIN_S" "$BIG_BUILTIN_HWM"
echo "   CPU seconds during catch-up: navette process $NAV_CPU + its walsender $NAV_WALSENDER_CPU + its target backend $NAV_BACKEND_CPU;" \
     "built-in walsender $BUILTIN_WALSENDER_CPU + apply worker $BUILTIN_WORKER_CPU"
echo "   navette / built-in catch-up rate: $(python3 -c "print(f'{$BUILTIN_S / $NAV_S:.2f}')")x including navette's process start, $(python3 -c "print(f'{$BUILTIN_S / $NAV_APPLY_S:.2f}')")x from streaming start"

# --- 4. steady state, origin overhead, memory (bench/steady.sh) --------------------------------------
if [ "${STEADY:-1}" != 0 ]; then
  echo
  cleanup; trap - EXIT   # these clusters are done with: steady.sh starts its own
  # SCALE is this script's (50); steady.sh's own default (10) is kept unless STEADY_SCALE says otherwise.
  KEEP_LOGS=${KEEP_LOGS:+$KEEP_LOGS/steady} SCALE=${STEADY_SCALE:-10} exec bash bench/steady.sh
fi
