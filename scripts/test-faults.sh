#!/usr/bin/env bash
# The fault suite: a three-broker Kafka cluster (KRaft, replication factor 3,
# min.insync.replicas=2) and FerretDB of its own, two example servers, real stompjs clients,
# and per test one fault: partition leader killed, rolling broker restart, store outage,
# a server instance killed. Figures go to tests/e2e/artifacts/faults.jsonl (and BENCHMARKS.md).
#
# Usage: scripts/test-faults.sh     (NOTIFY_E2E_SERVER: the release example server binary;
#                                    built here when unset)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
LOG_TAG=test-faults

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/notify/cargo-target}"
STATE=$(mktemp -d /tmp/notify-faults.XXXXXX)
cleanup() {
  local rc=$?
  bash scripts/kafka-cluster.sh stop "$STATE" >/dev/null 2>&1 || true
  bash scripts/ferretdb.sh stop "$STATE" >/dev/null 2>&1 || true
  rm -rf "$STATE"
  exit $rc
}
trap cleanup EXIT INT TERM

t0=$(now_ms)
if [ -z "${NOTIFY_E2E_SERVER:-}" ]; then
  NOTIFY_E2E_SERVER=$(bash scripts/build-server.sh)
  export NOTIFY_E2E_SERVER
fi
bash scripts/kafka-cluster.sh start "$STATE" &
cluster_pid=$!
bash scripts/ferretdb.sh start "$STATE"
wait "$cluster_pid"
# shellcheck disable=SC1091
source "$STATE/kafka-cluster.env"
# shellcheck disable=SC1091
source "$STATE/ferretdb.env"
export NOTIFY_TEST_KAFKA_CLUSTER NOTIFY_TEST_MONGO
export NOTIFY_TEST_KAFKA_CLUSTER_STATE="$STATE" NOTIFY_TEST_FERRETDB_STATE="$STATE"
log "services up in $(elapsed_s "$t0")s: Kafka $NOTIFY_TEST_KAFKA_CLUSTER, Mongo $NOTIFY_TEST_MONGO"

cd tests/e2e
[ -d node_modules ] || npm ci --no-audit --no-fund --silent
rm -f artifacts/faults.jsonl
npm run --silent test:faults
log "fault suite passed in $(elapsed_s "$t0")s; figures: tests/e2e/artifacts/faults.jsonl"
