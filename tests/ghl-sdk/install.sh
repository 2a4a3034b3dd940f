#!/usr/bin/env bash
# Installs HighLevel's official Node SDK (@gohighlevel/api-client, pinned exactly in
# package.json and package-lock.json) under tests/ghl-sdk/node_modules, for the `ghl_sdk` test
# (cargo test --release --workspace --test ghl_sdk), where the SDK judges the app webhooks'
# signatures beside the host, and the mock's OAuth and Contacts answers. Idempotent: does nothing when the pinned version is already
# there. Needs node and npm; installs nothing globally.
#
# Only npm packages are downloaded, through npm's configured registry. Install scripts are not
# run (--ignore-scripts): none of the SDK's dependencies (axios, mongodb and theirs) has one,
# and the SDK ships built.
set -euo pipefail
cd "$(dirname "$0")"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (the SDK needs Node.js and npm)" >&2; exit 1; }
done

want=$(node -p 'require("./package.json").dependencies["@gohighlevel/api-client"]')
installed() { node -p 'require("./node_modules/@gohighlevel/api-client/package.json").version' 2>/dev/null; }

if [ "$(installed || true)" = "$want" ]; then
  echo "ghl-sdk: @gohighlevel/api-client $want already installed in $(pwd)/node_modules"
else
  started=$(date +%s)
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "ghl-sdk: installed @gohighlevel/api-client $want in $(( $(date +%s) - started )) s"
fi

have=$(installed || true)
if [ "$have" != "$want" ]; then
  echo "error: expected @gohighlevel/api-client $want, found '${have:-nothing}'" >&2
  exit 1
fi
echo "ghl-sdk: @gohighlevel/api-client $have (node $(node --version))"
