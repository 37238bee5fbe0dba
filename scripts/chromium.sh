#!/usr/bin/env bash
# Ensure Debian's chromium is installed (for browser tests). Idempotent.
# Installs only the Debian package via apt; never downloads a browser otherwise.
# Prints the browser path on stdout.
set -euo pipefail
LOG_TAG=chromium
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  t0=$(now_ms)
  log "installing Debian's chromium via apt (first run only)"
  apt_install chromium
  [ -x "$CHROMIUM" ] || die "apt installed chromium but $CHROMIUM is missing"
  log "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium) in $(elapsed_s "$t0")s"
fi
echo "$CHROMIUM"
