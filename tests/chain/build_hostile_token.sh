#!/usr/bin/env bash
# Compiles tests/chain/HostileToken.vy (the attacker token of the red-envelope and
# escrow tests) with the tool venv's vyper into HostileToken.bin (deploy bytecode).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/.venv/bin/vyper" -f bytecode "$here/HostileToken.vy" >"$here/HostileToken.bin"
