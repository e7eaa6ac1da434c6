#!/usr/bin/env bash
# Fetches uPlot (the dashboard's charting library) from the npm registry and copies the files the daemon serves
# into src/Navette/Monitoring/Http/Dashboard/vendor/. Run by hand to update it: the files are committed, so
# builds, CI and the dashboard itself never need the network. Record a new version in THIRD-PARTY-NOTICES.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version="${1:-1.6.32}"
dest=src/Navette/Monitoring/Http/Dashboard/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null && tar -xzf "uplot-$version.tgz")
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$tmp/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$tmp/package/LICENSE" "$dest/uPlot.LICENSE"
echo "uPlot $version copied to $dest"
