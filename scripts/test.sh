#!/usr/bin/env bash
# Runs every test of the project, starting the real services itself:
#   formatting and lints, Rust unit + conformance + adapter tests against a real Kafka broker
#   and a real MongoDB-protocol server (FerretDB on PostgreSQL), the STOMP end-to-end suite
#   (@stomp/stompjs over ws) against the example server, trace export to a real Jaeger, the
#   widget's unit and browser tests (Debian's Chromium), coverage-guided fuzzing of the
#   STOMP parser, the session and the event parser (cargo fuzz, nightly), and cargo-deny. Downloads and
#   builds are cached under ~/.cache/notify.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROOT=$PWD
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/notify/cargo-target}"
export CARGO_TERM_COLOR=never
# Each clean clone builds the workspace crates afresh, so incremental state only piles up in the
# shared cache (7 GB after a day of CI runs, which filled the disk once).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
STATE=$(mktemp -d /tmp/notify-test.XXXXXX)
faults_pid=
fuzz_pid=
deny_pid=
cleanup() {
  local rc=$?
  if [ -n "$deny_pid" ]; then kill "$deny_pid" 2>/dev/null || true; fi
  if [ -n "$fuzz_pid" ]; then kill "$fuzz_pid" 2>/dev/null || true; fi
  if [ -n "${ops_pid:-}" ]; then kill "$ops_pid" 2>/dev/null || true; fi
  if [ -n "$faults_pid" ]; then
    kill "$faults_pid" 2>/dev/null || true
    wait "$faults_pid" 2>/dev/null || true
  fi
  bash scripts/kafka.sh stop "$STATE" >/dev/null 2>&1 || true
  bash scripts/ferretdb.sh stop "$STATE" >/dev/null 2>&1 || true
  rm -rf "$STATE"
  exit $rc
}
trap cleanup EXIT INT TERM

step() { printf '\n==> %s  (%s)\n' "$*" "$(date +%H:%M:%S)"; }

step "tools"
command -v cargo >/dev/null || { echo "cargo is required" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true
bash scripts/chromium.sh

step "operations checks started in the background (scripts/test-ops.sh: Go tools, chart, alerts, check at the declared rust-version)"
bash scripts/test-ops.sh deploy alerts msrv >"$STATE/test-ops.log" 2>&1 &
ops_pid=$!

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
bash scripts/test-lint.sh

step "dependency licenses, duplicates and sources started in the background (scripts/test-deny.sh: cargo-deny)"
bash scripts/test-deny.sh >"$STATE/deny.log" 2>&1 &
deny_pid=$!

step "crates ready to publish: package, docs (warnings denied), rust-version of dependencies"
bash scripts/test-ops.sh crates

step "start Kafka and FerretDB"
bash scripts/kafka.sh start "$STATE" &
kafka_pid=$!
bash scripts/ferretdb.sh start "$STATE"
wait "$kafka_pid"
# shellcheck disable=SC1091
source "$STATE/kafka.env"
# shellcheck disable=SC1091
source "$STATE/ferretdb.env"
export NOTIFY_TEST_KAFKA NOTIFY_TEST_MONGO
export NOTIFY_TEST_KAFKA_STATE="$STATE" NOTIFY_TEST_FERRETDB_STATE="$STATE"
echo "NOTIFY_TEST_KAFKA=$NOTIFY_TEST_KAFKA NOTIFY_TEST_MONGO=$NOTIFY_TEST_MONGO"

step "Rust tests (unit, conformance, Kafka and MongoDB adapters)"
cargo test --workspace --all-features -- --test-threads=2

step "escalation suite (mailpit SMTP/SMTPS, signed webhook, FerretDB)"
bash scripts/test-escalation.sh

step "build the example server (release; the Dockerfile runs the same script)"
NOTIFY_E2E_SERVER=$(bash scripts/build-server.sh)
export NOTIFY_E2E_SERVER

step "fuzzing started in the background (scripts/test-fuzz.sh: libFuzzer, 45 s per target)"
bash scripts/test-fuzz.sh 45 >"$STATE/fuzz.log" 2>&1 &
fuzz_pid=$!

step "STOMP/REST/SSE end-to-end suite (the fault suite runs beside it)"
(cd tests/e2e && npm ci --no-audit --no-fund --silent)
# Its own three-broker Kafka and FerretDB; the environment of this script's single broker
# and FerretDB is not passed on.
env -u NOTIFY_TEST_KAFKA -u NOTIFY_TEST_MONGO -u NOTIFY_TEST_KAFKA_STATE -u NOTIFY_TEST_FERRETDB_STATE \
  bash scripts/test-faults.sh >"$STATE/faults.log" 2>&1 &
faults_pid=$!
(cd tests/e2e && npm test)

step "traces: OTLP export to a real Jaeger, traceparent from producer to MESSAGE and SSE (scripts/test-traces.sh)"
bash scripts/test-traces.sh

step "alerts on a live server: Prometheus scrapes it, NotifyNotReady fires when Kafka dies (scripts/test-prometheus.sh)"
bash scripts/test-prometheus.sh

if [ -f frontend/package.json ]; then
  step "widget: unit tests, build, browser tests"
  (cd frontend && npm ci --no-audit --no-fund --silent && npm test && npm run build && npm run test:browser)
fi

step "operations checks (scripts/test-ops.sh)"
ops_rc=0
wait "$ops_pid" || ops_rc=$?
cat "$STATE/test-ops.log"
[ "$ops_rc" = 0 ] || { echo "scripts/test-ops.sh failed" >&2; exit 1; }

step "fault suite (leader kill, rolling restart, store outage, instance kill)"
if wait "$faults_pid"; then
  grep -E '^FAULT-FIGURES|^# (pass|fail)|passed in' "$STATE/faults.log" || true
else
  cat "$STATE/faults.log"
  echo "fault suite failed" >&2
  exit 1
fi

step "dependency checks (scripts/test-deny.sh)"
if wait "$deny_pid"; then
  tail -n 1 "$STATE/deny.log"
else
  cat "$STATE/deny.log"
  echo "cargo deny check failed" >&2
  exit 1
fi

step "fuzzing (stomp_frame, stomp_session, event)"
if wait "$fuzz_pid"; then
  grep -E '^FUZZ-FIGURES|ran clean' "$STATE/fuzz.log" || true
else
  cat "$STATE/fuzz.log"
  echo "fuzzing failed: each crash input is printed above and kept in fuzz/artifacts/" >&2
  exit 1
fi

step "all tests passed"
