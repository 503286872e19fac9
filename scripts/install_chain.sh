#!/usr/bin/env bash
# Installs the local EVM chain the payments tests use (tests/chain): anvil from npm
# (@foundry-rs/anvil, pinned in tests/chain/package-lock.json), and a separate tool
# venv (tests/chain/.venv) with eth-account, vyper and eth-tester, which pin
# pycryptodome<4 and so cannot share Boxless's venv: the tests use it to cross-check
# the wallet's key derivation with an independent implementation, compile the
# contracts and run contract unit tests on py-evm. Idempotent.
#   bash scripts/install_chain.sh
#   bash scripts/install_chain.sh --anvil-only   # the demo: anvil, no tool venv
# Without npm: a note and exit 0 (the chain tests then skip), unless CI is set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/chain"
stamp="$dir/node_modules/.boxless-lock.sha256"

if ! command -v npm >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "install_chain: npm not found, and CI is set: the payments tests need anvil" >&2
    exit 1
  fi
  echo "install_chain: npm not found; skipping (the anvil tests will be skipped)"
  exit 0
fi

want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if ! { [ -d "$dir/node_modules" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
  echo "install_chain: npm ci in tests/chain"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi

if [ "${1:-}" = "--anvil-only" ]; then
  exit 0
fi

# .installed-2: eth-tester (py-evm) joined for the contract unit tests (tests/chain/evm_steps.py)
if [ ! -x "$dir/.venv/bin/python" ] || [ ! -f "$dir/.venv/.installed-2" ]; then
  echo "install_chain: tool venv in tests/chain/.venv (eth-account, vyper, eth-tester)"
  python3 -m venv "$dir/.venv"
  "$dir/.venv/bin/python" -m pip install -q --disable-pip-version-check \
    eth-account==0.14.0 vyper==0.4.3 "eth-tester[py-evm]==0.13.0b1"
  touch "$dir/.venv/.installed" "$dir/.venv/.installed-2"
fi
