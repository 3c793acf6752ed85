#!/bin/bash
# Adapted from the shared recipe: builds kube-apiserver v1.20.2 from Debian bookworm's source package.
# Build a real kube-apiserver (and optionally kube-controller-manager) v1.20.2 from Debian bookworm's
# own 'kubernetes' source package (1.20.5+really1.20.2-1.1+deb12u1, includes vendor/) with Debian's golang 1.19.
# Usage: RECIPE-build-k8s-1.20-from-debian.sh <workdir> [extra cmd names, e.g. kube-controller-manager]
set -euo pipefail
W=${1:-/tmp/k8sbuild}; shift || true
mkdir -p "$W"/apt/lists/partial "$W"/bin
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends golang-go etcd-server etcd-client \
    golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev openssl curl >/dev/null
# Debian's Go 1.19: this 1.20 tree was never built with newer Go, and machines may carry one first on PATH.
export PATH="/usr/lib/go-1.19/bin:$PATH" GOTOOLCHAIN=local
go version | grep -q 'go1\.19' || { echo "need Debian's Go 1.19 at /usr/lib/go-1.19/bin, found: $(go version)" >&2; exit 1; }
# private deb-src list derived from the machine's configured Debian mirror, so the system apt config is untouched
MIRROR=$(grep -hoE '^URIs: *[^ ]+/debian$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
[ -n "$MIRROR" ] || MIRROR=$(grep -hoE '^deb +[^ ]+/debian ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
printf 'deb-src %s bookworm main\ndeb-src %s-security bookworm-security main\n' "$MIRROR" "$MIRROR" > "$W"/apt/sources.list
A="-o Dir::Etc::SourceList=$W/apt/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$W/apt/lists"
apt-get $A update -qq
cd "$W" && apt-get $A source --download-only kubernetes
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
go build -o "$W"/bin/openapi-gen k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
DIRS=$( (grep -Rl --include='*.go' --exclude='*_test.go' '+k8s:openapi-gen=' pkg cmd plugin vendor/k8s.io || true) \
  | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' -e '/testdata/' \
  | xargs -n1 dirname | LC_ALL=C sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd, -)
"$W"/bin/openapi-gen --logtostderr -i "$DIRS" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
  -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$W"/openapi-violations.report
P=k8s.io/kubernetes/vendor/k8s.io
LDF="-s -w -X $P/component-base/version.gitVersion=v1.20.2 -X $P/component-base/version.gitMajor=1 -X $P/component-base/version.gitMinor=20 -X $P/component-base/version.gitTreeState=clean -X $P/client-go/pkg/version.gitVersion=v1.20.2 -X $P/client-go/pkg/version.gitMajor=1 -X $P/client-go/pkg/version.gitMinor=20"
for c in kube-apiserver "$@"; do
  go build -o "$W"/bin/$c -ldflags "$LDF" k8s.io/kubernetes/cmd/$c
done
ls -la "$W"/bin
