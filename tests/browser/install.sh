#!/usr/bin/env bash
# Installs what the monitoring page's browser test needs: Debian's Chromium (when
# /usr/bin/chromium is missing, and we may install packages) and playwright-core, pinned in
# package.json / package-lock.json, under tests/browser/node_modules. playwright-core brings no
# browser of its own and runs no install script. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    started=$(date +%s)
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    echo "browser: installed Debian's chromium in $(( $(date +%s) - started )) s"
  else
    echo "error: /usr/bin/chromium is missing; install Debian's chromium package (apt-get install chromium)" >&2
    exit 1
  fi
fi

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (the browser test needs Node.js and npm)" >&2; exit 1; }
done
want=$(node -p 'require("./package.json").dependencies["playwright-core"]')
installed() { node -p 'require("./node_modules/playwright-core/package.json").version' 2>/dev/null; }
if [ "$(installed || true)" != "$want" ]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
echo "browser: $(/usr/bin/chromium --version 2>/dev/null), playwright-core $(installed) (node $(node --version))"
