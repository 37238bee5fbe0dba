# shellcheck shell=bash
# Shared helpers for the scripts that install/start/stop the test services
# (scripts/kafka.sh, scripts/ferretdb.sh, scripts/chromium.sh).
# Source it; it does not change shell options of the caller.

# Everything downloaded or built is cached here.
NOTIFY_CACHE="${NOTIFY_CACHE:-$HOME/.cache/notify}"
# shellcheck disable=SC2034 # for the scripts that source this file
NOTIFY_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${LOG_TAG:=$(basename "$0" .sh)}"

# log MESSAGE...: timestamped progress line on stderr.
log() {
  printf '%s [%s] %s\n' "$(date '+%H:%M:%S')" "$LOG_TAG" "$*" >&2
}

# die MESSAGE...: log and exit 1.
die() {
  log "ERROR: $*"
  exit 1
}

# now_ms: milliseconds since the epoch.
now_ms() {
  date +%s%3N
}

# elapsed_s START_MS: seconds (one decimal) since START_MS.
elapsed_s() {
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

# with_lock NAME CMD...: run CMD while holding an exclusive lock
# $NOTIFY_CACHE/locks/NAME.lock, so parallel installs don't clash.
with_lock() {
  local name=$1
  shift
  mkdir -p "$NOTIFY_CACHE/locks"
  (
    flock -w 1800 9 || die "timed out waiting for lock $name"
    "$@"
  ) 9>"$NOTIFY_CACHE/locks/$name.lock"
}

# cargo_install_once CRATE: installs a cargo tool whose binary is named like its crate into
# ~/.cargo/bin unless it is there, with a target directory of its own (the build shares
# nothing with the project's and does not wait for the lock of a build running beside it).
# Run it under `with_lock CRATE` so that parallel scripts install it once.
cargo_install_once() {
  local crate=$1
  command -v "$crate" >/dev/null && return 0
  log "installing $crate (cargo install --locked; cached in ~/.cargo/bin)"
  CARGO_TARGET_DIR="$NOTIFY_CACHE/$crate-build" nice -n 10 cargo install "$crate" --locked >&2
  rm -rf "$NOTIFY_CACHE/$crate-build"
}

# used_ports: every local TCP port currently bound (any state), one per line.
used_ports() {
  local f
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    # column 2 is local_address "HEXIP:HEXPORT"
    awk 'NR > 1 { split($2, a, ":"); print a[2] }' "$f"
  done | while read -r hex; do printf '%d\n' "0x$hex"; done | sort -un
}

# port_in_use PORT: true if something is bound to PORT (or it is in TIME_WAIT etc.).
port_in_use() {
  used_ports | grep -qx "$1"
}

# free_port [EXCLUDED_PORT...]: print a free loopback TCP port.
# Picks at random in 20000-32767 (below Linux's ephemeral range, so outgoing
# connections won't take it), skipping ports in use and the given exclusions.
free_port() {
  local used port ex ok
  used=" $(used_ports | tr '\n' ' ') $* "
  for _ in $(seq 1 200); do
    port=$((20000 + (RANDOM % 12768)))
    ok=1
    case "$used" in *" $port "*) ok=0 ;; esac
    for ex in "$@"; do [ "$ex" = "$port" ] && ok=0; done
    if [ $ok = 1 ]; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

# port_open HOST PORT: true if a TCP connect to HOST:PORT succeeds now.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for_port HOST PORT TIMEOUT_S [PID]: wait until HOST:PORT accepts
# connections. Fails early if PID is given and that process dies.
wait_for_port() {
  local host=$1 port=$2 timeout=$3 pid=${4:-}
  local deadline=$(( $(date +%s) + timeout ))
  while ! port_open "$host" "$port"; do
    if [ -n "$pid" ] && ! pid_alive "$pid"; then
      log "process $pid died while waiting for $host:$port"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "timed out after ${timeout}s waiting for $host:$port"
      return 1
    fi
    sleep 0.1
  done
}

# wait_port_free PORT TIMEOUT_S: wait until nothing listens on PORT anymore.
wait_port_free() {
  local port=$1 timeout=$2
  local deadline=$(( $(date +%s) + timeout ))
  while port_open 127.0.0.1 "$port"; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# pid_alive PID: true if PID is a running (non-zombie) process.
pid_alive() {
  local pid=$1 state
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# read_pid FILE: print the pid stored in FILE (first line), or nothing.
read_pid() {
  if [ -f "$1" ]; then head -n1 "$1" | tr -dc '0-9'; fi
  return 0
}

# children_of PID: direct children of PID (from /proc, no procps needed).
children_of() {
  local parent=$1 p stat rest ppid
  for p in /proc/[0-9]*; do
    { read -r stat <"$p/stat"; } 2>/dev/null || continue
    rest=${stat##*) } # drop "pid (comm) ", comm may hold spaces
    read -r _ ppid _ <<<"$rest"
    [ "$ppid" = "$parent" ] && echo "${p#/proc/}"
  done
  return 0
}

# wait_pid_exit PID TIMEOUT_S: wait until PID has exited; false on timeout.
wait_pid_exit() {
  local pid=$1 timeout=$2
  local deadline=$(( $(now_ms) + timeout * 1000 ))
  while pid_alive "$pid"; do
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# stop_pid PID NAME [TIMEOUT_S] [SIGNAL]: send SIGNAL (default TERM; PostgreSQL wants INT
# for a "fast" shutdown), then SIGKILL PID and its direct children after TIMEOUT_S
# (default 20).
stop_pid() {
  local pid=$1 name=$2 timeout=${3:-20} signal=${4:-TERM}
  pid_alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -"$signal" "$pid" 2>/dev/null || true
  if ! wait_pid_exit "$pid" "$timeout"; then
    log "$name did not exit after ${timeout}s, sending SIGKILL"
    kill_pid_tree "$pid"
    pid_alive "$pid" && log "WARNING: $name (pid $pid) still alive"
  fi
  return 0
}

# kill_pid_tree PID: SIGKILL PID and its direct children (e.g. a postmaster and
# its backends).
kill_pid_tree() {
  local pid=$1 kids
  pid_alive "$pid" || return 0
  kids=$(children_of "$pid")
  # shellcheck disable=SC2086 # one word per child pid
  kill -KILL "$pid" $kids 2>/dev/null || true
  wait_pid_exit "$pid" 10 || true
  local k
  for k in $kids; do wait_pid_exit "$k" 10 || true; done
}

# alive_pid PIDFILE: print the pid stored in PIDFILE if that process is alive.
alive_pid() {
  local pid
  pid=$(read_pid "$1")
  if [ -n "$pid" ] && pid_alive "$pid"; then echo "$pid"; fi
  return 0
}

# stop_pidfile PIDFILE NAME [TIMEOUT_S] [SIGNAL]: stop_pid on the process of PIDFILE, if
# it is alive.
stop_pidfile() {
  local pid
  pid=$(alive_pid "$1")
  [ -z "$pid" ] || stop_pid "$pid" "$2" "${3:-20}" "${4:-TERM}"
}

# kill_pidfile PIDFILE NAME: SIGKILL the process of PIDFILE and its direct children,
# keeping its data (simulates a crash); nothing if it is not running.
kill_pidfile() {
  local pid
  pid=$(alive_pid "$1")
  if [ -z "$pid" ]; then
    log "no running $2"
    return 0
  fi
  log "SIGKILL $2 (pid $pid), keeping data"
  kill_pid_tree "$pid"
  pid_alive "$pid" && die "$2 (pid $pid) survived SIGKILL"
  return 0
}

# abs_state_dir DIR: create DIR and print its absolute path.
abs_state_dir() {
  [ -n "${1:-}" ] || die "missing STATE_DIR argument"
  mkdir -p "$1"
  (cd "$1" && pwd)
}

# apt_install PKG...: apt-get install, running apt-get update once first.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "need root (or sudo) to apt-get install $*"
    sudo="sudo -E"
  fi
  log "apt-get update"
  $sudo apt-get update -q >&2 || log "WARNING: apt-get update failed"
  log "apt-get install $*"
  $sudo apt-get install -y -q --no-install-recommends "$@" >&2
}
