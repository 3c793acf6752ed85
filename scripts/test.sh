#!/usr/bin/env bash
# The project's test command:
#
#   scripts/test.sh [extra cargo-nextest args, e.g. a test filter]
#
# Installs the test tools if missing (scripts/install-test-deps.sh --k8s, cached under $RR_TOOLS,
# default ~/.cache/remote-reindex), starts ONE shared Kubernetes control plane (etcd +
# kube-apiserver + kube-controller-manager's clusterrole-aggregation, scripts/control-plane.sh) in
# a temporary directory, exports
#   KUBECONFIG / RR_TEST_KUBECONFIG   admin kubeconfig of that control plane
#   RR_TOOLS, PATH                    so tests find noida-db, osmem-server, kubectl, helm, nginx
# runs `cargo nextest run --locked --no-fail-fast "$@"`, and stops the control plane on exit.
# The Rust test harness starts its own Elasticsearch/OpenSearch-API servers.
# Set RR_KEEP_CONTROL_PLANE_DIR=1 to keep the control plane's directory (logs) after a run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

export RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
export PATH="$RR_TOOLS/bin:$RR_TOOLS/venv/bin:$PATH"
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH="$PATH:/usr/sbin" ;; esac # nginx

missing=()
for t in kube-apiserver kube-controller-manager kubectl noida-db osmem-server helm etcd nginx openssl curl tinyproxy; do
  command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
"$RR_TOOLS/venv/bin/python" -c 'import botocore' 2>/dev/null || missing+=(botocore)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: missing ${missing[*]}; running scripts/install-test-deps.sh --k8s"
  "$ROOT/scripts/install-test-deps.sh" --k8s
  hash -r
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test.sh: installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

CP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rr-control-plane.XXXXXX")
cleanup() {
  local rc=$?
  "$ROOT/scripts/control-plane.sh" stop "$CP_DIR" || true
  if [ "$rc" -ne 0 ] || [ -n "${RR_KEEP_CONTROL_PLANE_DIR:-}" ]; then
    echo "test.sh: control plane files and logs kept in $CP_DIR"
  else
    rm -rf "$CP_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# kube-controller-manager aggregates ClusterRoles (the chart's edit/view roles in the RBAC tests).
RR_CONTROLLER_MANAGER=1 "$ROOT/scripts/control-plane.sh" start "$CP_DIR"
eval "$("$ROOT/scripts/control-plane.sh" env "$CP_DIR")"
export KUBECONFIG RR_TEST_KUBECONFIG

REPORT="$ROOT/target/fault-report.md"
mkdir -p "$ROOT/target" && : >"$REPORT"
rc=0
cargo nextest run --locked --no-fail-fast "$@" || rc=$?
if [ -s "$REPORT" ]; then
  echo; echo "Fault report (documents expected / found / written more than once / final phase):"
  echo "| fault | expected | found | rewritten | final phase |"; echo "|---|---|---|---|---|"
  sort "$REPORT"
fi
if [ "$rc" -ne 0 ]; then
  echo "test.sh: cargo nextest failed (exit $rc); kube-apiserver log: $CP_DIR/apiserver.log"
fi
exit "$rc"
