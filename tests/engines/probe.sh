#!/usr/bin/env bash
# Probes one running engine for the APIs remote-reindex may use and prints one line per probe:
#
#   tests/engines/probe.sh URL [REMOTE_URL]
#
# GET / (version), point in time (Elasticsearch `POST /IDX/_pit`, OpenSearch
# `POST /IDX/_search/point_in_time`), a sliced PIT search, `sort: [{"_shard_doc": "asc"}]` with
# search_after, and — given REMOTE_URL, another running engine whose index `probe-src` this script
# fills — native `POST /_reindex` with `source.remote` from it. Results feed docs/engines.md.
set -uo pipefail
U=${1:?usage: probe.sh URL [REMOTE_URL]}
R=${2:-}
J=(-s -H 'content-type: application/json')
IDX=probe-$$

field() { python3 -c "import sys,json
try: d=json.load(sys.stdin)
except Exception: print('<not json>'); sys.exit()
for k in sys.argv[1].split('.'):
    d = d.get(k) if isinstance(d, dict) else (d[int(k)] if isinstance(d, list) and k.isdigit() and int(k) < len(d) else None)
print(json.dumps(d) if not isinstance(d, str) else d)" "$1"; }

root=$(curl "${J[@]}" "$U/")
flavor=$(echo "$root" | field version.distribution)
number=$(echo "$root" | field version.number)
echo "GET /: distribution=$flavor number=$number"
typed=""
case "$number" in 6.*) typed="/_doc" ;; esac
curl "${J[@]}" -XPUT "$U/$IDX" -d '{"settings":{"number_of_shards":3,"number_of_replicas":0}}' >/dev/null
body=""
for i in $(seq 1 30); do body+="{\"index\":{\"_index\":\"$IDX\"${typed:+,\"_type\":\"_doc\"},\"_id\":\"$i\"}}"$'\n'"{\"n\":$i}"$'\n'; done
curl -s -H 'content-type: application/x-ndjson' -XPOST "$U/_bulk?refresh=true" --data-binary "$body" >/dev/null

if [ "$flavor" = opensearch ]; then
  pit_resp=$(curl "${J[@]}" -XPOST "$U/$IDX/_search/point_in_time?keep_alive=1m")
  pit=$(echo "$pit_resp" | field pit_id)
else
  pit_resp=$(curl "${J[@]}" -XPOST "$U/$IDX/_pit?keep_alive=1m")
  pit=$(echo "$pit_resp" | field id)
fi
if [ -n "$pit" ] && [ "$pit" != null ] && [ "$pit" != "<not json>" ]; then
  echo "PIT: yes"
  r=$(curl "${J[@]}" -XPOST "$U/_search" -d "{\"size\":100,\"pit\":{\"id\":\"$pit\",\"keep_alive\":\"1m\"},\"slice\":{\"id\":0,\"max\":2}}")
  n0=$(echo "$r" | python3 -c 'import sys,json; d=json.load(sys.stdin); print(len(d["hits"]["hits"]) if "hits" in d else "error: "+json.dumps(d.get("error",d))[:300])')
  r=$(curl "${J[@]}" -XPOST "$U/_search" -d "{\"size\":100,\"pit\":{\"id\":\"$pit\",\"keep_alive\":\"1m\"},\"slice\":{\"id\":1,\"max\":2}}")
  n1=$(echo "$r" | python3 -c 'import sys,json; d=json.load(sys.stdin); print(len(d["hits"]["hits"]) if "hits" in d else "error: "+json.dumps(d.get("error",d))[:300])')
  echo "sliced PIT (2 slices of 30 docs): $n0 + $n1"
  r=$(curl "${J[@]}" -XPOST "$U/_search" -d "{\"size\":10,\"pit\":{\"id\":\"$pit\",\"keep_alive\":\"1m\"},\"sort\":[{\"_shard_doc\":\"asc\"}]}")
  after=$(echo "$r" | python3 -c 'import sys,json; d=json.load(sys.stdin); print(json.dumps(d["hits"]["hits"][-1]["sort"]) if d.get("hits",{}).get("hits") else "")' 2>/dev/null)
  if [ -n "$after" ]; then
    r2=$(curl "${J[@]}" -XPOST "$U/_search" -d "{\"size\":100,\"pit\":{\"id\":\"$pit\",\"keep_alive\":\"1m\"},\"sort\":[{\"_shard_doc\":\"asc\"}],\"search_after\":$after}")
    echo "_shard_doc + search_after: first page 10, rest $(echo "$r2" | python3 -c 'import sys,json; d=json.load(sys.stdin); print(len(d["hits"]["hits"]) if "hits" in d else "error: "+json.dumps(d.get("error",d))[:300])')"
  else
    echo "_shard_doc + search_after: no: $(echo "$r" | head -c 300)"
  fi
  if [ "$flavor" = opensearch ]; then
    curl "${J[@]}" -XDELETE "$U/_search/point_in_time" -d "{\"pit_id\":[\"$pit\"]}" >/dev/null
  else
    curl "${J[@]}" -XDELETE "$U/_pit" -d "{\"id\":\"$pit\"}" >/dev/null
  fi
else
  echo "PIT: no: $(echo "$pit_resp" | head -c 300)"
  r=$(curl "${J[@]}" -XPOST "$U/$IDX/_search" -d '{"size":10,"sort":[{"_shard_doc":"asc"}]}')
  echo "_shard_doc without PIT: $(echo "$r" | head -c 300)"
fi

if [ -n "$R" ]; then
  rroot=$(curl "${J[@]}" "$R/")
  rnum=$(echo "$rroot" | field version.number)
  rtyped=""; case "$rnum" in 6.*) rtyped=1 ;; esac
  curl "${J[@]}" -XDELETE "$R/probe-src" >/dev/null
  body=""
  for i in $(seq 1 20); do body+="{\"index\":{\"_index\":\"probe-src\"${rtyped:+,\"_type\":\"_doc\"},\"_id\":\"r$i\"}}"$'\n'"{\"n\":$i}"$'\n'; done
  curl -s -H 'content-type: application/x-ndjson' -XPOST "$R/_bulk?refresh=true" --data-binary "$body" >/dev/null
  r=$(curl "${J[@]}" -XPOST "$U/_reindex?wait_for_completion=true&refresh=true" -d "{\"source\":{\"remote\":{\"host\":\"$R\"},\"index\":\"probe-src\",\"size\":5},\"dest\":{\"index\":\"$IDX-from-remote\"}}")
  echo "native _reindex from remote $rnum: $(echo "$r" | python3 -c 'import sys,json
d=json.load(sys.stdin)
print("copied %s of 20" % d["total"] if "total" in d else "error: "+json.dumps(d.get("error",d))[:400])')"
  curl "${J[@]}" -XDELETE "$U/$IDX-from-remote" >/dev/null
  curl "${J[@]}" -XDELETE "$R/probe-src" >/dev/null
fi
curl "${J[@]}" -XDELETE "$U/$IDX" >/dev/null
