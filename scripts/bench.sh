#!/usr/bin/env bash
# Copy benchmark (not run in CI). Installs what it needs, builds a release binary, installs
# elasticdump from npm (cached), then runs scripts/bench.py, which prints the table.
#   scripts/bench.sh [N=200000] [--dest noida|osmem|both] [--skip-elasticdump]
#   scripts/bench.sh [N] --modes   # Engine vs Server mode, Elasticsearch 7.17 → OpenSearch 2.19
#   (RR_BIN=path overrides the binary, e.g. a debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
export RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
scripts/install-test-deps.sh >/dev/null
[ -n "${RR_BIN:-}" ] || cargo build --release --locked --quiet
ED="$RR_TOOLS/elasticdump"
if [ ! -x "$ED/node_modules/.bin/elasticdump" ]; then
  mkdir -p "$ED" && (cd "$ED" && npm install --silent --no-audit --no-fund elasticdump@6 >/dev/null)
fi
export ELASTICDUMP="$ED/node_modules/.bin/elasticdump"
exec python3 scripts/bench.py "$@"
