#!/usr/bin/env bash
# Runs the whole test suite (unit and integration; the integration tests start throwaway
# PostgreSQL clusters, see scripts/install-postgres.sh). Prints one line per test and, last,
# a plain "N passed, N failed" summary. Extra arguments go to dotnet test (e.g. --filter).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet test Navette.slnx -c Release --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E "^(Passed|Failed)!" "$log" | tail -1)
if [[ $summary =~ Failed:[[:space:]]+([0-9]+),[[:space:]]+Passed:[[:space:]]+([0-9]+),[[:space:]]+Skipped:[[:space:]]+([0-9]+) ]]; then
  echo "${BASH_REMATCH[2]} passed, ${BASH_REMATCH[1]} failed, ${BASH_REMATCH[3]} skipped"
fi
exit "$status"
