#!/usr/bin/env bash
# How far behind PostgreSQL's physical standbys are, made and watched with navette, in one run on throwaway
# local clusters: a streaming standby and a warm (archive) standby of the same primary, under the same light
# OLTP load, first with archive_timeout = 30s, then 5s.
#
# The figure is the standby's staleness: a heartbeat row is inserted on the primary every 100 ms, and twice a
# second each (hot) standby is asked how old its newest heartbeat is. That age is what a failover at that moment
# would lose, i.e. the data-loss window.
#
# Usage: bash bench/standby-lag.sh   (TPS=100 SECONDS_30=120 SECONDS_5=60 by default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TPS=${TPS:-100}
SECONDS_30=${SECONDS_30:-120}
SECONDS_5=${SECONDS_5:-60}

source bench/lib.sh
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup' EXIT

machine
echo "   load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

# Not lib.sh's start_cluster: its settings are command-line options, which a standby's copy would not have.
PRIMARY=$(free_port)
"${AS_PG[@]}" "$BIN/initdb" -D "$ROOT/pg-primary" -U postgres --auth=trust -E UTF8 >/dev/null
cat >> "$ROOT/pg-primary/postgresql.conf" <<CONF
port = $PRIMARY
listen_addresses = '127.0.0.1'
unix_socket_directories = '$ROOT'
fsync = on
synchronous_commit = on
shared_buffers = 256MB
max_wal_size = 2GB
archive_mode = on
CONF
"${AS_PG[@]}" "$BIN/pg_ctl" -D "$ROOT/pg-primary" -l "$ROOT/pg-primary.log" -w start >/dev/null
psql_at "$PRIMARY" -c "CREATE DATABASE bench" >/dev/null
psql_at "$PRIMARY" -d bench -c "CREATE TABLE heartbeat (at timestamptz NOT NULL)" >/dev/null
"$BIN/pgbench" -i -q -s 10 -h 127.0.0.1 -p "$PRIMARY" -U postgres bench >/dev/null 2>&1

cat > "$ROOT/navette.yaml" <<YAML
nodes:
  primary: { conninfo: "host=127.0.0.1 port=$PRIMARY dbname=bench user=postgres" }
YAML
STREAMING=$(free_port); WARM=$(free_port)
echo "== navette standby create (streaming, hot, slot)"
"${NAVETTE[@]}" standby create -c "$ROOT/navette.yaml" --from primary --name streaming --pgdata "$ROOT/pg-streaming" --port "$STREAMING" \
  --mode streaming --hot --slot | sed 's/^/   /'
echo "== navette standby create (archive, hot so that it can be asked; archive_timeout 30 s)"
"${NAVETTE[@]}" standby create -c "$ROOT/navette.yaml" --from primary --name warm --pgdata "$ROOT/pg-warm" --port "$WARM" \
  --mode archive --hot --archive "$ROOT/archive" --archive-timeout 30 | sed 's/^/   /'

# The load: pgbench TPC-B at a fixed rate, and the heartbeat (one psql session fed a row every 100 ms).
TOTAL=$((SECONDS_30 + SECONDS_5 + 90))
"$BIN/pgbench" -n -R "$TPS" -c 2 -j 2 -T "$TOTAL" -h 127.0.0.1 -p "$PRIMARY" -U postgres bench > "$ROOT/pgbench.log" 2>&1 &
PIDS+=($!)
( while :; do echo "INSERT INTO heartbeat VALUES (clock_timestamp());"; sleep 0.1; done ) | psql_at "$PRIMARY" -d bench >/dev/null 2>&1 &
PIDS+=($!)

sample() { # phase seconds -> appends "phase standby age" lines, and "phase wal bytes/s segments/min"
  local phase=$1 seconds=$2 end=$((SECONDS + $2)) wal0 wal1 seg0 seg1  # wal*: bytes written (pg_stat_wal)
  wal0=$(psql_at "$PRIMARY" -Atc "SELECT wal_bytes FROM pg_stat_wal")
  seg0=$(ls "$ROOT/archive" | grep -cE '^[0-9A-F]{24}$' || true)
  while [ "$SECONDS" -lt "$end" ]; do
    for s in streaming:$STREAMING warm:$WARM; do
      age=$(psql_at "${s#*:}" -d bench -Atc "SELECT extract(epoch FROM clock_timestamp() - max(at)) FROM heartbeat" 2>/dev/null || echo "")
      [ -n "$age" ] && echo "$phase ${s%%:*} $age" >> "$ROOT/samples"
    done
    sleep 0.5
  done
  wal1=$(psql_at "$PRIMARY" -Atc "SELECT wal_bytes FROM pg_stat_wal")
  seg1=$(ls "$ROOT/archive" | grep -cE '^[0-9A-F]{24}$' || true)
  echo "$phase wal $(( (wal1 - wal0) / seconds )) $(python3 -c "print(round(($seg1 - $seg0) * 60 / $seconds, 1))")" >> "$ROOT/samples"
}

echo "== archive_timeout = 30s: settling for 35 s, then sampling for $SECONDS_30 s"
sleep 35
sample 30s "$SECONDS_30"
"${NAVETTE[@]}" standby status -c "$ROOT/navette.yaml" | sed 's/^/   /' || true

echo "== archive_timeout = 5s: settling for 10 s, then sampling for $SECONDS_5 s"
psql_at "$PRIMARY" -c "ALTER SYSTEM SET archive_timeout = '5s'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 10
sample 5s "$SECONDS_5"
"${NAVETTE[@]}" standby status -c "$ROOT/navette.yaml" | sed 's/^/   /' || true

echo
echo "== results: staleness of each standby (age of its newest heartbeat, s), $TPS pgbench tx/s + 10 heartbeats/s"
python3 - "$ROOT/samples" <<'PY'
import sys, statistics
rows, wal = {}, {}
for line in open(sys.argv[1]):
    parts = line.split()
    if parts[1] == 'wal':
        wal[parts[0]] = (int(parts[2]), float(parts[3]))
        continue
    phase, standby, age = parts
    rows.setdefault((phase, standby), []).append(float(age))
print(f"   {'archive_timeout':<16} {'standby':<10} {'samples':>7} {'mean':>7} {'median':>7} {'p95':>7} {'max':>7}")
for (phase, standby), v in sorted(rows.items(), key=lambda kv: (kv[0][0] != '30s', kv[0][1])):
    v.sort()
    p95 = v[min(len(v) - 1, int(len(v) * 0.95))]
    print(f"   {phase:<16} {standby:<10} {len(v):>7} {statistics.mean(v):>7.2f} {statistics.median(v):>7.2f} {p95:>7.2f} {v[-1]:>7.2f}")
for phase, (rate, segs) in wal.items():
    print(f"   archive_timeout {phase}: the primary wrote {rate / 1024:.0f} kB of WAL per second; {segs} segments of 16 MB archived per minute")
PY
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
