#!/usr/bin/env bash
# Installs Stoplight Prism (@stoplight/prism-cli, pinned exactly in package.json and
# package-lock.json) under tests/prism/node_modules, for the `prism` conformance test
# (cargo test --release -p e2e-tests --test prism). Idempotent: does nothing when the pinned
# version is already there. Needs node and npm; installs nothing globally.
#
# Only npm packages are downloaded, through npm's configured registry. Install scripts are
# not run (--ignore-scripts): the one package that has any, @scarf/scarf, only sends an
# install-analytics request, and Prism needs no build step.
#
# prism-cli 5.16.0 declares engines.node >=24.18; it runs on Node 20 as well (the machine's
# Node), so the engine check is advisory here (--engine-strict=false).
set -euo pipefail
cd "$(dirname "$0")"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (Prism needs Node.js and npm)" >&2; exit 1; }
done

want=$(node -p 'require("./package.json").dependencies["@stoplight/prism-cli"]')
installed() {
  [ -x node_modules/.bin/prism ] && node -p 'require("./node_modules/@stoplight/prism-cli/package.json").version' 2>/dev/null
}

if [ "$(installed || true)" = "$want" ]; then
  echo "prism: @stoplight/prism-cli $want already installed in $(pwd)/node_modules"
else
  started=$(date +%s)
  SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --engine-strict=false --loglevel=error
  echo "prism: installed @stoplight/prism-cli $want in $(( $(date +%s) - started )) s"
fi

have=$(installed || true)
if [ "$have" != "$want" ]; then
  echo "error: expected @stoplight/prism-cli $want, found '${have:-nothing}'" >&2
  exit 1
fi
echo "prism: $(node_modules/.bin/prism --version) (node $(node --version))"
