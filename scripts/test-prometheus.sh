#!/usr/bin/env bash
# The alert rules on a live server (issue 13, alerts): a real Prometheus (built once by
# scripts/tools.sh, cached in ~/.cache/notify/bin) scrapes a running example server consuming
# from its own Kafka broker, with deploy/prometheus/alerts.yaml loaded as it is. The broker is
# then killed: the server's notify_ready drops to 0 and Prometheus must report NotifyNotReady
# pending, then firing after the rule's `for: 2m`; when the broker is back the alert must
# resolve. Prints the measured delays (ALERT-FIGURES).
#
# Skips, printing the reason, only when Prometheus cannot be built; any other failure fails.
# Usage: scripts/test-prometheus.sh   (server: NOTIFY_E2E_SERVER, else the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG_TAG=test-prometheus
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

SERVER=${NOTIFY_E2E_SERVER:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/server}
STATE=$(mktemp -d /tmp/notify-test-prometheus.XXXXXX)
server_pid='' prom_pid=''
cleanup() {
  local rc=$?
  [ -z "$server_pid" ] || stop_pid "$server_pid" server 10
  [ -z "$prom_pid" ] || stop_pid "$prom_pid" prometheus 10
  bash scripts/kafka.sh stop "$STATE" >/dev/null 2>&1 || true
  if [ "$rc" != 0 ]; then
    for f in server.log prometheus.log; do
      [ -f "$STATE/$f" ] && { log "$f (last lines):"; tail -n 20 "$STATE/$f" >&2; }
    done
  fi
  rm -rf "$STATE"
  exit "$rc"
}
trap cleanup EXIT

if ! prometheus=$(bash scripts/tools.sh prometheus 2>"$STATE/build.log"); then
  tail -n 20 "$STATE/build.log" >&2
  echo "SKIPPED: live alert test: Prometheus could not be built (log above)"
  exit 0
fi
[ -x "$SERVER" ] || die "no server binary at $SERVER (set NOTIFY_E2E_SERVER or run scripts/build-server.sh)"

bash scripts/kafka.sh start "$STATE"
# shellcheck disable=SC1091
source "$STATE/kafka.env"

port=$(free_port)
log "starting the server on 127.0.0.1:$port (Kafka $NOTIFY_TEST_KAFKA)"
NOTIFY_LISTEN=127.0.0.1:$port NOTIFY_JWT_SECRET=alerts-secret-at-least-32-bytes-long! \
  NOTIFY_PUBLISH_KEY=alerts-key NOTIFY_KAFKA_BROKERS=$NOTIFY_TEST_KAFKA \
  NOTIFY_KAFKA_TOPIC=alerts-events NOTIFY_KAFKA_GROUP=alerts RUST_LOG=info \
  "$SERVER" >"$STATE/server.log" 2>&1 &
server_pid=$!
wait_for_port 127.0.0.1 "$port" 60 "$server_pid" || die "the server did not start"

prom_port=$(free_port "$port")
cat >"$STATE/prometheus.yml" <<YAML
global:
  # /metrics answers in about 1.5 s while Kafka is down (a metadata fetch with that timeout):
  # a shorter scrape timeout would lose the very series the alert needs.
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/alerts.yaml
scrape_configs:
  - job_name: notify
    static_configs:
      - targets: ["127.0.0.1:$port"]
YAML
log "starting prometheus on 127.0.0.1:$prom_port"
"$prometheus" --config.file="$STATE/prometheus.yml" --storage.tsdb.path="$STATE/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$STATE/prometheus.log" 2>&1 &
prom_pid=$!
wait_for_port 127.0.0.1 "$prom_port" 60 "$prom_pid" || die "prometheus did not start"
API="http://127.0.0.1:$prom_port/api/v1"

# query EXPR: the first sample's value of an instant query, or nothing.
query() {
  curl -sf --get "$API/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null
}
# alert_state NAME: inactive, pending or firing, as Prometheus reports it now.
alert_state() {
  curl -sf "$API/alerts" | python3 -c '
import json, sys
alerts = [a for a in json.load(sys.stdin)["data"]["alerts"] if a["labels"]["alertname"] == sys.argv[1]]
print(alerts[0]["state"] if alerts else "inactive")' "$1"
}
# wait_until TIMEOUT_S WHAT CMD...: poll CMD every second until it succeeds.
wait_until() {
  local timeout=$1 what=$2 deadline
  shift 2
  deadline=$(($(date +%s) + timeout))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${timeout}s waiting for $what"
    sleep 1
  done
}
is() { [ "$(query "$1")" = "$2" ]; }
alert_is() { [ "$(alert_state NotifyNotReady)" = "$1" ]; }

rules=$(curl -sf "$API/rules" | python3 -c 'import json,sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
[ "$rules" -gt 0 ] || die "prometheus loaded no rules from deploy/prometheus/alerts.yaml"
log "prometheus loaded $rules rules"
wait_until 60 "the scrape of the server (up == 1)" is 'up{job="notify"}' 1
wait_until 90 "the server to be ready (notify_ready == 1)" is 'notify_ready{job="notify"}' 1
alert_is inactive || die "NotifyNotReady is $(alert_state NotifyNotReady) while the server is ready"

log "killing the Kafka broker"
t0=$(now_ms)
bash scripts/kafka.sh kill "$STATE"
wait_until 60 "notify_ready == 0 after the broker died" is 'notify_ready{job="notify"}' 0
t_down=$(elapsed_s "$t0")
wait_until 30 "NotifyNotReady pending" alert_is pending
t_pending=$(elapsed_s "$t0")
# The rule's `for: 2m`, plus scrape and evaluation intervals.
wait_until 180 "NotifyNotReady firing" alert_is firing
t_firing=$(elapsed_s "$t0")
log "NotifyNotReady fires ${t_firing}s after the broker died"

log "restarting the Kafka broker"
t1=$(now_ms)
bash scripts/kafka.sh restart "$STATE"
wait_until 120 "notify_ready == 1 after the broker is back" is 'notify_ready{job="notify"}' 1
wait_until 30 "NotifyNotReady resolved" alert_is inactive
t_resolved=$(elapsed_s "$t1")
echo "ALERT-FIGURES: NotifyNotReady: notify_ready 0 after ${t_down}s, pending after ${t_pending}s, firing after ${t_firing}s (for: 2m); resolved ${t_resolved}s after the broker restarted"
