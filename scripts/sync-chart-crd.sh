#!/usr/bin/env bash
# Copies the generated CRDs into the Helm chart, byte for byte:
#
#   scripts/sync-chart-crd.sh           # crds/*.yaml -> charts/remote-reindex-operator/crds/
#   scripts/sync-chart-crd.sh --check   # exit 1 (with a diff) when a chart's copy differs
#
# Regenerate the top-level CRDs first when the API types change:
#   cargo run -q -- crd > crds/remotereindex.yaml
#   cargo run -q -- crd reindexpolicy > crds/reindexpolicy.yaml
#   cargo run -q -- crd migration > crds/migration.yaml
#   scripts/sync-chart-crd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CRDS="remotereindex.yaml reindexpolicy.yaml migration.yaml"
CHART_CRDS=charts/remote-reindex-operator/crds

case "${1:-}" in
  --check)
    rc=0
    for f in $CRDS; do
      if ! cmp -s "crds/$f" "$CHART_CRDS/$f"; then
        echo "$CHART_CRDS/$f differs from crds/$f: run scripts/sync-chart-crd.sh" >&2
        diff -u "crds/$f" "$CHART_CRDS/$f" >&2 || true
        rc=1
      fi
    done
    [ "$rc" = 0 ] && echo "chart CRDs are identical to crds/"
    exit "$rc"
    ;;
  "")
    mkdir -p "$CHART_CRDS"
    for f in $CRDS; do
      cp "crds/$f" "$CHART_CRDS/$f"
      echo "copied crds/$f -> $CHART_CRDS/$f"
    done
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
