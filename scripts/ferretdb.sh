#!/usr/bin/env bash
# FerretDB (MongoDB wire protocol) on PostgreSQL for the test suite.
#
# Usage: scripts/ferretdb.sh install
#        scripts/ferretdb.sh start|stop|kill|restart|status STATE_DIR
#
#   install  apt-install Debian's postgresql if missing, build FerretDB from the
#            Go module proxy into ~/.cache/notify/bin/ferretdb, install the
#            `mongodb` npm driver (readiness ping) under ~/.cache/notify/node-tools
#   start    install if needed, initdb + start PostgreSQL and FerretDB on free
#            127.0.0.1 ports, wait until FerretDB answers a real `ping`, write
#              STATE_DIR/ferretdb.env  (export NOTIFY_TEST_MONGO=mongodb://127.0.0.1:PORT/)
#              STATE_DIR/ferretdb.pid  (FerretDB pid)
#              STATE_DIR/postgres.pid  (PostgreSQL postmaster pid)
#            logs: STATE_DIR/ferretdb.log, STATE_DIR/postgres.log
#   stop     SIGTERM both (SIGKILL after a timeout) and remove the data
#   kill     SIGKILL FerretDB and PostgreSQL (with its backends), keep the data
#   restart  start both again on the same ports with the same data (after kill)
#   status   exit 0 if both processes are alive
#
# Env: NOTIFY_CACHE (default ~/.cache/notify), FERRETDB_START_TIMEOUT (s, default 60).
set -euo pipefail
LOG_TAG=ferretdb
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

FERRETDB_VERSION=v1.24.2
FERRETDB_BIN="$NOTIFY_CACHE/bin/ferretdb"
FERRETDB_SRC="$NOTIFY_CACHE/ferretdb-src"
NODE_TOOLS="$NOTIFY_CACHE/node-tools"
MONGODB_DRIVER_VERSION=6.21.0
PING_JS="$NOTIFY_SCRIPTS_DIR/ferretdb/ping.js"
START_TIMEOUT="${FERRETDB_START_TIMEOUT:-60}"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}

# ---------------------------------------------------------------- install

# pg_bindir: directory holding initdb/pg_ctl/postgres of Debian's PostgreSQL.
pg_bindir() {
  local d
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then echo "$d"; fi
}

install_postgres() {
  [ -n "$(pg_bindir)" ] && return 0
  log "installing Debian's postgresql via apt (first run only)"
  # Don't let the package create and start its own "main" cluster on :5432.
  if [ "$(id -u)" = 0 ] && [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  fi
  apt_install postgresql
  [ -n "$(pg_bindir)" ] || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
}

build_ferretdb() {
  [ -x "$FERRETDB_BIN" ] && "$FERRETDB_BIN" --version 2>/dev/null | grep -q "${FERRETDB_VERSION}" && return 0
  command -v go >/dev/null || die "go is required to build FerretDB (Go >= 1.24)"
  local t0 moddir
  t0=$(now_ms)
  # Keep Go's module and build caches under the project cache too.
  export GOMODCACHE="$NOTIFY_CACHE/go/mod" GOCACHE="$NOTIFY_CACHE/go/build"
  # -modcacherw: leave the module cache deletable with a plain rm -rf.
  export GOFLAGS="-mod=mod -modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
  log "downloading FerretDB $FERRETDB_VERSION source from the Go module proxy"
  moddir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [[ -n "$moddir" && -d "$moddir" ]] || die "go mod download of FerretDB failed"
  rm -rf "$FERRETDB_SRC"
  cp -r "$moddir" "$FERRETDB_SRC"
  chmod -R u+w "$FERRETDB_SRC"
  # `go install` panics at start because build/version/version.txt is generated
  # by FerretDB's own build tooling and is missing from the module zip.
  echo "$FERRETDB_VERSION" >"$FERRETDB_SRC/build/version/version.txt"
  log "building FerretDB (first run only; takes a few minutes on 2 cores)"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  (cd "$FERRETDB_SRC" && nice -n 5 go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) ||
    die "go build of FerretDB failed"
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  # The binary is what we cache; the ~350MB compile cache is not worth keeping.
  go clean -cache || true
  log "built $("$FERRETDB_BIN" --version 2>&1 | head -n1) in $(elapsed_s "$t0")s"
}

install_node_driver() {
  [ -f "$NODE_TOOLS/node_modules/mongodb/package.json" ] && return 0
  { command -v node && command -v npm; } >/dev/null || die "node and npm are required"
  log "installing the mongodb npm driver into $NODE_TOOLS"
  mkdir -p "$NODE_TOOLS"
  [ -f "$NODE_TOOLS/package.json" ] || echo '{"name":"notify-node-tools","private":true}' >"$NODE_TOOLS/package.json"
  (cd "$NODE_TOOLS" && npm install --silent --no-audit --no-fund \
    --cache "$NOTIFY_CACHE/npm" "mongodb@$MONGODB_DRIVER_VERSION" >&2) || die "npm install mongodb failed"
}

do_install() {
  install_postgres
  build_ferretdb
  install_node_driver
}

install() {
  if [ -z "$(pg_bindir)" ] || [ ! -x "$FERRETDB_BIN" ] ||
    [ ! -f "$NODE_TOOLS/node_modules/mongodb/package.json" ]; then
    mkdir -p "$NOTIFY_CACHE"
    with_lock ferretdb-install do_install
  fi
}

# ---------------------------------------------------------------- helpers

# as_pg CMD...: run CMD as the postgres user when we are root (PostgreSQL
# refuses to run as root), else as ourselves.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# pg_can_use DIR: can the account running PostgreSQL create files in DIR?
pg_can_use() {
  as_pg test -w "$1" -a -x "$1" 2>/dev/null
}

ping_mongo() {
  NODE_PATH="$NODE_TOOLS/node_modules" node "$PING_JS" "$1" 2>>"$2"
}

# ---------------------------------------------------------------- lifecycle

# launch STATE_DIR: start PostgreSQL and FerretDB from saved state; wait ready.
launch() {
  local state=$1 dir="$1/ferretdb" t0 pgbin pgdata pid fpid
  # shellcheck disable=SC1091
  source "$dir/ports"
  pgbin=$(pg_bindir)
  pgdata=$(cat "$dir/pgdata")
  t0=$(now_ms)
  for p in "$PG_PORT" "$MONGO_PORT"; do
    wait_port_free "$p" 30 || die "port $p is still in use"
  done

  # After a SIGKILL the old postmaster may linger as a zombie until it is
  # reaped; PostgreSQL would then see its pid as alive and refuse to start
  # (postmaster.pid and the unix socket's lock file name it).
  local oldpid
  oldpid=$(read_pid "$pgdata/postmaster.pid")
  if [ -n "$oldpid" ] && ! pid_alive "$oldpid"; then
    rm -f "$pgdata/postmaster.pid" "$pgdata"/.s.PGSQL.*
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT (data $pgdata), log: $state/postgres.log"
  # pg_ctl -w waits until the server accepts connections. The log is opened
  # here (by us) so it works even where the postgres account can't write.
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -w -t "$START_TIMEOUT" start >>"$state/postgres.log" 2>&1 ||
    { tail -n 20 "$state/postgres.log" >&2; die "PostgreSQL failed to start (see $state/postgres.log)"; }
  pid=$(read_pid "$pgdata/postmaster.pid")
  echo "$pid" >"$state/postgres.pid"
  log "PostgreSQL up (pid $pid) after $(elapsed_s "$t0")s"

  if [ "${FRESH:-0}" = 1 ]; then
    as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres ferretdb ||
      die "createdb ferretdb failed"
  fi

  log "starting FerretDB on 127.0.0.1:$MONGO_PORT, log: $state/ferretdb.log"
  echo "=== $(date '+%F %T') starting FerretDB ===" >>"$state/ferretdb.log"
  nohup setsid "$FERRETDB_BIN" \
    --listen-addr="127.0.0.1:$MONGO_PORT" \
    --handler=postgresql \
    --postgresql-url="postgres://postgres@127.0.0.1:$PG_PORT/ferretdb" \
    --state-dir="$dir/state" \
    --debug-addr=- \
    --telemetry=disable \
    --log-level=INFO \
    >>"$state/ferretdb.log" 2>&1 </dev/null &
  fpid=$!
  echo "$fpid" >"$state/ferretdb.pid"
  wait_for_port 127.0.0.1 "$MONGO_PORT" "$START_TIMEOUT" "$fpid" ||
    { tail -n 20 "$state/ferretdb.log" >&2; die "FerretDB did not open its port (see $state/ferretdb.log)"; }
  # Real check: a MongoDB driver connects and runs {ping: 1}.
  local uri="mongodb://127.0.0.1:$MONGO_PORT/"
  local deadline=$(( $(date +%s) + START_TIMEOUT ))
  until ping_mongo "$uri" "$state/ferretdb.log"; do
    pid_alive "$fpid" || die "FerretDB exited during startup (see $state/ferretdb.log)"
    [ "$(date +%s)" -lt "$deadline" ] || die "FerretDB does not answer ping (see $state/ferretdb.log)"
    sleep 0.2
  done
  echo "export NOTIFY_TEST_MONGO=$uri" >"$state/ferretdb.env"
  log "FerretDB ready at $uri (pid $fpid) in $(elapsed_s "$t0")s; env: $state/ferretdb.env"
}

start() {
  local state
  state=$(abs_state_dir "$1")
  local dir="$state/ferretdb"
  [ -z "$(alive_pid "$state/ferretdb.pid")$(alive_pid "$state/postgres.pid")" ] ||
    die "FerretDB/PostgreSQL already running for $state; stop it first"
  install
  cleanup_data "$state"
  mkdir -p "$dir/state"

  local pgport mport pgdata pgbin sockdir t0
  pgport=$(free_port)
  mport=$(free_port "$pgport")
  printf 'PG_PORT=%s\nMONGO_PORT=%s\n' "$pgport" "$mport" >"$dir/ports"

  # PostgreSQL's data dir must be owned by the (non-root) postgres account; if
  # it can't reach STATE_DIR (e.g. under a 0700 home), use a dir in /tmp.
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  if pg_can_use "$dir"; then
    pgdata="$dir/pg"
  else
    pgdata=$(mktemp -d /tmp/notify-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$pgdata"
    log "postgres can't use $dir; PostgreSQL data goes to $pgdata"
  fi
  echo "$pgdata" >"$dir/pgdata"
  # Unix socket next to the data (socket paths are limited to ~107 bytes).
  sockdir="$pgdata"
  [ ${#sockdir} -lt 80 ] || sockdir=""

  pgbin=$(pg_bindir)
  t0=$(now_ms)
  log "initdb $pgdata"
  as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$state/postgres.log" 2>&1 ||
    as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C \
      >"$state/postgres.log" 2>&1 ||
    { tail -n 20 "$state/postgres.log" >&2; die "initdb failed (see $state/postgres.log)"; }
  cat >>"$pgdata/postgresql.conf" <<EOF

# --- scripts/ferretdb.sh (test instance) ---
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$sockdir'
max_connections = 200
shared_buffers = 64MB
fsync = on
synchronous_commit = on
full_page_writes = on
log_min_messages = warning
log_connections = off
log_disconnections = off
EOF
  cat >"$pgdata/pg_hba.conf" <<EOF
# scripts/ferretdb.sh: trust on loopback only (test instance)
local   all all                trust
host    all all 127.0.0.1/32   trust
EOF
  log "initdb done in $(elapsed_s "$t0")s"
  FRESH=1 launch "$state"
}

restart() {
  local state
  state=$(abs_state_dir "$1")
  [ -f "$state/ferretdb/ports" ] || die "no FerretDB state in $state (run start first)"
  [ -z "$(alive_pid "$state/ferretdb.pid")$(alive_pid "$state/postgres.pid")" ] ||
    die "FerretDB/PostgreSQL still running for $state; kill or stop it first"
  FRESH=0 launch "$state"
}

kill_all() {
  local state
  state=$(abs_state_dir "$1")
  kill_pidfile "$state/ferretdb.pid" FerretDB
  # The postmaster's backends are its children: they go with it.
  kill_pidfile "$state/postgres.pid" PostgreSQL
}

cleanup_data() {
  local state=$1 pgdata=""
  [ -f "$state/ferretdb/pgdata" ] && pgdata=$(cat "$state/ferretdb/pgdata")
  case "$pgdata" in /tmp/notify-pg.*) rm -rf "$pgdata" ;; esac
  rm -rf "$state/ferretdb" "$state/ferretdb.env" "$state/ferretdb.pid" "$state/postgres.pid"
}

stop() {
  local state
  state=$(abs_state_dir "$1")
  stop_pidfile "$state/ferretdb.pid" FerretDB 15
  # SIGINT = PostgreSQL "fast" shutdown (SIGTERM would wait for clients).
  stop_pidfile "$state/postgres.pid" PostgreSQL 20 INT
  cleanup_data "$state"
  log "stopped; data removed"
}

cmd=${1:-}
case "$cmd" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  kill) kill_all "${2:-}" ;;
  restart) restart "${2:-}" ;;
  status)
    state=$(abs_state_dir "${2:-}")
    [ -n "$(alive_pid "$state/ferretdb.pid")" ] && [ -n "$(alive_pid "$state/postgres.pid")" ]
    ;;
  *) usage ;;
esac
