#!/usr/bin/env bash
# Builds the release server: the one build command that both CI (scripts/test.sh) and the
# Dockerfile run, so the image contains exactly what the tests ran against.
#
# Usage: scripts/build-server.sh [OUT_DIR]
#   Builds `cargo build --release --locked --example server` and prints the binary's path.
#   With OUT_DIR, also copies the binary there as `notify-server`.
#
# Env: CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
# --locked: the image and CI build the dependency versions that Cargo.lock pins, nothing newer.
cargo build --release --locked --example server >&2
bin="$target/release/examples/server"
[ -x "$bin" ] || { echo "build-server: $bin missing after the build" >&2; exit 1; }
if [ $# -ge 1 ]; then
  mkdir -p "$1"
  cp "$bin" "$1/notify-server"
  echo "$1/notify-server"
else
  echo "$bin"
fi
