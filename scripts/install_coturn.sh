#!/usr/bin/env bash
# Install the TURN server coturn (Debian package `coturn`, binary `turnserver`)
# if it is missing, for `boxless node --turn` and the relay-only call test.
# Idempotent and quiet: does nothing when turnserver is already available.
set -euo pipefail

have_turnserver() {
    command -v turnserver >/dev/null 2>&1 || [ -x /usr/bin/turnserver ]
}

if have_turnserver; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_coturn.sh: turnserver is missing and we are not root (no sudo either);" \
             "install the Debian 'coturn' package" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends coturn >/dev/null

if ! have_turnserver; then
    echo "install_coturn.sh: installed 'coturn' but turnserver is still not found" >&2
    exit 1
fi
