#!/usr/bin/env bash
# Copy benchmark (not run in CI). Installs what it needs, builds the binary with the optimized
# `quickstart` profile (Cargo.toml: opt-level 2, no LTO; the quick start shares the build),
# installs elasticdump from npm (cached), then runs scripts/bench.py, which prints the table.
#   scripts/bench.sh [N=200000] [--dest noida|osmem|both] [--skip-elasticdump]
#   scripts/bench.sh [N] --modes     # Engine vs Server mode, Elasticsearch 7.17 → OpenSearch 2.19
#   scripts/bench.sh --engines [N=20000] [--shards 2] [--loaders 1,2,4,8] [--rounds 2] [--skip-elasticdump]
#       # real engines, Elasticsearch 7.17 → OpenSearch 2.19: ingest ceiling, native remote
#       # reindex, elasticdump, remote-reindex (scripts/bench_engines.py); 2.5-6 min on 2 cores
#   scripts/bench.sh --wan [N=100000] [--delays 0,25,50] [--rounds 2] [--bandwidth 12500] [--no-target]
#   scripts/bench.sh --wan [N] --scroll-slices 1,2,4,8,16 [--scroll-delay 25] --bandwidth 0   # scroll slices: source CPU, heap
#       # the same engines with the source behind toxiproxy: native remote reindex vs remote-reindex
#       # at each one-way delay and on one shared 100 Mbit/s link (scripts/bench_wan.py); < 20 min;
#       # exits non-zero when remote-reindex at 25 ms is below 0.9 of its 0 ms speed
#   (RR_BIN=path overrides the binary, e.g. a debug build; ENGINE_HEAP the engines' heap)
set -euo pipefail
cd "$(dirname "$0")/.."
export RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
ENGINES=0
WAN=0
ARGS=()
for a in "$@"; do
  case "$a" in
    --engines) ENGINES=1 ;;
    --wan) WAN=1 ;;
    *) ARGS+=("$a") ;;
  esac
done
scripts/install-test-deps.sh >/dev/null
[ -n "${RR_BIN:-}" ] || cargo build --locked --quiet --profile quickstart
if [ "$WAN" = 1 ]; then
  # toxiproxy-server from the Go module proxy (pinned; go install names the binary `server`, so it
  # is built into a scratch GOBIN and moved), cached in $RR_TOOLS/bin with its version beside it.
  TOXIPROXY_VERSION=v2.12.0
  TP="$RR_TOOLS/bin/toxiproxy-server"
  if [ ! -x "$TP" ] || [ "$(cat "$TP.version" 2>/dev/null)" != "$TOXIPROXY_VERSION" ]; then
    echo "bench.sh: installing toxiproxy-server $TOXIPROXY_VERSION (go install, Go module proxy)" >&2
    GB=$(mktemp -d)
    GOBIN="$GB" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
    mkdir -p "$RR_TOOLS/bin" && mv -f "$GB/server" "$TP" && rmdir "$GB"
    echo "$TOXIPROXY_VERSION" >"$TP.version"
  fi
  export PATH="$RR_TOOLS/bin:$PATH"
  exec python3 scripts/bench_wan.py "${ARGS[@]}"
fi
ED="$RR_TOOLS/elasticdump"
if [ ! -x "$ED/node_modules/.bin/elasticdump" ]; then
  mkdir -p "$ED" && (cd "$ED" && npm install --silent --no-audit --no-fund elasticdump@6 >/dev/null)
fi
export ELASTICDUMP="$ED/node_modules/.bin/elasticdump"
if [ "$ENGINES" = 1 ]; then
  exec python3 scripts/bench_engines.py "${ARGS[@]}"
fi
exec python3 scripts/bench.py "${ARGS[@]}"
