#!/usr/bin/env bash
# Makes sure the headless Chromium used by the dashboard's browser test is there: Debian's `chromium` package at
# /usr/bin/chromium (Playwright drives it; Playwright's own browser download is never used). Idempotent: does
# nothing when it is already installed.
set -euo pipefail

log() { printf '[install-browser] %s\n' "$*"; }

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    log "chromium is missing and this user cannot install packages: run 'apt-get install -y chromium' as root"
    exit 1
  fi
fi
command -v apt-get >/dev/null 2>&1 || { log "apt-get not found; install Chromium so that /usr/bin/chromium exists"; exit 1; }

log "installing Debian's chromium"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version
