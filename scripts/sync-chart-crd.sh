#!/usr/bin/env bash
# Copies the generated CRD into the Helm chart, byte for byte:
#
#   scripts/sync-chart-crd.sh           # crds/remotereindex.yaml -> charts/remote-reindex-operator/crds/
#   scripts/sync-chart-crd.sh --check   # exit 1 (with a diff) when the chart's copy differs
#
# Regenerate the top-level CRD first when the API types change:
#   cargo run -q -- crd > crds/remotereindex.yaml && scripts/sync-chart-crd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=crds/remotereindex.yaml
DST=charts/remote-reindex-operator/crds/remotereindex.yaml

case "${1:-}" in
  --check)
    if ! cmp -s "$SRC" "$DST"; then
      echo "$DST differs from $SRC: run scripts/sync-chart-crd.sh" >&2
      diff -u "$SRC" "$DST" >&2 || true
      exit 1
    fi
    echo "chart CRD is identical to $SRC"
    ;;
  "")
    mkdir -p "$(dirname "$DST")"
    cp "$SRC" "$DST"
    echo "copied $SRC -> $DST"
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
