#!/usr/bin/env bash
# Install PostgreSQL server binaries (Debian package `postgresql`) if initdb is
# missing, so the archive tests can start a throwaway server (tests/pgserver.py).
# Idempotent and quiet: does nothing when initdb is already available.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib_apt.sh"

have_initdb() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

apt_ensure install_postgres.sh postgresql initdb have_initdb
