#!/usr/bin/env bash
# Install PostgreSQL server binaries (Debian package `postgresql`) if initdb is
# missing, so the archive tests can start a throwaway server (tests/pgserver.py).
# Idempotent and quiet: does nothing when initdb is already available.
set -euo pipefail

have_initdb() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if have_initdb; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_postgres.sh: initdb is missing and we are not root (no sudo either);" \
             "install the Debian 'postgresql' package" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null

if ! have_initdb; then
    echo "install_postgres.sh: installed 'postgresql' but initdb is still not found" >&2
    exit 1
fi
