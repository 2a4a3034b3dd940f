#!/usr/bin/env bash
# Installs PostgreSQL for the tests of the PostgreSQL backend: Debian's `postgresql` package
# when no `initdb` is on PATH or under /usr/lib/postgresql/*/bin (where the tests look). It
# starts no server: each test process starts a throwaway cluster of its own
# (host-test/src/postgres.rs) and it is gone when the process ends. Idempotent.
set -euo pipefail

find_initdb() {
  command -v initdb 2>/dev/null && return 0
  ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 | grep . && return 0
  return 1
}

if ! initdb=$(find_initdb); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    started=$(date +%s)
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    echo "postgres: installed Debian's postgresql in $(( $(date +%s) - started )) s"
    initdb=$(find_initdb) || { echo "error: postgresql was installed but no initdb was found" >&2; exit 1; }
  else
    echo "error: PostgreSQL is missing; install it (apt-get install postgresql)" >&2
    exit 1
  fi
fi
# Running as root, the tests run PostgreSQL as the user `postgres` (which the package creates).
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "error: running as root and there is no user postgres to run PostgreSQL as" >&2
  exit 1
fi
echo "postgres: $("$initdb" --version) ($initdb)"
