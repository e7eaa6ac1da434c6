#!/usr/bin/env bash
# Runs the whole test suite (unit and integration; the integration tests start throwaway
# PostgreSQL clusters, see scripts/install-postgres.sh). Prints one line per test.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dotnet test Navette.slnx -c Release --logger "console;verbosity=normal" "$@"
exit $?
