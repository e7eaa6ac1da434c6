#!/usr/bin/env bash
# In-process micro-benchmarks of the hot paths (BenchmarkDotNet, allocations included): materialising decoded rows,
# compacting a batch, building its statements and parameters. No PostgreSQL needed. About 3 minutes on 2 cores.
# Usage: bash bench/microbench.sh                     (every benchmark)
#        bash bench/microbench.sh --filter '*Compact*'  (arguments go to BenchmarkDotNet)
# The full log and the reports stay in artifacts/microbench/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=artifacts/microbench
rm -rf "$OUT"
mkdir -p "$OUT"
[ $# -eq 0 ] && set -- --filter '*'

dotnet build bench/Navette.Benchmarks -c Release --nologo -v quiet
echo "== running (log: $OUT/run.log)"
if ! dotnet run -c Release --no-build --project bench/Navette.Benchmarks -- --artifacts "$OUT" "$@" > "$OUT/run.log" 2>&1; then
  tail -40 "$OUT/run.log"
  exit 1
fi
status=0
for report in "$OUT"/results/*-report-github.md; do
  [ -e "$report" ] || { echo "no report written; see $OUT/run.log" >&2; exit 1; }
  echo
  cat "$report"
done
# A benchmark that failed (threw, or could not run) is reported as NA rather than as an exit code.
if grep -q "^Benchmarks with issues" "$OUT/run.log"; then
  echo
  sed -n '/^Benchmarks with issues/,/^$/p' "$OUT/run.log"
  status=1
fi
exit "$status"
