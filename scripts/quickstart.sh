#!/usr/bin/env bash
# The README's first command:
#
#   scripts/quickstart.sh [N=25000] [--keep]
#
# installs what is missing, builds remote-reindex with the optimized `quickstart` profile, starts
# two real single-node engines from their Maven Central jars (scripts/engine.sh): an
# Elasticsearch 7.17 "remote" and an OpenSearch 2.19 destination, the migration most users make.
# It loads N documents into the remote, runs a real `remote-reindex run -f` and prints a summary:
# where the two clusters are, how to look at them with curl, and last the copy's docs/s. Every
# long step says what it does and how long it takes on 2 cores. The engines stop when the script
# ends; on a terminal it waits for Enter first, and with --keep they keep running (the summary
# says how to stop them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/progress.sh
. scripts/lib/progress.sh

N=25000
KEEP=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;;
    '' | *[!0-9]*) echo "usage: $0 [N] [--keep]" >&2; exit 2 ;;
    *) N=$a ;;
  esac
done
export RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
PROFILE=quickstart
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/$PROFILE/remote-reindex
SRC_INDEX=logs-2024
DST_INDEX=logs-2024-copy
W=$(mktemp -d "${TMPDIR:-/tmp}/rr-quickstart.XXXXXX")
DIRS=()

# The two clusters. To copy between other engines (scripts/engine.sh knows opensearch-1/2/3 and
# elasticsearch-6/7/8), change SRC_ENGINE/DST_ENGINE.
SRC_ENGINE=elasticsearch-7
DST_ENGINE=opensearch-2

install_tools() {
  step "Tools: JDK 17 + Maven (apt, if missing), the jars of $SRC_ENGINE and $DST_ENGINE from Maven Central (scripts/install-test-deps.sh --quickstart; skipped when present)" \
    "the first time ~40 s plus apt's JDK and Maven if missing (~1 min): Maven fetches ~110 MB of jars; seconds afterwards"
  RR_ENGINES="$SRC_ENGINE $DST_ENGINE" scripts/install-test-deps.sh --quickstart
  step_done
}

build() {
  step "Building remote-reindex (cargo profile '$PROFILE': opt-level 2, no LTO)" \
    "the first time about 600 CPU-seconds: 5-7 min on 2 idle cores, 15-30 min on busy ones; seconds afterwards"
  # The last crates (this project's) compile for minutes without a line: the heartbeat says so.
  heartbeat cargo build --locked --profile "$PROFILE"
  step_done
}

# "Elasticsearch 7.17.29" from GET /.
engine_name() {
  curl -fsS "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin)["version"]
d = v.get("distribution", "elasticsearch")
print({"opensearch": "OpenSearch", "elasticsearch": "Elasticsearch"}.get(d, d), v["number"])'
}

# Sets SRC/DST (base URLs) and SRC_NAME/DST_NAME (what runs there); appends the engines'
# directories to DIRS (stopped by stop_servers).
start_servers() {
  step "Starting two real engines on free ports: $SRC_ENGINE (the remote), $DST_ENGINE (the destination), heap ${ENGINE_HEAP:-512m} each" \
    "15-35 s each on 2 cores"
  DIRS+=("$W/src")
  SRC=$(scripts/engine.sh start "$SRC_ENGINE" 0 "$W/src" | sed -n 's/^url=//p')
  SRC_NAME="$(engine_name "$SRC") (JVM pid $(cat "$W/src/pid"))"
  echo "    remote:      $SRC  $SRC_NAME"
  DIRS+=("$W/dst")
  DST=$(scripts/engine.sh start "$DST_ENGINE" 0 "$W/dst" | sed -n 's/^url=//p')
  DST_NAME="$(engine_name "$DST") (JVM pid $(cat "$W/dst/pid"))"
  echo "    destination: $DST  $DST_NAME"
  step_done
}

stop_servers() {
  local d
  for d in "${DIRS[@]}"; do
    if [ -f "$d/pid" ]; then scripts/engine.sh stop "$d" || true; fi
  done
  DIRS=()
}

load_documents() {
  step "Loading $N documents (0.2-2 KiB each) into $SRC/$SRC_INDEX" "about 15-30 s per 25,000"
  python3 scripts/load-docs.py "$SRC" "$SRC_INDEX" "$N"
  step_done
}

copy() {
  cat >"$W/reindex.yaml" <<YAML
apiVersion: reindex.dev/v1alpha1
kind: RemoteReindex
metadata:
  name: $SRC_INDEX
spec:
  source:
    remote:
      host: $SRC
      basicAuth: {secretRef: {name: old-creds}}
    index: $SRC_INDEX
    slices: auto
  dest:
    remote:
      host: $DST
    index: $DST_INDEX
    settings: {number_of_replicas: 1}
---
apiVersion: v1
kind: Secret
metadata:
  name: old-creds
stringData: {username: reader, password: not-checked-by-these-local-engines}
YAML
  step "Copying: remote-reindex run -f $W/reindex.yaml" "5-30 s"
  "$BIN" run -f "$W/reindex.yaml" | tee "$W/run.out"
  step_done
}

summary() {
  local rate src_count dst_count settings
  rate=$(grep -oE '\([0-9]+ docs/s\)' "$W/run.out" | tr -d '()' || true)
  src_count=$(curl -fsS "$SRC/$SRC_INDEX/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  dst_count=$(curl -fsS "$DST/$DST_INDEX/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  settings=$(curl -fsS "$DST/$DST_INDEX/_settings?flat_settings=true" | python3 -c '
import json, sys
s = next(iter(json.load(sys.stdin).values()))["settings"]
print(", ".join(k + "=" + str(s.get(k, "(unset)")) for k in ("index.number_of_replicas", "index.refresh_interval")))')
  cat <<EOF

== Quick start summary
remote       $SRC   $SRC_NAME, index $SRC_INDEX: $src_count documents
destination  $DST   $DST_NAME, index $DST_INDEX: $dst_count documents
settings     destination after the copy: $settings (restored after tuning for the copy)
engine logs  $W/src/engine.log, $W/dst/engine.log

Look at them with curl:
  curl -s '$SRC/$SRC_INDEX/_count'
  curl -s '$DST/$DST_INDEX/_count'
  curl -s '$DST/$DST_INDEX/_search?size=1&pretty'
  curl -s '$DST/$DST_INDEX/_settings?pretty'
  curl -s '$DST/$DST_INDEX/_mapping?pretty'      # the copy's marker in _meta is cleared at the end
The binary: $BIN (eval "\$(scripts/env.sh)" puts it and the tools on PATH)

Speed: ${rate:-?} ($N documents, $SRC_ENGINE → $DST_ENGINE, optimized '$PROFILE' build: opt-level 2, no LTO)
EOF
}

cleanup() {
  if [ "$KEEP" = 1 ] && [ ${#DIRS[@]} -gt 0 ]; then
    echo "The engines keep running (--keep): stop them with: scripts/engine.sh stop $W/src; scripts/engine.sh stop $W/dst; rm -rf $W"
    return
  fi
  stop_servers
  rm -rf "$W"
}
trap cleanup EXIT

install_tools
build
start_servers
load_documents
copy
summary
if [ "$KEEP" = 0 ] && [ -t 0 ] && [ -t 1 ]; then
  read -r -p "Both engines run until you press Enter. " _ || true
fi
