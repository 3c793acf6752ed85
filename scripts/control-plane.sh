#!/usr/bin/env bash
# A throw-away Kubernetes control plane (etcd + kube-apiserver, no kubelet/scheduler; optionally
# kube-controller-manager running only its clusterrole-aggregation controller) on free 127.0.0.1
# ports, for tests and local runs of the operator.
#
#   scripts/control-plane.sh start DIR   # start, wait for /readyz, write DIR/kubeconfig
#                                        # RR_CONTROLLER_MANAGER=1: also kube-controller-manager
#                                        # --controllers=clusterrole-aggregation (aggregated
#                                        # ClusterRoles such as edit/view get their rules)
#   scripts/control-plane.sh env DIR     # print shell exports (eval "$(scripts/control-plane.sh env DIR)")
#   scripts/control-plane.sh stop DIR    # stop what `start DIR` started
#
# DIR receives: kubeconfig (insecure-skip-tls-verify), kubeconfig-ca (verifies TLS), tokens.csv, admin.token, sa.key/sa.pub, certs/, etcd-data/,
# etcd.log, apiserver.log, etcd.pid, apiserver.pid, ports, audit-policy.yaml and audit.log (the
# request body of every write to a RemoteReindex or Migration status; `env` exports RR_KUBE_AUDIT_LOG).
# Binaries: kube-apiserver and kube-controller-manager of version $RR_KUBE_VERSION (default 1.37.2)
# from $RR_TOOLS/k8s/v$RR_KUBE_VERSION (default ~/.cache/remote-reindex, built from the Go module
# proxy by scripts/install-test-deps.sh --k8s), etcd from $RR_TOOLS/bin or $PATH. Override with
# KUBE_APISERVER=... / ETCD=... / KUBE_CONTROLLER_MANAGER=... After start-up the API server's
# /version must report v$RR_KUBE_VERSION, else the start fails: a test never runs on another version.
set -euo pipefail

RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
RR_KUBE_VERSION=${RR_KUBE_VERSION:-1.37.2}
KUBE_BIN="$RR_TOOLS/k8s/v$RR_KUBE_VERSION"
usage() { echo "usage: $0 start|stop|env|restart-apiserver DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
CMD=$1
mkdir -p "$2"
DIR=$(cd "$2" && pwd)

find_bin() { # name -> path
  if [ -x "$RR_TOOLS/bin/$1" ]; then echo "$RR_TOOLS/bin/$1"; return; fi
  command -v "$1" 2>/dev/null || { echo "$1 not found (run scripts/install-test-deps.sh --k8s)" >&2; return 1; }
}

# kube-apiserver / kube-controller-manager of exactly $RR_KUBE_VERSION (never an older build that
# may sit in $RR_TOOLS/bin or on PATH).
find_kube_bin() { # name -> path
  if [ -x "$KUBE_BIN/$1" ]; then echo "$KUBE_BIN/$1"; return; fi
  echo "$1 v$RR_KUBE_VERSION not found in $KUBE_BIN (run scripts/install-test-deps.sh --k8s)" >&2
  return 1
}

# Prints N distinct ports that are free right now (bound together, then released).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() { # pidfile grace-period-in-tenths-of-a-second
  local f=$1 grace=$2 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 "$grace"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

do_stop() {
  # The state is throw-away: kube-apiserver lingers ~5 s after SIGTERM, so it gets 1 s, then SIGKILL.
  stop_pid "$DIR/controller-manager.pid" 10
  stop_pid "$DIR/apiserver.pid" 10
  stop_pid "$DIR/etcd.pid" 50
}

do_env() {
  [ -f "$DIR/kubeconfig" ] || { echo "no control plane in $DIR" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$DIR/ports"
  echo "export KUBECONFIG='$DIR/kubeconfig'"
  echo "export RR_TEST_KUBECONFIG='$DIR/kubeconfig'"
  echo "export RR_KUBE_SERVER='https://127.0.0.1:$APISERVER_PORT'"
  echo "export RR_KUBE_TOKEN='$(cat "$DIR/admin.token")'"
  echo "export RR_KUBE_AUDIT_LOG='$DIR/audit.log'"
}

# The audit policy: the request body of every write to the status of this project's resources
# (RemoteReindex, Migration), so tests can see exactly what the controllers patch ($DIR/audit.log,
# one JSON event per line); nothing else is recorded.
write_audit_policy() {
  cat >"$DIR/audit-policy.yaml" <<'POLICY'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Request
    verbs: [patch, update]
    resources:
      - group: reindex.dev
        resources: [remotereindexes/status, migrations/status]
  - level: None
POLICY
}

# One attempt on fresh ports. Returns 0 when ready, 3 when a port was taken (retry), 1 otherwise.
launch_apiserver() { # binary etcd-client-port secure-port
  [ -f "$DIR/audit-policy.yaml" ] || write_audit_policy
  setsid "$1" --etcd-servers="http://127.0.0.1:$2" \
    --audit-policy-file="$DIR/audit-policy.yaml" --audit-log-path="$DIR/audit.log" \
    --audit-log-format=json --audit-log-mode=blocking \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$3" \
    --cert-dir="$DIR/certs" \
    --token-auth-file="$DIR/tokens.csv" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/sa.pub" --service-account-signing-key-file="$DIR/sa.key" \
    --service-cluster-ip-range=10.96.0.0/24 \
    --endpoint-reconciler-type=none \
    --disable-admission-plugins=ServiceAccount \
    </dev/null >>"$DIR/apiserver.log" 2>&1 &
  echo $! >"$DIR/apiserver.pid"
}

# Restarts only kube-apiserver (same ports, same etcd, same certificates): a fault for tests.
do_restart_apiserver() {
  local apiserver_bin token i
  apiserver_bin=${KUBE_APISERVER:-$(find_kube_bin kube-apiserver)}
  # shellcheck disable=SC1091
  . "$DIR/ports"
  token=$(cat "$DIR/admin.token")
  stop_pid "$DIR/apiserver.pid" 10
  launch_apiserver "$apiserver_bin" "$ETCD_CLIENT_PORT" "$APISERVER_PORT"
  for i in $(seq 1 600); do
    if curl -sk --max-time 2 -H "Authorization: Bearer $token" "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null | grep -q '^ok'; then
      echo "kube-apiserver restarted"; return 0
    fi
    sleep 0.2
  done
  echo "kube-apiserver not ready after restart" >&2; tail -n 15 "$DIR/apiserver.log" >&2; exit 1
}

start_once() {
  local etcd_bin=$1 apiserver_bin=$2 token=$3
  local etcd_client etcd_peer api extra_etcd=() extra_api=() t0 i
  read -r etcd_client etcd_peer api <<<"$(free_ports 3)"
  printf 'ETCD_CLIENT_PORT=%s\nETCD_PEER_PORT=%s\nAPISERVER_PORT=%s\n' "$etcd_client" "$etcd_peer" "$api" >"$DIR/ports"

  # etcd >= 3.5 (and late 3.4.x) can skip fsync; Debian bookworm's 3.4.23 cannot.
  # (help text captured first: `--help | grep -q` under pipefail fails on SIGPIPE.)
  local etcd_help
  etcd_help=$("$etcd_bin" --help 2>&1 || true)
  case "$etcd_help" in *--unsafe-no-fsync*) extra_etcd+=(--unsafe-no-fsync=true) ;; esac

  rm -rf "$DIR/etcd-data"
  t0=$(date +%s%N)
  setsid "$etcd_bin" --name rr --data-dir "$DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "rr=http://127.0.0.1:$etcd_peer" \
    "${extra_etcd[@]}" </dev/null >"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"

  launch_apiserver "$apiserver_bin" "$etcd_client" "$api"

  cat >"$DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: rr-test
  cluster:
    server: https://127.0.0.1:$api
    insecure-skip-tls-verify: true
users:
- name: rr-admin
  user:
    token: $token
contexts:
- name: rr-test
  context: {cluster: rr-test, user: rr-admin, namespace: default}
current-context: rr-test
KC

  for i in $(seq 1 600); do # up to 120 s (a cold start on a busy 2-core machine can be slow)
    if curl -sk --max-time 2 -H "Authorization: Bearer $token" "https://127.0.0.1:$api/readyz" 2>/dev/null | grep -q '^ok'; then
      write_ca_kubeconfig "$api" "$token"
      check_version "$api" "$token" || { do_stop; return 1; }
      echo "control plane ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms: https://127.0.0.1:$api (etcd :$etcd_client), kubeconfig $DIR/kubeconfig"
      return 0
    fi
    if ! alive "$DIR/etcd.pid" || ! alive "$DIR/apiserver.pid"; then
      do_stop
      if grep -qi 'address already in use' "$DIR/etcd.log" "$DIR/apiserver.log"; then return 3; fi
      echo "control plane died during start-up; last log lines:" >&2
      tail -n 15 "$DIR/etcd.log" "$DIR/apiserver.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "kube-apiserver not ready after 120 s; last log lines:" >&2
  tail -n 15 "$DIR/etcd.log" "$DIR/apiserver.log" >&2
  do_stop
  return 1
}

# The API server must be the version asked for: tests of CEL rules, OpenAPI v3 and field
# validation mean nothing on another one.
check_version() { # port token
  local got
  got=$(curl -sk --max-time 5 -H "Authorization: Bearer $2" "https://127.0.0.1:$1/version" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])' 2>/dev/null || true)
  if [ "$got" != "v$RR_KUBE_VERSION" ]; then
    echo "kube-apiserver reports version '$got', expected v$RR_KUBE_VERSION" >&2
    return 1
  fi
}

# DIR/kubeconfig-ca: same cluster, but verifies the apiserver's self-signed serving certificate
# (certs/apiserver.crt = serving cert + its CA, generated by kube-apiserver at start-up).
write_ca_kubeconfig() {
  local api=$1 token=$2 ca
  [ -s "$DIR/certs/apiserver.crt" ] || return 0
  ca=$(base64 -w0 <"$DIR/certs/apiserver.crt")
  cat >"$DIR/kubeconfig-ca" <<KC
apiVersion: v1
kind: Config
clusters:
- name: rr-test
  cluster:
    server: https://127.0.0.1:$api
    certificate-authority-data: $ca
users:
- name: rr-admin
  user:
    token: $token
contexts:
- name: rr-test
  context: {cluster: rr-test, user: rr-admin, namespace: default}
current-context: rr-test
KC
}

# kube-controller-manager with only the clusterrole-aggregation controller, talking to the
# apiserver with the admin kubeconfig; no serving port (--secure-port=0).
start_controller_manager() {
  local kcm_bin i
  kcm_bin=${KUBE_CONTROLLER_MANAGER:-$(find_kube_bin kube-controller-manager)}
  setsid "$kcm_bin" --kubeconfig="$DIR/kubeconfig" --controllers=clusterrole-aggregation \
    --leader-elect=false --secure-port=0 --use-service-account-credentials=false \
    </dev/null >>"$DIR/controller-manager.log" 2>&1 &
  echo $! >"$DIR/controller-manager.pid"
  # Ready when the built-in `view` ClusterRole has aggregated rules (it has none without it).
  for i in $(seq 1 300); do
    if ! alive "$DIR/controller-manager.pid"; then
      echo "kube-controller-manager exited; last log lines:" >&2
      tail -n 15 "$DIR/controller-manager.log" >&2
      return 1
    fi
    if KUBECONFIG="$DIR/kubeconfig" kubectl get clusterrole view -o jsonpath='{.rules[*].resources}' 2>/dev/null | grep -q pods; then
      echo "kube-controller-manager (clusterrole-aggregation) running"
      return 0
    fi
    sleep 0.2
  done
  echo "kube-controller-manager did not aggregate the view ClusterRole in 60 s" >&2
  tail -n 15 "$DIR/controller-manager.log" >&2
  return 1
}

do_start() {
  local etcd_bin apiserver_bin token attempt rc
  etcd_bin=${ETCD:-$(find_bin etcd)}
  apiserver_bin=${KUBE_APISERVER:-$(find_kube_bin kube-apiserver)}
  if alive "$DIR/apiserver.pid" || alive "$DIR/etcd.pid"; then
    echo "a control plane is already running in $DIR (stop it first)" >&2; exit 1
  fi
  mkdir -p "$DIR/certs"
  [ -f "$DIR/sa.key" ] || openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
  [ -f "$DIR/sa.pub" ] || openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
  if [ ! -s "$DIR/admin.token" ]; then openssl rand -hex 24 >"$DIR/admin.token"; fi
  token=$(cat "$DIR/admin.token")
  echo "$token,rr-admin,rr-admin,system:masters" >"$DIR/tokens.csv"
  for attempt in 1 2 3; do
    rc=0; start_once "$etcd_bin" "$apiserver_bin" "$token" || rc=$?
    if [ "$rc" = 0 ]; then
      if [ -n "${RR_CONTROLLER_MANAGER:-}" ]; then start_controller_manager || { do_stop; exit 1; }; fi
      return 0
    fi
    [ "$rc" = 3 ] || exit 1
    echo "port collision, retrying on other ports ($attempt)" >&2
  done
  exit 1
}

case "$CMD" in
  start) do_start ;;
  restart-apiserver) do_restart_apiserver ;;
  stop) do_stop ;;
  env) do_env ;;
  *) usage ;;
esac
