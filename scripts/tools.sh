#!/usr/bin/env bash
# Go-built tools for the test suite, installed once into ~/.cache/notify/bin.
#
# Usage: scripts/tools.sh TOOL...      build what is missing, print each binary's path
#        scripts/tools.sh --list       the tools and their pinned versions
#
#   TOOL is one of: helm, promtool, prometheus, jaeger, mailpit.
#   Each is `GOBIN=~/.cache/notify/bin go install MODULE@VERSION` from the Go
#   module proxy (jaeger: `go build` inside a copy of its downloaded module,
#   because its go.mod has replace directives, which `go install` refuses),
#   under a per-tool lock (parallel callers wait instead of
#   building twice). A binary that exists with a matching version stamp
#   (~/.cache/notify/bin/.<tool>.version) is reused without touching the network;
#   bumping a version here rebuilds it.
#
# Env: NOTIFY_CACHE (default ~/.cache/notify).
set -euo pipefail
LOG_TAG=tools
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# tool_spec TOOL: "MODULE_PATH VERSION BINARY [MODULE_ROOT]" of a tool. With
# MODULE_ROOT, the module MODULE_ROOT@VERSION is downloaded and MODULE_PATH built
# as a package of it, as the main module (so its replace directives apply).
tool_spec() {
  case "$1" in
  helm) echo "helm.sh/helm/v3/cmd/helm v3.22.0 helm" ;;
  promtool) echo "github.com/prometheus/prometheus/cmd/promtool v0.316.0 promtool" ;;
  prometheus) echo "github.com/prometheus/prometheus/cmd/prometheus v0.316.0 prometheus" ;;
  jaeger) echo "github.com/jaegertracing/jaeger/cmd/jaeger v1.76.0 jaeger github.com/jaegertracing/jaeger" ;;
  mailpit) echo "github.com/axllent/mailpit v1.33.1 mailpit" ;;
  *) return 1 ;;
  esac
}
TOOLS="helm promtool prometheus jaeger mailpit"

# tool_bin TOOL: where the tool's binary lives once built.
tool_bin() {
  local module version bin
  read -r module version bin _ <<<"$(tool_spec "$1")"
  echo "$NOTIFY_CACHE/bin/$bin"
}

# tool_ready TOOL: the binary exists and was built from the pinned version.
tool_ready() {
  local module version bin
  read -r module version bin _ <<<"$(tool_spec "$1")"
  [ -x "$NOTIFY_CACHE/bin/$bin" ] && [ "$(cat "$NOTIFY_CACHE/bin/.$1.version" 2>/dev/null)" = "$module@$version" ]
}

build_tool() {
  local tool=$1 module version bin root dest t0
  read -r module version bin root <<<"$(tool_spec "$tool")"
  dest=$(tool_bin "$tool")
  # Checked again under the lock: another caller may have built it meanwhile.
  tool_ready "$tool" && return 0
  command -v go >/dev/null || die "go is required to build $tool (Go >= 1.24)"
  t0=$(now_ms)
  # Module and build caches stay under the project cache (like scripts/ferretdb.sh).
  # A build cache per tool: it is removed afterwards, which must not disturb another
  # tool building in parallel.
  export GOMODCACHE="$NOTIFY_CACHE/go/mod" GOCACHE="$NOTIFY_CACHE/go/build-$tool"
  # -modcacherw: the module cache stays deletable with a plain rm -rf.
  # GOTOOLCHAIN=auto: a module may require a newer Go than the local one; the
  # proxy then supplies that toolchain (itself cached in GOMODCACHE).
  export GOFLAGS="-modcacherw -buildvcs=false -trimpath" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" CGO_ENABLED=0
  export GOBIN
  GOBIN="$(dirname "$dest")"
  mkdir -p "$GOBIN"
  if [ -n "$root" ]; then
    build_in_module "$module" "$version" "$root" "$GOBIN/$bin"
  else
    log "building $tool $version (go install $module@$version; first run only, minutes on 2 cores)"
    nice -n 5 go install "$module@$version" >&2 || die "go install $module@$version failed"
  fi
  [ -x "$GOBIN/$bin" ] || die "go install succeeded but $GOBIN/$bin is missing"
  echo "$module@$version" >"$GOBIN/.$tool.version"
  # The binary is what we cache; the compile cache (hundreds of MB) is not worth keeping.
  rm -rf "$GOCACHE"
  log "built $tool $version in $(elapsed_s "$t0")s"
}

# build_in_module PACKAGE VERSION MODULE_ROOT OUT: build PACKAGE from a copy of
# the module MODULE_ROOT@VERSION, as the main module. The copy is needed because
# the go command ignores go.mod files inside the module cache.
build_in_module() {
  local package=$1 version=$2 root=$3 out=$4 src work
  log "building $package $version (go build in a copy of $root@$version; first run only, tens of minutes on 2 cores)"
  src=$(go mod download -json "$root@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  { [ -n "$src" ] && [ -f "$src/go.mod" ]; } || die "go mod download $root@$version gave no module directory"
  work=$(mktemp -d)
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  (cd "$work" && nice -n 5 go build -o "$out" "./${package#"$root"/}") >&2 || {
    rm -rf "$work"
    die "go build $package@$version failed"
  }
  rm -rf "$work"
}

ensure_tool() {
  local tool=$1
  tool_spec "$tool" >/dev/null || die "unknown tool '$tool' (known: $TOOLS)"
  if ! tool_ready "$tool"; then
    with_lock "tool-$tool" build_tool "$tool"
  fi
  tool_bin "$tool"
}

[ $# -gt 0 ] || {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
  exit 2
}
if [ "$1" = --list ]; then
  for t in $TOOLS; do
    read -r module version _ <<<"$(tool_spec "$t")"
    printf '%-11s %s@%s\n' "$t" "$module" "$version"
  done
  exit 0
fi
for t in "$@"; do ensure_tool "$t"; done
