#!/usr/bin/env bash
# Builds a current kube-apiserver (and, unless --apiserver-only, kube-controller-manager) from the
# Go module proxy with the machine's Go, no other downloads:
#
#   scripts/build-kube-apiserver.sh OUTDIR [VERSION] [--apiserver-only]
#        -> OUTDIR/kube-apiserver, OUTDIR/kube-controller-manager   (VERSION default 1.37.2)
#
# `k8s.io/kubernetes` is served as a module but requires its staging modules at v0.0.0 through
# `replace => ./staging/...`; a small module of our own requires it and maps each staging module to
# the published v0.MINOR.PATCH instead (the usual way to import k8s.io/kubernetes). The version
# ldflags are set so `/version` (and kubectl) report the real version.
# Measured on 2 cores: module downloads ~3 min, build ~15 min (busy machine), 170 MB per binary.
# The Go build cache and module cache live under OUTDIR/../go-* so a rebuild is quick.
set -euo pipefail
# shellcheck source=scripts/lib/progress.sh
. "$(dirname "$0")/lib/progress.sh"
OUT=${1:?usage: build-kube-apiserver.sh OUTDIR [VERSION] [--apiserver-only]}
V=${2:-1.37.2}
ONLY_APISERVER=0
[ "${3:-}" = --apiserver-only ] && ONLY_APISERVER=1
MINOR=${V#1.}; MINOR=${MINOR%%.*}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W="$OUT.build"
rm -rf "$W"
mkdir -p "$W/cmd/kube-apiserver" "$W/cmd/kube-controller-manager"
command -v go >/dev/null || { echo "build-kube-apiserver.sh: Go is needed (apt-get install golang-go, or Go on PATH)" >&2; exit 1; }
# GOPATH (module cache) must not lie inside the module; keep it beside OUT so it is reused.
export GOPATH=${RR_GOPATH:-$(dirname "$OUT")/gopath} GOFLAGS=-mod=mod GOTOOLCHAIN=local
export GOCACHE=${RR_GOCACHE:-$(dirname "$OUT")/gocache}
cd "$W"
echo "    1/3 Go module proxy: k8s.io/kubernetes v$V and its dependencies (40 s to 3 min cold)"
heartbeat go mod download -json "k8s.io/kubernetes@v$V" >/dev/null
MOD=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$V.mod
{
  echo "module localk8s"; echo; echo "go $(go env GOVERSION | sed 's/^go//')"; echo
  echo "require k8s.io/kubernetes v$V"; echo; echo "replace ("
  sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging.*#\1#p' "$MOD" |
    while read -r m; do echo "	$m => $m v0.$MINOR.${V##*.}"; done
  echo ")"
} >go.mod
cmds="kube-apiserver:NewAPIServerCommand"
[ "$ONLY_APISERVER" = 1 ] || cmds="$cmds kube-controller-manager:NewControllerManagerCommand"
targets=()
for c in $cmds; do
  cat >"cmd/${c%%:*}/main.go" <<GO
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/${c%%:*}/app"
)

func main() { os.Exit(cli.Run(app.${c#*:}())) }
GO
  targets+=("./cmd/${c%%:*}")
done
[ "$ONLY_APISERVER" = 1 ] && rm -rf cmd/kube-controller-manager
heartbeat go mod tidy
echo "    2/3 go build ${targets[*]} (about 6 min cold on 2 quiet cores, up to 15 on busy ones)"
heartbeat go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$V -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR" \
  -o "$W/bin/" "${targets[@]}"
echo "    3/3 installing into $OUT"
for t in "${targets[@]}"; do cp "$W/bin/$(basename "$t")" "$OUT/"; done
"$OUT/kube-apiserver" --version
rm -rf "$W"
