#!/usr/bin/env bash
# Publishes the navette command into artifacts/navette/ (run it as `artifacts/navette/navette` or
# `dotnet artifacts/navette/navette.dll`). ReadyToRun (ahead-of-time compiled) when the SDK can, which
# removes most of the start-up and warm-up JIT time; a plain publish otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rid=$(dotnet --info | awk '$1 == "RID:" {print $2; exit}')
if ! dotnet publish src/Navette.Cli -c Release -r "$rid" --self-contained false -p:PublishReadyToRun=true \
       -o artifacts/navette -v quiet -nologo >/dev/null 2>&1; then
  echo "[build] ReadyToRun publish not available here; publishing without it" >&2
  dotnet publish src/Navette.Cli -c Release -o artifacts/navette -v quiet -nologo >/dev/null
fi
