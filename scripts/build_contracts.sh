#!/usr/bin/env bash
# Compiles the red-envelope, escrow and stealth contracts (Vyper 0.4.3 from the tool
# venv tests/chain/.venv, made by scripts/install_chain.sh) into the package data the
# app ships: <Name>.bin (deploy bytecode, hex), <Name>.runtime.bin (the code a genuine
# deployment holds: a card naming another contract is refused) and <Name>.abi.json.
# The app cannot import vyper (pycryptodome pin conflict), so the artifacts are
# committed; tests/unit/test_contracts_build.py recompiles and compares.
#   bash scripts/build_contracts.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vyper="$root/tests/chain/.venv/bin/vyper"
dir="$root/src/boxless/payments/contracts"
for name in RedEnvelope Escrow StealthRegistry StealthAnnouncer; do
  "$vyper" -f bytecode "$dir/$name.vy" >"$dir/$name.bin"
  "$vyper" -f bytecode_runtime "$dir/$name.vy" >"$dir/$name.runtime.bin"
  "$vyper" -f abi "$dir/$name.vy" | "$root/tests/chain/.venv/bin/python" -c \
    'import json,sys; json.dump(json.load(sys.stdin), sys.stdout, indent=1, sort_keys=True); print()' \
    >"$dir/$name.abi.json"
  echo "built $name"
done
