#!/usr/bin/env bash
# The README's first command:
#
#   scripts/quickstart.sh [N=25000] [--keep]
#
# installs what is missing, builds remote-reindex with the optimized `quickstart` profile, starts
# two local search servers (the "remote" and the destination), loads N documents into the remote,
# runs a real `remote-reindex run -f` and prints a summary: docs/s, where the two clusters are and
# how to look at them with curl. Every long step says what it does and how long it takes on 2
# cores. The servers stop when the script ends; on a terminal it waits for Enter first, and with
# --keep they keep running (the summary says how to stop them).
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
PIDS=()

install_tools() {
  step "Tools: search servers, kubectl, nginx (scripts/install-test-deps.sh ${INSTALL_ARGS[*]}; skipped when present)" "1-2 min the first time"
  scripts/install-test-deps.sh "${INSTALL_ARGS[@]}"
  step_done
}

build() {
  step "Building remote-reindex (cargo profile '$PROFILE': opt-level 2, no LTO)" \
    "the first time about 600 CPU-seconds: 5-7 min on 2 idle cores, 15-30 min on busy ones; seconds afterwards"
  cargo build --locked --profile "$PROFILE"
  step_done
}

# The two clusters. To copy between other servers (e.g. real Elasticsearch and OpenSearch nodes),
# change only INSTALL_ARGS and this function: it sets SRC/DST (base URLs), SRC_NAME/DST_NAME
# (what runs there) and appends the servers' pids to PIDS (stopped by stop_servers).
INSTALL_ARGS=(--no-engines) # the imitation servers below need no JDK or engine jars
start_servers() {
  step "Starting two local servers on free ports" "a few seconds"
  SRC=$(scripts/servers.sh noida "$W/src")
  SRC_NAME="noida-db, answers as Elasticsearch 8"
  PIDS+=("$(cat "$W/src/pid")")
  DST=$(scripts/servers.sh osmem "$W/dst")
  DST_NAME="osmem-server, answers as OpenSearch 3"
  PIDS+=("$(cat "$W/dst/pid")")
  echo "    remote:      $SRC ($SRC_NAME)"
  echo "    destination: $DST ($DST_NAME)"
  step_done
}

stop_servers() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  PIDS=()
}

load_documents() {
  step "Loading $N documents (0.2-2 KiB each) into $SRC/$SRC_INDEX" "about 10 s per 25,000"
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
stringData: {username: reader, password: not-checked-by-these-local-servers}
YAML
  step "Copying: remote-reindex run -f $W/reindex.yaml" "a few seconds"
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
speed        ${rate:-?} ($N documents, build profile '$PROFILE')
remote       $SRC   $SRC_NAME, index $SRC_INDEX: $src_count documents
destination  $DST   $DST_NAME, index $DST_INDEX: $dst_count documents
settings     destination after the copy: $settings (restored after tuning for the copy)

Look at them with curl:
  curl -s '$SRC/$SRC_INDEX/_count'
  curl -s '$DST/$DST_INDEX/_count'
  curl -s '$DST/$DST_INDEX/_search?size=1&pretty'
  curl -s '$DST/$DST_INDEX/_settings?pretty'
  curl -s '$DST/$DST_INDEX/_mapping?pretty'      # the copy's marker in _meta is cleared at the end
The binary: $BIN (eval "\$(scripts/env.sh)" puts it and the tools on PATH)
EOF
}

cleanup() {
  if [ "$KEEP" = 1 ] && [ ${#PIDS[@]} -gt 0 ]; then
    echo "The servers keep running (--keep): stop them with: kill ${PIDS[*]}; rm -rf $W"
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
  read -r -p "Both servers run until you press Enter. " _ || true
fi
