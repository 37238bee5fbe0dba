#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer (`cargo +nightly fuzz`, crate `fuzz/`), run by
# scripts/test.sh: each target runs for a fixed time from the checked-in seeds in
# fuzz/seeds/<target> plus the corpus earlier runs on this machine grew. A crash fails the
# run and prints the input (base64) for its regression test in
# notify-core/tests/fuzz_regressions.rs.
#
# Targets: stomp_frame (the frame parser and encoder), stomp_session (the session state
# machine over sequences of messages, in memory, paused time), event (the event parser,
# rules and notifications, as Kafka and POST /api/events run them). Builds use release
# optimisation with debug assertions and overflow checks on (fuzz/Cargo.toml).
#
# Usage: scripts/test-fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 45 s, all targets)
# Env: CARGO_TARGET_DIR (the fuzz build goes to $CARGO_TARGET_DIR/fuzz), NOTIFY_CACHE
#      (default ~/.cache/notify; the corpus lives in $NOTIFY_CACHE/fuzz/corpus).
# Needs the nightly toolchain (rustup); installs cargo-fuzz from crates.io when missing.
set -euo pipefail
LOG_TAG=fuzz
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$NOTIFY_SCRIPTS_DIR/.."
ROOT=$PWD

seconds=${1:-45}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(stomp_frame stomp_session event)

cargo +nightly --version >/dev/null 2>&1 \
  || die "the nightly toolchain is missing (rustup toolchain install nightly); cargo fuzz needs it"
with_lock cargo-fuzz cargo_install_once cargo-fuzz

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz"
work=$(mktemp -d /tmp/notify-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

cd fuzz
start=$(now_ms)
log "building ${targets[*]} (nightly, libFuzzer, ASan, debug assertions, overflow checks)"
for t in "${targets[@]}"; do
  nice -n 10 cargo +nightly fuzz build -O "$t" >&2
done
log "built in $(elapsed_s "$start") s"

failed=()
for t in "${targets[@]}"; do
  corpus="$NOTIFY_CACHE/fuzz/corpus/$t"
  mkdir -p "$corpus" "$work/artifacts/$t"
  log "running $t for $seconds s"
  rc=0
  # -timeout: one input may take 10 s at most (a hang is a failure too).
  nice -n 10 cargo +nightly fuzz run -O "$t" "$corpus" "seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$t/" >"$work/$t.log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$work/$t.log" | tail -n 1 | awk '{ print $2 }')
  units=$(find "$corpus" -type f | wc -l)
  echo "FUZZ-FIGURES target=$t seconds=$seconds executions=${execs:-?} coverage_edges=${cov:-?} corpus=$units exit=$rc"
  if [ "$rc" != 0 ]; then
    failed+=("$t")
    tail -n 60 "$work/$t.log" >&2
    for a in "$work/artifacts/$t"/*; do
      [ -f "$a" ] || continue
      log "$t crash input $(basename "$a") (base64): $(base64 -w0 "$a")"
      mkdir -p "$ROOT/fuzz/artifacts/$t" && cp "$a" "$ROOT/fuzz/artifacts/$t/"
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  die "fuzz targets failed: ${failed[*]} (inputs kept in fuzz/artifacts/; reproduce with: cd fuzz && cargo +nightly fuzz run -O TARGET artifacts/TARGET/FILE)"
fi
log "all fuzz targets ran clean in $(elapsed_s "$start") s"
