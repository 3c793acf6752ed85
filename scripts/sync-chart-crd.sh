#!/usr/bin/env bash
# Copies the generated CRD into the Helm chart, byte for byte:
#
#   scripts/sync-chart-crd.sh           # crds/*.yaml -> charts/remote-reindex-operator/crds/
#   scripts/sync-chart-crd.sh --check   # exit 1 (with a diff) when the chart's copy differs
#
# Regenerate the top-level CRD first when the API types change:
#   cargo run -q -- crd > crds/remotereindex.yaml && cargo run -q -- crd migration > crds/migration.yaml \
#     && scripts/sync-chart-crd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CRDS="remotereindex.yaml migration.yaml"
DST_DIR=charts/remote-reindex-operator/crds

case "${1:-}" in
  --check)
    rc=0
    for f in $CRDS; do
      if ! cmp -s "crds/$f" "$DST_DIR/$f"; then
        echo "$DST_DIR/$f differs from crds/$f: run scripts/sync-chart-crd.sh" >&2
        diff -u "crds/$f" "$DST_DIR/$f" >&2 || true
        rc=1
      fi
    done
    [ "$rc" -eq 0 ] && echo "chart CRDs are identical to crds/"
    exit "$rc"
    ;;
  "")
    mkdir -p "$DST_DIR"
    for f in $CRDS; do
      cp "crds/$f" "$DST_DIR/$f"
      echo "copied crds/$f -> $DST_DIR/$f"
    done
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
