#!/usr/bin/env bash
# Makes this machine able to run the dashboard's browser test (test/dashboard/dashboard-browser.spec.ts):
# installs Debian's `chromium` when /usr/bin/chromium is missing (playwright-core drives it; it
# downloads no browser of its own). Idempotent; needs root for apt-get. Prints the browser's path
# as the last line of stdout. Env: COURIER_CHROMIUM  a browser elsewhere (then nothing is installed).
set -euo pipefail
BROWSER=${COURIER_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$BROWSER" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "[browser] $BROWSER is missing and installing it needs root" >&2; exit 1; }
  echo "[browser] installing chromium (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium >&2
fi
[ -x "$BROWSER" ] || { echo "[browser] no browser at $BROWSER after installing" >&2; exit 1; }
echo "[browser] $("$BROWSER" --version 2>/dev/null | head -n 1)" >&2
echo "$BROWSER"
