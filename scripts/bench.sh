#!/usr/bin/env bash
# Copy benchmark (not run in CI). Installs what it needs, builds the binary with the optimized
# `quickstart` profile (Cargo.toml: opt-level 2, no LTO; the quick start shares the build),
# installs elasticdump from npm (cached), then runs scripts/bench.py, which prints the table.
#   scripts/bench.sh [N=200000] [--dest noida|osmem|both] [--skip-elasticdump]
#   scripts/bench.sh [N] --modes     # Engine vs Server mode, Elasticsearch 7.17 → OpenSearch 2.19
#   scripts/bench.sh --engines [N=20000] [--shards 2] [--loaders 1,2,4,8] [--rounds 2] [--skip-elasticdump]
#       # real engines, Elasticsearch 7.17 → OpenSearch 2.19: ingest ceiling, native remote
#       # reindex, elasticdump, remote-reindex (scripts/bench_engines.py); 2.5-6 min on 2 cores
#   (RR_BIN=path overrides the binary, e.g. a debug build; ENGINE_HEAP the engines' heap)
set -euo pipefail
cd "$(dirname "$0")/.."
export RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
ENGINES=0
ARGS=()
for a in "$@"; do
  if [ "$a" = --engines ]; then ENGINES=1; else ARGS+=("$a"); fi
done
scripts/install-test-deps.sh >/dev/null
[ -n "${RR_BIN:-}" ] || cargo build --locked --quiet --profile quickstart
ED="$RR_TOOLS/elasticdump"
if [ ! -x "$ED/node_modules/.bin/elasticdump" ]; then
  mkdir -p "$ED" && (cd "$ED" && npm install --silent --no-audit --no-fund elasticdump@6 >/dev/null)
fi
export ELASTICDUMP="$ED/node_modules/.bin/elasticdump"
if [ "$ENGINES" = 1 ]; then
  exec python3 scripts/bench_engines.py "${ARGS[@]}"
fi
exec python3 scripts/bench.py "${ARGS[@]}"
