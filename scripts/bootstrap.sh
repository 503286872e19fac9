#!/usr/bin/env bash
# Create .venv (if missing) and install Boxless into it with the dev extras.
# Idempotent and quiet; sourced by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-python3}"
if [ ! -x "$root/.venv/bin/python" ]; then
  "$py" -m venv "$root/.venv"
fi
stamp="$root/.venv/.boxless-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[dev]"
  touch "$stamp"
fi
