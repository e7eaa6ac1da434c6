#!/usr/bin/env bash
# Makes sure this machine can run navette's throwaway PostgreSQL clusters (src/Navette.Cli/Demo/LocalCluster.cs):
#   - PostgreSQL server binaries under /usr/lib/postgresql/<major>/bin (installs Debian's `postgresql` if missing),
#   - `runuser` and the `postgres` OS user (PostgreSQL refuses to run as root; LocalCluster drops to it),
#   - a .NET SDK >= 10 (checked only, never installed).
# Idempotent. Never starts a cluster; a default cluster started by the package's postinst is stopped again.
set -euo pipefail

log() { printf '[install-postgres] %s\n' "$*"; }
die() { printf '[install-postgres] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
fi

find_initdb() {
  # Highest major version first.
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r); do
    if [ -x "$d/initdb" ]; then printf '%s\n' "$d"; return 0; fi
  done
  return 1
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install PostgreSQL server binaries yourself and set NAVETTE_PG_BIN"
  if [ "$apt_updated" -eq 0 ]; then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    apt_updated=1
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- PostgreSQL server binaries -------------------------------------------------------------
if [ -n "${NAVETTE_PG_BIN:-}" ]; then
  [ -x "$NAVETTE_PG_BIN/initdb" ] || die "NAVETTE_PG_BIN=$NAVETTE_PG_BIN has no initdb"
  bindir="$NAVETTE_PG_BIN"
  log "using NAVETTE_PG_BIN=$bindir"
elif bindir="$(find_initdb)"; then
  log "found PostgreSQL server binaries in $bindir"
else
  log "no /usr/lib/postgresql/*/bin/initdb: installing Debian's postgresql package"
  # Remember which clusters already ran, so we only stop what the package's postinst started.
  before="$(pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1 "/" $2}' || true)"
  apt_install postgresql
  bindir="$(find_initdb)" || die "postgresql was installed but no /usr/lib/postgresql/*/bin/initdb appeared"
  log "installed PostgreSQL server binaries in $bindir"
  # The postinst may have created and started a default cluster on port 5432: stop it so nothing clashes.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver name _port status _rest; do
      [ "$status" = "online" ] || continue
      case $'\n'"$before"$'\n' in *$'\n'"$ver/$name"$'\n'*) continue ;; esac
      log "stopping the default cluster $ver/$name started by the package"
      "${SUDO[@]}" pg_ctlcluster "$ver" "$name" stop || true
    done < <(pg_lsclusters -h 2>/dev/null || true)
  fi
  if [ -z "$before" ] && command -v service >/dev/null 2>&1; then
    "${SUDO[@]}" service postgresql stop >/dev/null 2>&1 || true
  fi
fi
log "$("$bindir/postgres" --version)"

# --- runuser and the postgres user (only matter when running as root) -----------------------
if ! command -v runuser >/dev/null 2>&1; then
  log "runuser missing: installing util-linux"
  apt_install util-linux
  command -v runuser >/dev/null 2>&1 || die "runuser still not found after installing util-linux"
fi
log "runuser: $(command -v runuser)"

if id -u postgres >/dev/null 2>&1; then
  log "OS user postgres exists (uid $(id -u postgres))"
else
  log "creating the OS user postgres"
  "${SUDO[@]}" useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# --- .NET SDK (checked, not installed) --------------------------------------------------------
if ! command -v dotnet >/dev/null 2>&1; then
  die "dotnet not found: navette needs the .NET SDK 10 or newer on PATH"
fi
dotnet_version="$(dotnet --version 2>/dev/null || true)"
dotnet_major="${dotnet_version%%.*}"
if ! [[ "$dotnet_major" =~ ^[0-9]+$ ]] || [ "$dotnet_major" -lt 10 ]; then
  die "navette needs the .NET SDK 10 or newer, found '${dotnet_version:-none}'"
fi
log "dotnet SDK $dotnet_version"
log "ready"
