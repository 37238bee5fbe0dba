#!/usr/bin/env bash
# Operations checks (issue 13), run by scripts/test.sh:
#   - deploy files offline: the Dockerfile (BuildKit's parser; its build step is the command CI
#     runs), deploy/compose.yaml (compose-spec loader), the Helm chart (`helm lint --strict`,
#     `helm template` with default values and with every optional part on, every rendered
#     manifest strictly decoded into the Kubernetes API types by deploy/validate);
#   - alerts: `promtool check rules`, `promtool test rules`, the dashboard's queries parse, and
#     every notify_* metric that alerts and dashboard use is one the server exports;
#   - crates: `cargo package` of the library crates (README and LICENSE inside), `cargo doc`
#     with warnings denied, every locked dependency's declared rust-version within ours;
#   - msrv: `cargo check` of the libraries with the declared rust-version's toolchain.
# Usage: scripts/test-ops.sh [deploy|alerts|crates|msrv]...   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG_TAG=test-ops
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

WORK=$(mktemp -d /tmp/notify-test-ops.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n--> %s  (%s)\n' "$*" "$(date +%H:%M:%S)"; }

# validate_bin: builds deploy/validate once per source version (cached by content hash).
validate_bin() {
  local hash bin
  hash=$(cat deploy/validate/go.mod deploy/validate/go.sum deploy/validate/*.go | sha256sum | cut -c1-16)
  bin="$NOTIFY_CACHE/bin/notify-validate-$hash"
  if [ ! -x "$bin" ]; then
    with_lock notify-validate build_validate "$bin"
  fi
  echo "$bin"
}
build_validate() {
  local bin=$1
  [ -x "$bin" ] && return 0
  log "building deploy/validate (Kubernetes API types from the Go module proxy; first run only)"
  mkdir -p "$(dirname "$bin")"
  (cd deploy/validate &&
    GOMODCACHE="$NOTIFY_CACHE/go/mod" GOCACHE="$NOTIFY_CACHE/go/build-validate" \
      GOFLAGS="-modcacherw -buildvcs=false -mod=readonly" CGO_ENABLED=0 \
      nice -n 5 go build -trimpath -o "$bin.tmp" .) || die "go build of deploy/validate failed"
  mv "$bin.tmp" "$bin"
  rm -rf "$NOTIFY_CACHE/go/build-validate"
}

check_deploy() {
  local helm validate chart=deploy/helm/notify
  # helm template assumes Kubernetes 1.20 unless told; the chart needs >= 1.25.
  local KUBE_VERSION=1.33.0
  helm=$(bash scripts/tools.sh helm)
  validate=$(validate_bin)

  step "Dockerfile: parses, multi-stage, non-root, HEALTHCHECK, builds with scripts/build-server.sh"
  "$validate" dockerfile Dockerfile
  # The image's build command is the one CI runs: test.sh builds the server through it too.
  grep -q 'scripts/build-server.sh' scripts/test.sh ||
    die "scripts/test.sh does not build the server with scripts/build-server.sh (the Dockerfile does)"

  step "deploy/compose.yaml: compose-spec schema and model"
  "$validate" compose deploy/compose.yaml

  step "deploy/haproxy.cfg: haproxy -c (Debian's HAProxy; the compose stack runs 3.2)"
  command -v haproxy >/dev/null || apt_install haproxy
  # The instances' names resolve only inside the compose network: those warnings are expected.
  haproxy -c -f deploy/haproxy.cfg 2>&1 | grep -v "could not resolve address\|^\[NOTICE\]" || true
  haproxy -c -q -f deploy/haproxy.cfg

  step "Helm chart: lint --strict, template (defaults and everything on), API types"
  "$helm" lint --strict "$chart"
  "$helm" lint --strict "$chart" -f "$chart/ci/all-enabled-values.yaml"
  "$helm" template notify "$chart" --namespace notify --kube-version "$KUBE_VERSION" >"$WORK/default.yaml"
  "$helm" template notify "$chart" --namespace notify --kube-version "$KUBE_VERSION" -f "$chart/ci/all-enabled-values.yaml" \
    >"$WORK/all-enabled.yaml"
  grep -q '^kind: HorizontalPodAutoscaler' "$WORK/all-enabled.yaml" || die "HPA not rendered"
  grep -q '^kind: ServiceMonitor' "$WORK/all-enabled.yaml" || die "ServiceMonitor not rendered"
  grep -q '^kind: PodDisruptionBudget' "$WORK/default.yaml" || die "PDB not rendered"
  "$validate" k8s "$WORK/default.yaml" "$WORK/all-enabled.yaml"
  # Every contract variable has a place in the chart's values.
  local v missing=""
  for v in $(grep -o '`\(NOTIFY\|OTEL\)_[A-Z_]*`' docs/PROTOCOL.md | tr -d '`' | sort -u); do
    case $v in NOTIFY_LISTEN | NOTIFY_INSTANCE_ID | NOTIFY_JWT_PUBLIC_KEY_FILE | NOTIFY_RULES | NOTIFY_HTTP | NOTIFY_CONFIG) continue ;; esac
    grep -q "^ *$v:" "$chart/values.yaml" || missing="$missing $v"
  done
  [ -z "$missing" ] || die "variables without a value in $chart/values.yaml:$missing"
}

check_alerts() {
  local promtool
  promtool=$(bash scripts/tools.sh promtool)

  step "alerts: promtool check rules + test rules"
  "$promtool" check rules deploy/prometheus/alerts.yaml
  "$promtool" test rules deploy/prometheus/alerts.test.yaml

  step "dashboard: every query parses"
  # Grafana's variables replaced by plain values, then each query checked as a recording rule.
  python3 - "$WORK/dashboard-rules.yaml" <<'PY'
import json, sys
d = json.load(open("deploy/grafana/notify.json"))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append(t["expr"])
walk(d["panels"])
with open(sys.argv[1], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$instance", ".*")
        f.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}\n")
print(f"{len(exprs)} dashboard queries")
PY
  "$promtool" check rules "$WORK/dashboard-rules.yaml"

  step "alerts and dashboard use only metrics the server exports"
  local m missing=""
  for m in $(cat deploy/prometheus/alerts.yaml deploy/grafana/notify.json |
    grep -o 'notify_[a-z_]*' | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
    grep -rqs --include='*.rs' "\"$m\"" notify-core/src notify-kafka/src notify-mongo/src \
      notify-axum/src notify-warp/src examples || missing="$missing $m"
  done
  [ -z "$missing" ] || die "metrics used by alerts/dashboard but not exported by the server:$missing"
  echo "ok"
}

check_crates() {
  local msrv
  step "cargo package of the library crates"
  # --no-verify: verification rebuilds each crate's whole dependency tree from its packaged
  # sources in a fresh build (measured: 15.5 min for notify-core alone on the shared 2-core
  # box); the same sources are built, linted and tested by scripts/test.sh already. Packaging
  # still checks the manifests, the included files and that path dependencies carry versions.
  # (examples and benches are publish = false.)
  cargo package --locked --no-verify -p notify-core -p notify-axum -p notify-warp -p notify-kafka -p notify-mongo -p notify-channels
  local c pkg
  for c in notify-core notify-axum notify-warp notify-kafka notify-mongo notify-channels; do
    pkg=$(ls "${CARGO_TARGET_DIR:-$ROOT/target}/package/$c-"*.crate | tail -n1)
    tar -tzf "$pkg" >"$WORK/files"
    grep -q '/README.md$' "$WORK/files" || die "$c: README.md missing from the package"
    grep -q '/LICENSE$' "$WORK/files" || die "$c: LICENSE missing from the package"
  done

  step "cargo doc, warnings denied"
  # The published crates (the benches and examples are not documented for users).
  RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --locked \
    -p notify-core -p notify-axum -p notify-warp -p notify-kafka -p notify-mongo -p notify-channels

  msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
  step "the libraries' locked dependencies all declare a rust-version <= $msrv"
  cargo metadata --format-version 1 --locked --filter-platform x86_64-unknown-linux-gnu |
    python3 -c '
import json, sys
msrv = tuple(int(x) for x in sys.argv[1].split(".")[:2])
m = json.load(sys.stdin)
pk = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
libs = [p["id"] for p in m["packages"]
        if p["name"] in ("notify-core", "notify-axum", "notify-warp", "notify-kafka", "notify-mongo", "notify-channels")]
seen, stack = set(), list(libs)
while stack:  # normal and build dependencies, what a user of the crates compiles
    i = stack.pop()
    if i in seen:
        continue
    seen.add(i)
    stack += [d["pkg"] for d in nodes[i]["deps"]
              if any(k["kind"] in (None, "build") for k in d["dep_kinds"])]
newer = sorted((pk[i]["name"], pk[i]["version"], pk[i]["rust_version"]) for i in seen
               if pk[i].get("rust_version")
               and tuple(int(x) for x in pk[i]["rust_version"].split(".")[:2]) > msrv)
if newer:
    sys.exit("dependencies need a newer Rust than rust-version: %s" % newer)
print("%d crates ok" % len(seen))
' "$msrv"
}

# check_msrv: the libraries compile with the declared rust-version's own toolchain.
check_msrv() {
  local msrv
  msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
  step "cargo check of the libraries with Rust $msrv (the declared rust-version)"
  rustup toolchain list | grep -q "^$msrv" || rustup toolchain install "$msrv" --profile minimal
  # Its own target dir: artifacts of two compilers do not mix.
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/msrv" cargo "+$msrv" check --locked \
    -p notify-core -p notify-axum -p notify-warp -p notify-kafka -p notify-mongo -p notify-channels --all-features
}

parts=${*:-deploy alerts crates msrv}
for p in $parts; do
  case $p in
  deploy) check_deploy ;;
  alerts) check_alerts ;;
  crates) check_crates ;;
  msrv) check_msrv ;;
  *) die "unknown part $p" ;;
  esac
done
step "ops checks passed"
