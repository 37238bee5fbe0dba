#!/usr/bin/env bash
# Mechanical checks of the repository's scripts, run by scripts/test.sh: shellcheck on every
# script (Debian package `shellcheck`, installed when missing). Warnings and errors fail;
# info and style notes do not. .shellcheckrc makes it follow scripts/lib.sh.
#
# Env: NOTIFY_CACHE (default ~/.cache/notify).
set -euo pipefail
LOG_TAG=lint
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$NOTIFY_SCRIPTS_DIR/.."

command -v shellcheck >/dev/null || apt_install shellcheck
log "shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }')"
shellcheck -x -S warning scripts/*.sh
