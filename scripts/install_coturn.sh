#!/usr/bin/env bash
# Install the TURN server coturn (Debian package `coturn`, binary `turnserver`)
# if it is missing, for `boxless node --turn` and the relay-only call test.
# Idempotent and quiet: does nothing when turnserver is already available.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib_apt.sh"

have_turnserver() {
    command -v turnserver >/dev/null 2>&1 || [ -x /usr/bin/turnserver ]
}

apt_ensure install_coturn.sh coturn turnserver have_turnserver
