#!/usr/bin/env bash
# Runs the whole test suite (unit and integration; the integration tests start throwaway
# PostgreSQL clusters, see scripts/install-postgres.sh). Prints one line per test and, last,
# a plain "N passed, N failed" summary. Extra arguments go to dotnet test (e.g. --filter).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The dashboard's browser test needs Debian's Chromium (a no-op when it is there).
bash scripts/install-browser.sh || echo "warning: no Chromium; the dashboard browser test will fail (see scripts/install-browser.sh)" >&2

log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet test Navette.slnx -c Release --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The runner ends with "Total tests: N" then "Passed: N", "Failed: N", "Skipped: N" lines (absent when zero).
count() { grep -E "^[[:space:]]+$1:[[:space:]]+[0-9]+" "$log" | tail -1 | grep -oE "[0-9]+" || echo 0; }
if grep -qE "^Total tests:" "$log"; then
  echo "$(count Passed) passed, $(count Failed) failed, $(count Skipped) skipped"
fi
exit "$status"
