#!/usr/bin/env bash
# A local Jaeger (v2, in-memory storage) as the OTLP receiver of the trace tests.
#
# Usage: scripts/jaeger.sh start STATE_DIR   build if needed (scripts/tools.sh jaeger), start
#                                            on free loopback ports, wait until healthy
#        scripts/jaeger.sh stop STATE_DIR    stop it and remove its files
#
# Writes STATE_DIR/jaeger.env with
#   NOTIFY_TEST_OTLP=http://127.0.0.1:PORT     OTLP/HTTP receiver (OTEL_EXPORTER_OTLP_ENDPOINT)
#   NOTIFY_TEST_JAEGER=http://127.0.0.1:PORT   query API (GET /api/traces/<trace id>)
# and STATE_DIR/jaeger.pid, STATE_DIR/jaeger.yaml, STATE_DIR/jaeger.log.
set -euo pipefail
LOG_TAG=jaeger
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

start() {
  local state bin otlp query query_grpc health pid
  state=$(abs_state_dir "${1:-}")
  [ -z "$(alive_pid "$state/jaeger.pid")" ] || die "jaeger already runs from $state"
  bin=$(bash "$NOTIFY_SCRIPTS_DIR/tools.sh" jaeger)
  otlp=$(free_port)
  query=$(free_port "$otlp")
  query_grpc=$(free_port "$otlp" "$query")
  health=$(free_port "$otlp" "$query" "$query_grpc")
  # Only what the tests use, every port chosen here (the built-in all-in-one configuration
  # binds fixed ports that a parallel run or another service may hold).
  cat >"$state/jaeger.yaml" <<YAML
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:$query
    grpc:
      endpoint: 127.0.0.1:$query_grpc
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$health
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$otlp
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
  log "starting jaeger (OTLP/HTTP 127.0.0.1:$otlp, query 127.0.0.1:$query)"
  "$bin" --config "$state/jaeger.yaml" >"$state/jaeger.log" 2>&1 &
  pid=$!
  echo "$pid" >"$state/jaeger.pid"
  if ! wait_for_port 127.0.0.1 "$otlp" 60 "$pid" || ! wait_for_port 127.0.0.1 "$query" 60 "$pid"; then
    tail -n 30 "$state/jaeger.log" >&2
    stop "$state"
    die "jaeger did not start"
  fi
  printf 'NOTIFY_TEST_OTLP=http://127.0.0.1:%s\nNOTIFY_TEST_JAEGER=http://127.0.0.1:%s\n' \
    "$otlp" "$query" >"$state/jaeger.env"
  log "jaeger ready (pid $pid)"
}

stop() {
  local state
  state=$(abs_state_dir "${1:-}")
  stop_pidfile "$state/jaeger.pid" jaeger 10
  rm -f "$state/jaeger.pid" "$state/jaeger.env" "$state/jaeger.yaml"
}

case "${1:-}" in
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
*)
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
  ;;
esac
