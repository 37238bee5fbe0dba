#!/usr/bin/env bash
# The escalation suite against real parts: two mailpit SMTP servers (plain with AUTH, and
# implicit TLS with a private CA), a real webhook receiver (in the test), and the schedule in
# memory and in FerretDB (when NOTIFY_TEST_MONGO is set, as scripts/test.sh does).
# Covers: e-mail + signed webhook once per escalation across two instances and a restart,
# read-first cancellation, min_priority, muted types, quiet hours, the digest.
#
# Usage: scripts/test-escalation.sh            (CARGO_TARGET_DIR as in scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
LOG_TAG=test-escalation
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
STATE=$(mktemp -d /tmp/notify-escalation.XXXXXX)
cleanup() {
  local rc=$?
  bash scripts/mailpit.sh stop "$STATE" >/dev/null 2>&1 || true
  rm -rf "$STATE"
  exit $rc
}
trap cleanup EXIT INT TERM
bash scripts/mailpit.sh start "$STATE"
set -a
# shellcheck disable=SC1091
source "$STATE/mailpit.env"
set +a
[ -n "${NOTIFY_TEST_MONGO:-}" ] || log "NOTIFY_TEST_MONGO not set: the MongoDB restart/two-instance case is skipped"
cargo test -p notify-channels --test escalation -- --test-threads=2
