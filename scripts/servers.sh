#!/usr/bin/env bash
# Starts a local Elasticsearch-API server on a free port and prints its URL.
#   scripts/servers.sh noida DIR    # noida-db, answers as Elasticsearch 8 (data in DIR)
#   scripts/servers.sh osmem DIR    # osmem-server, answers as OpenSearch 3 (in memory)
# The server's pid is written to DIR/pid; stop it with `kill $(cat DIR/pid)`.
set -euo pipefail
RR_TOOLS=${RR_TOOLS:-$HOME/.cache/remote-reindex}
kind=$1; dir=$2; mkdir -p "$dir"
case "$kind" in
  noida) "$RR_TOOLS/bin/noida-db" start --data-dir "$dir/data" --host 127.0.0.1 --only elasticsearch \
           --elasticsearch-port 0 >"$dir/out.log" 2>&1 </dev/null & ;;
  osmem) "$RR_TOOLS/bin/osmem-server" -addr 127.0.0.1:0 -no-stdin-watch -no-ja >"$dir/out.log" 2>&1 </dev/null & ;;
  *) echo "usage: $0 noida|osmem DIR" >&2; exit 2 ;;
esac
echo $! >"$dir/pid"
for _ in $(seq 1 300); do
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$dir/out.log" | head -1 || true)
  if [ -n "$url" ] && curl -fsS "$url/" >/dev/null 2>&1; then echo "$url"; exit 0; fi
  sleep 0.1
done
echo "$kind did not start; see $dir/out.log" >&2; exit 1
