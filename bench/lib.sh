# Shared by the benchmark scripts: builds navette, makes a temporary root, starts throwaway clusters (as postgres when
# root), cleans up on exit. Source it after setting -euo pipefail and cd'ing to the repository.
bash scripts/install-postgres.sh >/dev/null
BIN=${NAVETTE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
bash scripts/build.sh
NAVETTE=(dotnet "$PWD/artifacts/navette/navette.dll")

ROOT=$(mktemp -d /tmp/navette-bench-XXXXXX)
chmod 755 "$ROOT"
AS_PG=()
if [ "$(id -u)" -eq 0 ]; then AS_PG=(runuser -u postgres --); chown postgres "$ROOT"; fi
DAEMON=
cleanup() {
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$ROOT"/*.log "$KEEP_LOGS"/ 2>/dev/null || true; fi
  [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null || true
  for d in "$ROOT"/pg-*; do [ -d "$d" ] && "${AS_PG[@]}" "$BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
  rm -rf "$ROOT"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_cluster() { # name [extra -c settings] -> prints port
  local name=$1 port; shift; port=$(free_port)
  "${AS_PG[@]}" "$BIN/initdb" -D "$ROOT/pg-$name" -U postgres --auth=trust -E UTF8 >/dev/null
  "${AS_PG[@]}" "$BIN/pg_ctl" -D "$ROOT/pg-$name" -l "$ROOT/pg-$name.log" -w start -o \
    "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$ROOT -c wal_level=logical \
     -c max_wal_senders=20 -c max_replication_slots=20 -c shared_buffers=512MB -c max_wal_size=8GB \
     -c checkpoint_timeout=30min -c synchronous_commit=on -c fsync=on $*" >/dev/null
  echo "$port"
}
now() { date +%s.%N; }
cpu_s() { # pid -> CPU seconds (user + system) it has used so far, or "?" when it is gone
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || { echo "?"; return; }
  awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / tck }' "/proc/$1/stat"
}
psql_at() { local port=$1; shift; psql -X -q -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"; }
origin_past() { # port origin-name lsn -> succeeds once that replication origin's progress has reached lsn
  [ "$(psql_at "$1" -d bench -Atc "SELECT coalesce(pg_replication_origin_progress('$2', true) >= '$3', false)")" = t ]
}
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
machine() { echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r), PostgreSQL $("$BIN/postgres" --version | awk '{print $3}'), .NET $(dotnet --version)"; }
table_md5() { psql_at "$1" -d "$2" -Atc "SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM $3 x"; }
