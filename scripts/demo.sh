#!/usr/bin/env bash
# The main job: install Boxless into .venv (first run only) and start the demo.
#   bash scripts/demo.sh              # until Ctrl-C
#   bash scripts/demo.sh --data-dir DIR   # keep the demo's accounts and nodes in DIR
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/boxless" demo "$@"
