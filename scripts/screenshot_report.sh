#!/usr/bin/env bash
# Render a run's report.html in headless Chromium, the way a reader sees it, into a PNG.
#   bash scripts/screenshot_report.sh runs/smoke [report.png] [height_px]
# Needs Chromium (Debian/Ubuntu: apt-get install chromium). The report is self-contained, so the
# browser is started with its network features off.
set -euo pipefail
run_dir=${1:?usage: screenshot_report.sh RUN_DIR [OUT.png] [HEIGHT]}
out=$(realpath -m "${2:-$run_dir/report.png}")
height=${3:-6000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "No Chromium found: install it (apt-get install chromium)." >&2; exit 2; }
[ -f "$run_dir/report.html" ] || { echo "No $run_dir/report.html: run python -m helpers run first." >&2; exit 2; }
profile_dir=$(mktemp -d)
trap 'rm -rf "$profile_dir"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile_dir" --hide-scrollbars --window-size=1280,"$height" \
  --screenshot="$out" "file://$(realpath "$run_dir/report.html")" 2>/dev/null
echo "$out"
