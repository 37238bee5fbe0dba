#!/usr/bin/env bash
# Dependency checks with cargo-deny, run by scripts/test.sh (deny.toml): licenses against the
# allow-list, duplicate crates (warnings, one tungstenite enforced) and crate sources. The
# advisory check is not run: its database is fetched from GitHub, which the project's
# machines cannot reach. Installs cargo-deny from crates.io when missing (~/.cargo/bin).
#
# Env: NOTIFY_CACHE (default ~/.cache/notify; install lock).
set -euo pipefail
LOG_TAG=deny
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$NOTIFY_SCRIPTS_DIR/.."

with_lock cargo-deny cargo_install_once cargo-deny
log "$(cargo deny --version)"
# --offline: the crates are already fetched (clippy ran); nothing else is needed.
cargo deny --offline check licenses bans sources
