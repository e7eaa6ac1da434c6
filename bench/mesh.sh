#!/usr/bin/env bash
# Three-node multi-master mesh under pgbench (TPC-B) on every node at once, side by side in one run with the same three
# nodes running pgbench without replication:
#   1. baseline: pgbench on each node, not replicating (each node its own copy of the data);
#   2. mesh: the same, with navette replicating every write to the two other nodes (latest wins);
#   then the time from the writers' stop until every node holds the same rows, the conflicts resolved, and a row-by-row
#   check (md5 of every table) that the three nodes are identical.
# Usage: bash bench/mesh.sh      (SCALE=10 DURATION=30 CLIENTS=2 by default; KEEP_LOGS=DIR keeps server and daemon logs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCALE=${SCALE:-10}
DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-2}
TRACK="-c track_commit_timestamp=on"

source bench/lib.sh

machine
declare -A PORT
for n in paris lyon nice; do PORT[$n]=$(start_cluster "$n" "$TRACK"); psql_at "${PORT[$n]}" -c "CREATE DATABASE bench" >/dev/null; done
pgbench_at() { "$BIN/pgbench" -h 127.0.0.1 -p "$1" -U postgres "${@:2}" bench; }

# pgbench_history has no key; several writers need one, with values that never collide between nodes.
init() {
  pgbench_at "$1" -i -q -s "$SCALE" 2>&1 | tail -1 | sed 's/^/   /'
  psql_at "$1" -d bench -c "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY; CHECKPOINT" >/dev/null
}
run_all() { # label -> prints per-node and total tps
  local out=() total=0
  for n in paris lyon nice; do pgbench_at "${PORT[$n]}" -n -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" > "$ROOT/pgbench-$1-$n.txt" 2>&1 & out+=($!); done
  for p in "${out[@]}"; do wait "$p"; done
  for n in paris lyon nice; do
    local tps; tps=$(grep -oP 'tps = \K[0-9.]+' "$ROOT/pgbench-$1-$n.txt" | head -1)
    printf '   %-6s %8.0f tps\n' "$n" "$tps"; total=$(python3 -c "print($total + $tps)")
  done
  printf '   %-6s %8.0f tps\n' "total" "$total"
  echo "$total" > "$ROOT/total-$1"
}

echo "== pgbench -i -s $SCALE on each node"
for n in paris lyon nice; do init "${PORT[$n]}"; done

echo "== 1. baseline: pgbench -c $CLIENTS -T $DURATION on the three nodes at once, no replication"
run_all baseline

echo "== 2. mesh [paris, lyon, nice]: lyon and nice copy paris, then every node writes"
for n in lyon nice; do psql_at "${PORT[$n]}" -d bench -c "TRUNCATE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history" >/dev/null; done
cat > "$ROOT/navette.yaml" <<YAML
nodes:
  paris: { conninfo: "host=127.0.0.1 port=${PORT[paris]} dbname=bench user=postgres" }
  lyon: { conninfo: "host=127.0.0.1 port=${PORT[lyon]} dbname=bench user=postgres" }
  nice: { conninfo: "host=127.0.0.1 port=${PORT[nice]} dbname=bench user=postgres" }
sets:
  pgbench:
    tables: [public.pgbench_*]
    mesh: [paris, lyon, nice]
    conflicts: latest
YAML
"${NAVETTE[@]}" sequences partition -c "$ROOT/navette.yaml" --set pgbench >/dev/null
"${NAVETTE[@]}" apply -c "$ROOT/navette.yaml" >/dev/null
"${NAVETTE[@]}" run -c "$ROOT/navette.yaml" ${KEEP_LOGS:+-v} > "$ROOT/navette.log" 2>&1 &
DAEMON=$!
"${NAVETTE[@]}" wait -c "$ROOT/navette.yaml" --timeout 600 >/dev/null
run_all mesh
t0=$(now)
"${NAVETTE[@]}" wait -c "$ROOT/navette.yaml" --timeout 1800 >/dev/null
t1=$(now); CONVERGE_S=$(elapsed "$t0" "$t1")
RSS_MB=$(( $(awk '/VmHWM/ {print $2}' /proc/$DAEMON/status) / 1024 ))

CONFLICTS=0
for n in paris lyon nice; do
  c=$(psql_at "${PORT[$n]}" -d bench -Atc "SELECT count(*) FROM navette.conflict_log"); CONFLICTS=$((CONFLICTS + c))
  echo "   conflicts resolved on $n: $c ($(psql_at "${PORT[$n]}" -d bench -Atc "SELECT coalesce(string_agg(conflict_type || ' ' || n, ', '), 'none') FROM (SELECT conflict_type, count(*) n FROM navette.conflict_log GROUP BY 1 ORDER BY 2 DESC) x"))"
done
APPLIED=$(psql_at "${PORT[paris]}" -d bench -Atc "SELECT sum(txns_applied) FROM navette.subscription")
for t in pgbench_accounts pgbench_branches pgbench_tellers pgbench_history; do
  a=$(table_md5 "${PORT[paris]}" bench "$t"); b=$(table_md5 "${PORT[lyon]}" bench "$t"); c=$(table_md5 "${PORT[nice]}" bench "$t")
  [ "$a" = "$b" ] && [ "$a" = "$c" ] || { echo "   MISMATCH in $t (paris $a lyon $b nice $c)"; exit 1; }
done
echo "   the three nodes hold identical rows in every table"

echo
echo "== results (scale $SCALE, $CLIENTS clients per node, $DURATION s)"
printf '   %-52s %8.0f tps\n' "3 nodes writing, no replication" "$(cat "$ROOT/total-baseline")"
printf '   %-52s %8.0f tps (%s of the baseline)\n' "3 nodes writing, mesh replication" "$(cat "$ROOT/total-mesh")" \
  "$(python3 -c "print(f'{$(cat "$ROOT/total-mesh") / $(cat "$ROOT/total-baseline"):.0%}')")"
printf '   %-52s %8s s\n' "writers stopped -> every node identical" "$CONVERGE_S"
printf '   %-52s %8s\n' "transactions applied on paris from lyon and nice" "$APPLIED"
printf '   %-52s %8s\n' "conflicts resolved (all nodes)" "$CONFLICTS"
printf '   %-52s %8s MB\n' "daemon peak RSS (6 subscriptions)" "$RSS_MB"
