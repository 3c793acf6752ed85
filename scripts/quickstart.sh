#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts two local search servers
# (noida-db as Elasticsearch 8 = the "remote", osmem-server as OpenSearch 3 = the destination),
# loads N documents (default 25000) into the remote, runs a real `remote-reindex run -f` and
# prints both sides' counts and settings. Stops the servers on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-25000}
export RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
scripts/install-test-deps.sh
cargo build --locked --quiet
W=$(mktemp -d "${TMPDIR:-/tmp}/rr-quickstart.XXXXXX")
cleanup() { for d in "$W"/src "$W"/dst; do [ -f "$d/pid" ] && kill "$(cat "$d/pid")" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
SRC=$(scripts/servers.sh noida "$W/src")
DST=$(scripts/servers.sh osmem "$W/dst")
echo "remote (Elasticsearch 8, noida-db): $SRC    destination (OpenSearch 3, osmem-server): $DST"
python3 scripts/load-docs.py "$SRC" logs-2024 "$N"
cat >"$W/reindex.yaml" <<YAML
apiVersion: reindex.dev/v1alpha1
kind: RemoteReindex
metadata:
  name: logs-2024
spec:
  source:
    remote:
      host: $SRC
      basicAuth: {secretRef: {name: old-creds}}
    index: logs-2024
    slices: auto
  dest:
    remote:
      host: $DST
    index: logs-2024-copy
    settings: {number_of_replicas: 1}
---
apiVersion: v1
kind: Secret
metadata:
  name: old-creds
stringData: {username: reader, password: not-checked-by-these-local-servers}
YAML
echo "+ remote-reindex run -f reindex.yaml"
./target/debug/remote-reindex run -f "$W/reindex.yaml"
echo "source count:      $(curl -fsS "$SRC/logs-2024/_count")"
echo "destination count: $(curl -fsS "$DST/logs-2024-copy/_count")"
echo "destination settings after the copy: $(curl -fsS "$DST/logs-2024-copy/_settings?flat_settings=true")"
