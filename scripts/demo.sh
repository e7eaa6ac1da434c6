#!/usr/bin/env bash
# Runs `navette demo` from a fresh clone: installs PostgreSQL's server binaries if they are missing,
# builds navette, then creates throwaway local clusters, replicates a live workload and checks the result.
# Extra arguments go to the demo (e.g. --keep, --seconds 30).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-postgres.sh >/dev/null
bash scripts/build.sh
exec dotnet artifacts/navette/navette.dll demo "$@"
