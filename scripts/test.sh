#!/usr/bin/env bash
# The test command: installs what the tests need (Python deps, PostgreSQL from
# Debian, js-waku and Node 22 from npm, Chromium for browser tests), then runs
# lint, types and tests.
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh -k relay   # extra args go to pytest
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
bash scripts/install_postgres.sh
bash scripts/install_coturn.sh
bash scripts/install_interop.sh
bash scripts/install_chain.sh
bash scripts/install_chromium.sh
. .venv/bin/activate
echo "== ruff"
ruff check src tests bench
echo "== mypy"
mypy
echo "== pytest"
# Bytecode: the tests start hundreds of Python processes (`boxless up`, service
# nodes, CLI commands). Where PYTHONDONTWRITEBYTECODE is set, each of them compiled
# Boxless's sources again (~0.5 CPU-s) and each pytest worker re-rewrote every test
# file's asserts (~15 CPU-s). Compile once up front and let pytest cache its
# rewrites; __pycache__ is git-ignored.
unset PYTHONDONTWRITEBYTECODE
python -m compileall -q -j 0 src >/dev/null
set +e
# Two workers (pytest-xdist), one per core: most of the suite's wall time is
# waiting on real processes (service nodes, `boxless up`, Chromium), which two
# workers overlap. Each test file runs whole on one worker, so module fixtures
# start once. Files are handed out in collection order (--no-loadscope-reorder):
# tests/e2e and tests/integration, the long browser and process files, first and
# the many short unit files last, so the last files to start are short whatever
# their test counts (xdist's default orders by test count, which puts one-test
# files, short or long, last). BOXLESS_TEST_WORKERS=0 runs in one process.
workers="${BOXLESS_TEST_WORKERS:-2}"
if [ "$workers" = "0" ]; then
  python -m pytest -q -p no:cacheprovider "$@"
else
  python -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile \
    --no-loadscope-reorder "$@"
fi
rc=$?
set -e
# pytest exits 5 when a -k filter selects nothing; only then is that not a failure.
if [ "$rc" -eq 5 ] && [ $# -gt 0 ]; then exit 0; fi
exit "$rc"
