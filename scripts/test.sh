#!/usr/bin/env bash
# The project's test command:
#
#   scripts/test.sh [extra cargo-nextest args, e.g. a test filter]
#
# Installs the test tools if missing (scripts/install-test-deps.sh --k8s, cached under $RR_TOOLS,
# default ~/.cache/remote-reindex), starts ONE shared Kubernetes control plane (etcd +
# kube-apiserver + kube-controller-manager's clusterrole-aggregation, v$RR_KUBE_VERSION, default
# 1.37.2, built from the Go module proxy; scripts/control-plane.sh) in
# a temporary directory, exports
#   KUBECONFIG / RR_TEST_KUBECONFIG   admin kubeconfig of that control plane
#   RR_TOOLS, PATH                    so tests find noida-db, osmem-server, kubectl, helm, nginx
# starts the shared real engines (scripts/engine.sh; one JVM per kind, in parallel) and exports
#   RR_ENGINE_OPENSEARCH_2, RR_ENGINE_ELASTICSEARCH_7, ...   their URLs (http://127.0.0.1:PORT)
# runs `cargo nextest run --locked --no-fail-fast "$@"`, and stops the control plane and the engines
# on exit. The Rust test harness starts its own imitation servers (noida-db, osmem-server) and, for
# tests that restart or throttle a node, private engines.
#   RR_ENGINES   engine kinds to share (default "opensearch-2 elasticsearch-7 elasticsearch-6
#                elasticsearch-8";
#                "none" for none; docs/engines.md lists the kinds that boot)
#   RR_ENGINE_HEAP  heap of each shared engine (default 512m)
# Set RR_KEEP_CONTROL_PLANE_DIR=1 to keep the control plane's and engines' directories (logs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/progress.sh
. "$ROOT/scripts/lib/progress.sh"

export RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
export PATH="$RR_TOOLS/bin:$RR_TOOLS/venv/bin:$PATH"
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin" ;; esac # nginx

missing=()
export RR_KUBE_VERSION=${RR_KUBE_VERSION:-1.37.2}
for t in kube-apiserver kube-controller-manager; do
  [ -x "$RR_TOOLS/k8s/v$RR_KUBE_VERSION/$t" ] || missing+=("$t v$RR_KUBE_VERSION")
done
for t in kubectl noida-db osmem-server helm etcd nginx openssl curl tinyproxy promtool; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
"$RR_TOOLS/venv/bin/python" -c 'import botocore' 2>/dev/null || missing+=(botocore)
if ! cargo nextest --version >/dev/null 2>&1; then missing+=(cargo-nextest); fi
if [ ${#missing[@]} -gt 0 ]; then
  step "test.sh: installing the missing test tools (${missing[*]}) with scripts/install-test-deps.sh --k8s" \
    "a fresh machine: ~2 min of apt/PyPI/Maven, plus 6-21 min (quiet to busy cores) to build the v$RR_KUBE_VERSION control plane once"
  "$ROOT/scripts/install-test-deps.sh" --k8s
  hash -r
  step_done
fi

# The test binaries are built before any server starts (servers would idle through the build).
step "test.sh: building the tests (cargo nextest run --no-run)" \
  "a fresh checkout ~6-9 min on 2 cores (~700 CPU-seconds), seconds when nothing changed"
heartbeat cargo nextest run --locked --no-run
step_done

RR_ENGINES=${RR_ENGINES:-opensearch-2 elasticsearch-7 elasticsearch-6 elasticsearch-8}
[ "$RR_ENGINES" = none ] && RR_ENGINES=""
CP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rr-control-plane.XXXXXX")
ENG_DIR="$CP_DIR/engines"
cleanup() {
  local rc=$?
  local pids=()
  for e in $RR_ENGINES; do
    [ -d "$ENG_DIR/$e" ] && { "$ROOT/scripts/engine.sh" stop "$ENG_DIR/$e" & pids+=($!); }
  done
  [ ${#pids[@]} -gt 0 ] && wait "${pids[@]}" 2>/dev/null
  "$ROOT/scripts/control-plane.sh" stop "$CP_DIR" || true
  if [ "$rc" -ne 0 ] || [ -n "${RR_KEEP_CONTROL_PLANE_DIR:-}" ]; then
    echo "test.sh: control plane and engine files and logs kept in $CP_DIR"
  else
    rm -rf "$CP_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The shared engines: resolved one by one (Maven's local repository), then started in parallel
# with each other and with the control plane. Each allows native `_reindex` from any 127.0.0.1 port
# (Elasticsearch and OpenSearch 1: reindex.remote.whitelist; OpenSearch 2/3: allowlist).
engine_pids=()
if [ -n "$RR_ENGINES" ]; then
  step "test.sh: starting the shared engines ($RR_ENGINES) and the control plane" \
    "30-60 s: the JVMs start in parallel (resolving their jars the first time: 2-4 min)"
  # shellcheck disable=SC2086
  "$ROOT/scripts/engine.sh" resolve $RR_ENGINES
  t0=$SECONDS
  mkdir -p "$ENG_DIR"
  for e in $RR_ENGINES; do
    case "$e" in
      opensearch-2|opensearch-3) allow=reindex.remote.allowlist ;;
      elasticsearch-8) allow="" ;; # no reindex module on Maven Central for 8.x
      *) allow=reindex.remote.whitelist ;;
    esac
    ENGINE_HEAP=${RR_ENGINE_HEAP:-512m} "$ROOT/scripts/engine.sh" start "$e" 0 "$ENG_DIR/$e" \
      ${allow:+"$allow=127.0.0.1:*"} >"$ENG_DIR/$e.start" 2>&1 &
    engine_pids+=($!)
  done
fi

# kube-controller-manager aggregates ClusterRoles (the chart's edit/view roles in the RBAC tests).
RR_CONTROLLER_MANAGER=1 "$ROOT/scripts/control-plane.sh" start "$CP_DIR"
eval "$("$ROOT/scripts/control-plane.sh" env "$CP_DIR")"
export KUBECONFIG RR_TEST_KUBECONFIG

if [ -n "$RR_ENGINES" ]; then
  failed=""
  i=0
  for e in $RR_ENGINES; do
    wait "${engine_pids[$i]}" || failed="$failed $e"
    i=$((i + 1))
  done
  if [ -n "$failed" ]; then
    for e in $failed; do echo "test.sh: engine $e failed to start:"; tail -5 "$ENG_DIR/$e.start"; done
    exit 1
  fi
  for e in $RR_ENGINES; do
    var=RR_ENGINE_$(echo "$e" | tr 'a-z.-' 'A-Z__')
    url=$(sed -n 's/^url=//p' "$ENG_DIR/$e.start")
    export "$var=$url"
    echo "test.sh: $var=$url"
  done
  echo "test.sh: engines ready $((SECONDS - t0))s after their start"
fi

REPORT="$ROOT/target/fault-report.md"
mkdir -p "$ROOT/target" && : >"$REPORT"
rc=0
step "test.sh: running the tests (cargo nextest run --no-fail-fast $*)" \
  "the whole suite ~15-25 min on 2 quiet cores, up to 50 min on a busy machine; nextest prints each test as it ends"
cargo nextest run --locked --no-fail-fast "$@" || rc=$?
step_done
if [ -s "$REPORT" ]; then
  echo; echo "Fault report (documents expected / found / written more than once / final phase):"
  echo "| fault | expected | found | rewritten | final phase |"; echo "|---|---|---|---|---|"
  sort "$REPORT"
fi
if [ "$rc" -ne 0 ]; then
  echo "test.sh: cargo nextest failed (exit $rc); kube-apiserver log: $CP_DIR/apiserver.log"
fi
exit "$rc"
