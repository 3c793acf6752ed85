#!/bin/bash
# Adapted from the shared recipe: builds kube-apiserver v1.20.2 from Debian bookworm's source package.
# Build a real kube-apiserver (and optionally kube-controller-manager) v1.20.2 from Debian bookworm's
# own 'kubernetes' source package (1.20.5+really1.20.2-1.1+deb12u1, includes vendor/) with Debian's golang 1.19.
# Usage: RECIPE-build-k8s-1.20-from-debian.sh <workdir> [extra cmd names, e.g. kube-controller-manager]
set -euo pipefail
# shellcheck source=scripts/lib/progress.sh
. "$(dirname "$0")/lib/progress.sh"
W=${1:-/tmp/k8sbuild}; shift || true
mkdir -p "$W"/apt/lists/partial "$W"/bin
export DEBIAN_FRONTEND=noninteractive
echo "    1/4 apt: Go 1.19, etcd and two patched Go libraries (about 1 min)"
apt_get update -qq
apt_get install -y -qq --no-install-recommends golang-go etcd-server etcd-client \
    golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev openssl curl
# Debian's Go 1.19: this 1.20 tree was never built with newer Go, and machines may carry one first on PATH.
export PATH="/usr/lib/go-1.19/bin:$PATH" GOTOOLCHAIN=local
go version | grep -q 'go1\.19' || { echo "need Debian's Go 1.19 at /usr/lib/go-1.19/bin, found: $(go version)" >&2; exit 1; }
# private deb-src list derived from the machine's configured Debian mirror, so the system apt config is untouched
MIRROR=$(grep -hoE '^URIs: *[^ ]+/debian$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
[ -n "$MIRROR" ] || MIRROR=$(grep -hoE '^deb +[^ ]+/debian ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
printf 'deb-src %s bookworm main\ndeb-src %s-security bookworm-security main\n' "$MIRROR" "$MIRROR" > "$W"/apt/sources.list
A="-o Dir::Etc::SourceList=$W/apt/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$W/apt/lists"
echo "    2/4 apt: downloading the kubernetes source package (about 35 MB, under a minute)"
apt_get $A update -qq
# The download goes to $W, under a home directory apt's sandbox user _apt cannot write: download
# as root from the start instead of letting apt fall back to it with a warning.
cd "$W" && apt_get $A -o APT::Sandbox::User=root source --download-only kubernetes
tar xzf "$W"/kubernetes_1.20.5+really1.20.2.orig.tar.gz -C "$W"
SRC="$W"/kubernetes-1.20.2
# Go>=1.18 crashes k8s 1.20 ("fatal error: fault" in reflect2 map iteration) -> swap in Debian's fixed libs
V="$SRC"/vendor/github.com
rm -rf "$V"/modern-go/reflect2 "$V"/json-iterator/go
cp -rL /usr/share/gocode/src/github.com/modern-go/reflect2 "$V"/modern-go/reflect2
cp -rL /usr/share/gocode/src/github.com/json-iterator/go   "$V"/json-iterator/go
find "$V"/modern-go/reflect2 "$V"/json-iterator/go -name '*_test.go' -delete
export GOPATH="$W"/gopath GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE="${GOCACHE:-$W/gocache}"
mkdir -p "$GOPATH"/src/k8s.io; ln -sfn "$SRC" "$GOPATH"/src/k8s.io/kubernetes
cd "$GOPATH"/src/k8s.io/kubernetes
# generate pkg/generated/openapi/zz_generated.openapi.go (not shipped in the tarball)
echo "    3/4 generating the OpenAPI definitions (about 1-2 min)"
heartbeat go build -o "$W"/bin/openapi-gen k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
DIRS=$( (grep -Rl --include='*.go' --exclude='*_test.go' '+k8s:openapi-gen=' pkg cmd plugin vendor/k8s.io || true) \
  | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' -e '/testdata/' \
  | xargs -n1 dirname | LC_ALL=C sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd, -)
heartbeat "$W"/bin/openapi-gen --logtostderr -i "$DIRS" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
  -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$W"/openapi-violations.report
P=k8s.io/kubernetes/vendor/k8s.io
LDF="-s -w -X $P/component-base/version.gitVersion=v1.20.2 -X $P/component-base/version.gitMajor=1 -X $P/component-base/version.gitMinor=20 -X $P/component-base/version.gitTreeState=clean -X $P/client-go/pkg/version.gitVersion=v1.20.2 -X $P/client-go/pkg/version.gitMajor=1 -X $P/client-go/pkg/version.gitMinor=20"
for c in kube-apiserver "$@"; do
  echo "    4/4 go build $c (the long part: about 4-6 min on 2 cores)"
  heartbeat go build -o "$W"/bin/$c -ldflags "$LDF" k8s.io/kubernetes/cmd/$c
done
ls -la "$W"/bin
