#!/usr/bin/env bash
# Installs the JavaScript peers the interop tests drive (tests/interop): js-waku
# (@waku/sdk), js-libp2p gossipsub, and a Node 22 binary from npm, all pinned in
# tests/interop/package-lock.json. Idempotent: runs `npm ci` only when
# node_modules is missing or the lock file changed since the last install.
#   bash scripts/install_interop.sh
# Without npm: a note and exit 0 (the interop tests then skip), unless CI is set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/interop"
stamp="$dir/node_modules/.boxless-lock.sha256"

if ! command -v npm >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    echo "install_interop: npm not found, and CI is set: the interop suite needs it" >&2
    exit 1
  fi
  echo "install_interop: npm not found; skipping (the js-waku interop tests will be skipped)"
  exit 0
fi

want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ -d "$dir/node_modules" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "install_interop: npm ci in tests/interop"
log="$(mktemp)"
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1); then
  cat "$log" >&2
  rm -f "$log"
  echo "install_interop: npm ci failed" >&2
  exit 1
fi
rm -f "$log"
echo "$want" >"$stamp"
