#!/usr/bin/env bash
# Real SMTP servers for the escalation tests: two mailpit v1.33.1 instances on free
# loopback ports, one plain (smtp://, any AUTH accepted) and one with implicit TLS
# (smtps://, a certificate signed by a private CA made here), each with its HTTP API.
#
# Usage: scripts/mailpit.sh start|stop STATE_DIR
#   start  builds mailpit once (scripts/tools.sh), starts both, writes
#          STATE_DIR/mailpit.env:
#            NOTIFY_TEST_SMTP=smtp://user:pass@127.0.0.1:PORT      NOTIFY_TEST_MAILPIT_API=http://127.0.0.1:PORT
#            NOTIFY_TEST_SMTPS=smtps://user:pass@localhost:PORT    NOTIFY_TEST_MAILPIT_TLS_API=http://127.0.0.1:PORT
#            NOTIFY_TEST_SMTP_CA=STATE_DIR/mailpit-tls/ca.pem (the private CA)
#   stop   SIGTERM both and remove their data.
set -euo pipefail
LOG_TAG=mailpit
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

cmd=${1:-}
STATE=$(abs_state_dir "${2:-}")

start_one() { # NAME SMTP_PORT HTTP_PORT EXTRA_ARGS...
  local name=$1 smtp=$2 http=$3 pid
  shift 3
  "$MAILPIT" --smtp "127.0.0.1:$smtp" --listen "127.0.0.1:$http" \
    --database "$STATE/$name.db" --smtp-auth-accept-any --smtp-disable-rdns "$@" \
    >"$STATE/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$STATE/$name.pid"
  wait_for_port 127.0.0.1 "$smtp" 30 "$pid" || die "$name did not start; see $STATE/$name.log"
  wait_for_port 127.0.0.1 "$http" 30 "$pid" || die "$name API did not start"
}

case "$cmd" in
start)
  MAILPIT=$(bash "$NOTIFY_SCRIPTS_DIR/tools.sh" mailpit)
  mkdir -p "$STATE/mailpit-tls"
  # A private CA and a server certificate it signs. The server certificate must not be the
  # CA itself: `openssl req -x509` marks its output CA:TRUE, and rustls (webpki) refuses a
  # CA certificate presented as the server's (CaUsedAsEndEntity), so SMTPS never connected.
  tls=$STATE/mailpit-tls
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=notify test CA" \
    -keyout "$tls/ca-key.pem" -out "$tls/ca.pem" >/dev/null 2>&1 ||
    die "openssl could not make the test CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tls/key.pem" -out "$tls/server.csr" >/dev/null 2>&1 ||
    die "openssl could not make the test certificate request"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$tls/server.ext" -out "$tls/cert.pem" >/dev/null 2>&1 ||
    die "openssl could not sign the test certificate"
  p1=$(free_port)
  p2=$(free_port "$p1")
  p3=$(free_port "$p1" "$p2")
  p4=$(free_port "$p1" "$p2" "$p3")
  start_one mailpit "$p1" "$p2" --smtp-auth-allow-insecure
  start_one mailpit-tls "$p3" "$p4" --smtp-require-tls \
    --smtp-tls-cert "$STATE/mailpit-tls/cert.pem" --smtp-tls-key "$STATE/mailpit-tls/key.pem"
  cat >"$STATE/mailpit.env" <<ENV
NOTIFY_TEST_SMTP=smtp://notify:secret@127.0.0.1:$p1
NOTIFY_TEST_MAILPIT_API=http://127.0.0.1:$p2
NOTIFY_TEST_SMTPS=smtps://notify:secret@localhost:$p3
NOTIFY_TEST_MAILPIT_TLS_API=http://127.0.0.1:$p4
NOTIFY_TEST_SMTP_CA=$STATE/mailpit-tls/ca.pem
ENV
  log "mailpit ready: smtp 127.0.0.1:$p1 (api $p2), smtps localhost:$p3 (api $p4); env: $STATE/mailpit.env"
  ;;
stop)
  for name in mailpit mailpit-tls; do
    stop_pid "$(read_pid "$STATE/$name.pid")" "$name" 10
    rm -f "$STATE/$name.pid" "$STATE/$name.db"*
  done
  rm -rf "$STATE/mailpit-tls" "$STATE/mailpit.env"
  ;;
*)
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
  ;;
esac
