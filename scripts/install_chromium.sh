#!/usr/bin/env bash
# Debian's chromium (and a colour emoji font, so reactions render) for the browser
# tests in tests/e2e/. Playwright drives it through executable_path; we never
# run `playwright install` (it downloads a browser build, which cannot work here).
# Idempotent: does nothing when both are present.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  msg="the browser tests need Debian packages: ${need[*]}. Run as root: apt-get install -y ${need[*]}"
  if [ "${CI:-}" = "true" ]; then
    echo "error: $msg" >&2
    exit 1
  fi
  echo "warning: $msg (the browser tests will be skipped without chromium)" >&2
  exit 0
fi
echo "installing ${need[*]} from Debian..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "error: chromium did not install" >&2; exit 1; }
