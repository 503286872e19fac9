#!/usr/bin/env bash
# The main job: install Boxless into .venv and anvil (first run only) and start the demo:
# Alice and Bob chatting, with funded wallets on a local chain.
#   bash scripts/demo.sh              # until Ctrl-C
#   bash scripts/demo.sh --data-dir DIR   # keep the demo's accounts and nodes in DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
# The demo's chain (payments): anvil from npm into tests/chain, first run only.
# Without npm the demo still runs, without payments.
bash "$root/scripts/install_chain.sh" --anvil-only || echo "demo: no anvil, payments are off"
exec "$root/.venv/bin/boxless" demo "$@"
