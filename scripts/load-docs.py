#!/usr/bin/env python3
"""Bulk-loads N generated documents into an Elasticsearch/OpenSearch index (stdlib only).

usage: load-docs.py URL INDEX N [--min-bytes 200] [--max-bytes 2000] [--bulk-docs 2000]
Documents carry unicode text, nested objects and integers past 2^53; sizes are spread
uniformly between --min-bytes and --max-bytes. Prints the count and the MB loaded.
"""
import argparse, json, random, sys, urllib.request

def main():
    p = argparse.ArgumentParser()
    p.add_argument("url"); p.add_argument("index"); p.add_argument("n", type=int)
    p.add_argument("--min-bytes", type=int, default=200); p.add_argument("--max-bytes", type=int, default=2000)
    p.add_argument("--bulk-docs", type=int, default=2000); p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    rnd = random.Random(a.seed)
    words = ["alpha", "beta", "gamma", "delta", "ünïcødé", "日本語", "søren", "naïve", "café", "x"]
    mapping = {"mappings": {"dynamic": False, "properties": {"n": {"type": "long"}, "tag": {"type": "keyword"}}}}
    req = urllib.request.Request(f"{a.url}/{a.index}", data=json.dumps(mapping).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req).read()
    except urllib.error.HTTPError as e:
        if e.code != 400:  # already exists
            raise
    total_bytes, lines = 0, []
    def flush():
        nonlocal lines
        if not lines:
            return
        body = ("\n".join(lines) + "\n").encode()
        r = urllib.request.Request(f"{a.url}/_bulk", data=body, method="POST",
                                   headers={"Content-Type": "application/x-ndjson"})
        resp = json.loads(urllib.request.urlopen(r).read())
        if resp.get("errors"):
            sys.exit("bulk errors: " + json.dumps(resp)[:500])
        lines = []
    for i in range(a.n):
        size = rnd.randint(a.min_bytes, a.max_bytes)
        doc = {"n": i, "tag": f"t{i % 10}", "big": 9007199254740993 + i,
               "nested": {"path": f"/a/{i}", "flags": [i % 2 == 0, i % 3 == 0]}, "text": ""}
        base = len(json.dumps(doc, ensure_ascii=False).encode())
        text, have = [], base
        while have < size:
            w = rnd.choice(words)
            text.append(w)
            have += len(w.encode()) + 1
        doc["text"] = " ".join(text)
        src = json.dumps(doc, ensure_ascii=False)
        total_bytes += len(src.encode())
        lines.append(json.dumps({"index": {"_index": a.index, "_id": f"doc/{i} %é"}}, ensure_ascii=False))
        lines.append(src)
        if len(lines) >= 2 * a.bulk_docs:
            flush()
    flush()
    urllib.request.urlopen(urllib.request.Request(f"{a.url}/{a.index}/_refresh", method="POST")).read()
    print(f"loaded {a.n} documents ({total_bytes / 1e6:.1f} MB) into {a.url}/{a.index}")

if __name__ == "__main__":
    main()
