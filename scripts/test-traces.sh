#!/usr/bin/env bash
# Trace export against a real OTLP receiver (issue 13, traces): builds Jaeger once
# (scripts/tools.sh, cached in ~/.cache/notify/bin), starts it on free ports
# (scripts/jaeger.sh) and runs tests/e2e/traces/ against the example server
# (NOTIFY_E2E_SERVER, else the release build): a producer's traceparent reaches the STOMP
# MESSAGE frame and the SSE event, and Jaeger's query API shows the trace with the spans of
# publish, event, rules, push and store. With NOTIFY_TEST_KAFKA (scripts/test.sh's broker) the
# same over Kafka: the context travels in the record headers to the storing consumer and the
# fan-out; without it that case is skipped.
#
# Skips, printing the reason, only when Jaeger cannot be built; any other failure fails.
# Usage: scripts/test-traces.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG_TAG=test-traces
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

STATE=$(mktemp -d /tmp/notify-test-traces.XXXXXX)
cleanup() {
  # By absolute path: the tests run from tests/e2e.
  bash "$ROOT/scripts/jaeger.sh" stop "$STATE" >/dev/null 2>&1 || true
  rm -rf "$STATE"
}
trap cleanup EXIT

if ! bash scripts/tools.sh jaeger >"$STATE/build.log" 2>&1; then
  tail -n 20 "$STATE/build.log" >&2
  echo "SKIPPED: trace export test: Jaeger could not be built (log above)"
  exit 0
fi
bash scripts/jaeger.sh start "$STATE"
# shellcheck disable=SC1091
source "$STATE/jaeger.env"
export NOTIFY_TEST_OTLP NOTIFY_TEST_JAEGER
cd tests/e2e
[ -d node_modules ] || npm ci --no-audit --no-fund --silent
if ! npm run --silent test:traces; then
  log "jaeger log (last lines):"
  tail -n 30 "$STATE/jaeger.log" >&2 || true
  exit 1
fi
