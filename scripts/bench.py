#!/usr/bin/env python3
"""Copy benchmark (not run in CI): the destination's bulk ceiling vs this engine vs elasticdump.

usage: scripts/bench.sh [N] [--dest noida|osmem|both] [--skip-elasticdump]
       scripts/bench.sh [N] --modes     (Engine vs Server mode on real engines, see modes())
       scripts/bench.sh --engines [N]   (real engines: scripts/bench_engines.py)

For each destination kind, on one machine in one run: generates N documents (0.2-20 KiB) into a
noida-db source; measures (a) the ceiling: best docs/s of 1, 2, 4 and 8 parallel curl loaders
posting the same documents as pre-built NDJSON bulks (source server running); (b) this engine with
1 slice, with `slices: auto` and without gzip responses
(each the best of two runs); (c) slices=auto with `verify: Checksum`, whose row names the checksum's time next
to the copy's; (d) elasticdump --limit=1000 and the best of 100/1000/5000.
Prints docs/s, MB/s, ratio to the ceiling and to elasticdump, CPU seconds per 1k docs and peak RSS
of each copier (from wait4 on the copier process itself, servers excluded).
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.environ.get("RR_TOOLS", os.path.expanduser("~/.cache/remote-reindex"))

def req(method, url, body=None, ctype="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    r = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": ctype})
    try:
        return json.loads(urllib.request.urlopen(r, timeout=600).read() or b"null")
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"null")

def start(kind, d):
    return subprocess.check_output([f"{ROOT}/scripts/servers.sh", kind, d], text=True).strip()

def under_time(cmd, rss_file):
    """cmd run under GNU time, which writes the peak RSS (KiB) of cmd and its waited-for children
    to rss_file (read_rss). wait4's own ru_maxrss cannot be used: a child forked from this Python
    process starts with the parent's RSS as its high-water mark (Linux keeps it across exec), so
    every copier smaller than the bench process would show the bench process's size."""
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("the benchmark needs GNU time at /usr/bin/time (Debian package `time`)")
    return ["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd]

def read_rss(rss_file):
    """Peak RSS in MiB that under_time wrote (its last word; a failed command adds a line)."""
    with open(rss_file) as f:
        return int(f.read().split()[-1]) / 1024

def run_measured(cmd, **kw):
    """Runs cmd; returns (wall s, cpu s, peak RSS MiB) of that process alone."""
    rss_file = tempfile.mktemp(prefix="rr-bench-rss.")
    t0 = time.time()
    kw.setdefault("stdout", subprocess.DEVNULL)
    p = subprocess.Popen(under_time(cmd, rss_file), stderr=subprocess.PIPE, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t0
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err[-2000:]}")
    rss = read_rss(rss_file)
    os.unlink(rss_file)
    return wall, ru.ru_utime + ru.ru_stime, rss

def fresh(dst, index):
    req("DELETE", f"{dst}/{index}")
    req("PUT", f"{dst}/{index}", {"settings": {"index": {"refresh_interval": "-1", "number_of_replicas": 0}},
                                   "mappings": {"dynamic": False, "properties": {"n": {"type": "long"}, "tag": {"type": "keyword"}}}})

def count(url, index):
    req("POST", f"{url}/{index}/_refresh")
    return req("GET", f"{url}/{index}/_count")["count"]

def export_requests(src, index, out_dir, max_bytes=5 << 20):
    """Scrolls the source once into request-sized NDJSON files (~5 MiB each); returns their
    paths and the total bytes."""
    paths, buf, size, total = [], [], 0, 0
    def flush():
        nonlocal buf, size
        if buf:
            p = os.path.join(out_dir, f"req{len(paths):05d}.ndjson")
            with open(p, "wb") as f:
                f.write(b"".join(buf))
            paths.append(p)
            buf, size = [], 0
    page = req("POST", f"{src}/{index}/_search?scroll=5m", {"size": 1000, "sort": ["_doc"], "query": {"match_all": {}}})
    while page["hits"]["hits"]:
        for h in page["hits"]["hits"]:
            line = (json.dumps({"index": {"_index": "ceiling", "_id": h["_id"]}}, ensure_ascii=False) + "\n" +
                    json.dumps(h["_source"], ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            buf.append(line); size += len(line); total += len(line)
            if size >= max_bytes:
                flush()
        page = req("POST", f"{src}/_search/scroll", {"scroll": "5m", "scroll_id": page["_scroll_id"]})
    flush()
    return paths, total

def ceiling(dst, requests):
    """Best docs/s of 1, 2, 4 and 8 parallel curl loaders posting the pre-built requests."""
    results, best = {}, (0, 0)
    for loaders in (1, 2, 4, 8):
        fresh(dst, "ceiling")
        scripts = ["\n".join(f"curl -s -o /dev/null -H 'Content-Type: application/x-ndjson' --data-binary @{c} {dst}/_bulk"
                             for c in requests[i::loaders]) for i in range(loaders)]
        t0 = time.time()
        procs = [subprocess.Popen(["bash", "-c", s]) for s in scripts]
        for p in procs:
            p.wait()
        wall = time.time() - t0
        rate = count(dst, "ceiling") / wall
        results[loaders] = rate
        best = max(best, (rate, loaders))
    return best, results

def engine(src, dst, work, slices, gzip=True):
    fresh(dst, "dst"); req("DELETE", f"{dst}/dst")
    y = os.path.join(work, f"r{slices}{gzip}.yaml")
    open(y, "w").write(f"""apiVersion: reindex.dev/v1alpha1
kind: RemoteReindex
metadata: {{name: bench}}
spec:
  source: {{remote: {{host: "{src}", compressResponses: {str(gzip).lower()}}}, index: src, slices: {slices}}}
  dest: {{remote: {{host: "{dst}"}}, index: dst}}
""")
    return run_measured([binary(), "run", "-f", y]) + (count(dst, "dst"),)

def binary():
    target = os.environ.get("CARGO_TARGET_DIR", f"{ROOT}/target")
    return os.environ.get("RR_BIN", f"{target}/quickstart/remote-reindex")

def jvm_cpu(d):
    """CPU seconds an engine's JVM (pid in DIR/pid) has used so far."""
    pid = open(os.path.join(d, "pid")).read().strip()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def engine_start(kind, d, *settings):
    out = subprocess.check_output([f"{ROOT}/scripts/engine.sh", "start", kind, "0", d, *settings], text=True)
    return next(l.split("=", 1)[1] for l in out.splitlines() if l.startswith("url="))

def mode_copy(src, dst, src_d, dst_d, work, mode):
    """One copy in `mode` (Engine or Server) on real engines: (wall, operator CPU, peak RSS,
    docs, destination JVM CPU, source JVM CPU)."""
    req("DELETE", f"{dst}/dst")
    y = os.path.join(work, f"{mode}.yaml")
    open(y, "w").write(f"""apiVersion: reindex.dev/v1alpha1
kind: RemoteReindex
metadata: {{name: bench}}
spec:
  mode: {mode}
  source: {{remote: {{host: "{src}"}}, index: src}}
  dest: {{remote: {{host: "{dst}"}}, index: dst}}
""")
    d0, s0 = jvm_cpu(dst_d), jvm_cpu(src_d)
    wall, cpu, rss = run_measured([binary(), "run", "-f", y])
    return wall, cpu, rss, count(dst, "dst"), jvm_cpu(dst_d) - d0, jvm_cpu(src_d) - s0

def modes(n, work):
    """Engine vs Server mode on the same data: Elasticsearch 7.17 → OpenSearch 2.19 (the
    destination allows the source for its remote reindex). Each the best of two runs
    (RR_BENCH_RUNS)."""
    src_d, dst_d = os.path.join(work, "es7"), os.path.join(work, "os2")
    src = engine_start("elasticsearch-7", src_d)
    host_port = src.split("://", 1)[1]
    dst = engine_start("opensearch-2", dst_d, f"reindex.remote.allowlist={host_port}")
    try:
        subprocess.check_call([sys.executable, f"{ROOT}/scripts/load-docs.py", src, "src", str(n), "--min-bytes", "200", "--max-bytes", str(20 * 1024)])
        print(f"\n{n} documents; Elasticsearch 7.17 → OpenSearch 2.19, one machine\n")
        print("| mode | docs/s | operator CPU s/1k docs | destination JVM CPU s/1k docs | source JVM CPU s/1k docs | operator peak RSS MiB | docs |")
        print("|---|---|---|---|---|---|---|")
        for mode in ("Engine", "Server"):
            runs = int(os.environ.get("RR_BENCH_RUNS", "2"))
            wall, cpu, rss, got, dcpu, scpu = min((mode_copy(src, dst, src_d, dst_d, work, mode) for _ in range(runs)), key=lambda r: r[0])
            print(f"| {mode} | {got / wall:.0f} | {cpu / got * 1000:.3f} | {dcpu / got * 1000:.3f} | {scpu / got * 1000:.3f} | {rss:.0f} | {got} |")
    finally:
        for d in (src_d, dst_d):
            subprocess.call([f"{ROOT}/scripts/engine.sh", "stop", d])

def engine_checksum(src, dst, work):
    """slices=auto with `verify: Checksum`: returns the run's measures plus the copy's and the
    checksum's own seconds, parsed from the success line."""
    fresh(dst, "dst"); req("DELETE", f"{dst}/dst")
    y = os.path.join(work, "checksum.yaml")
    open(y, "w").write(f"""apiVersion: reindex.dev/v1alpha1
kind: RemoteReindex
metadata: {{name: bench}}
spec:
  source: {{remote: {{host: "{src}"}}, index: src, slices: auto}}
  dest: {{remote: {{host: "{dst}"}}, index: dst}}
  verify: Checksum
""")
    out = os.path.join(work, "checksum.out")
    with open(out, "w") as f:
        wall, cpu, rss = run_measured([binary(), "run", "-f", y], stdout=f)
    line = open(out).read()
    copy_s = float(re.search(r"\) in ([0-9.]+)s \(", line).group(1))
    check_s = float(re.search(r"compared in ([0-9.]+)s", line).group(1))
    return wall, cpu, rss, count(dst, "dst"), copy_s, check_s

def elasticdump(src, dst, limit, work):
    fresh(dst, "ed")
    ed = os.environ.get("ELASTICDUMP", "elasticdump")
    cmd = [ed, f"--input={src}/src", f"--output={dst}/ed", "--type=data", f"--limit={limit}", "--quiet",
           '--searchBody={"track_total_hits":true,"query":{"match_all":{}}}']
    return run_measured(cmd) + (count(dst, "ed"),)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=200_000)
    ap.add_argument("--dest", default="both", choices=["noida", "osmem", "both"])
    ap.add_argument("--skip-elasticdump", action="store_true")
    ap.add_argument("--modes", action="store_true", help="only Engine vs Server mode on real engines (scripts/engine.sh)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rr-bench.")
    if a.modes:
        try:
            return modes(a.n, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    servers = []
    try:
        src = start("noida", os.path.join(work, "src")); servers.append(os.path.join(work, "src"))
        subprocess.check_call([sys.executable, f"{ROOT}/scripts/load-docs.py", src, "src", str(a.n), "--min-bytes", "200", "--max-bytes", str(20 * 1024)])
        requests, total_bytes = export_requests(src, "src", work)
        data_mb = total_bytes / 1e6
        rows = []
        for kind in (["noida", "osmem"] if a.dest == "both" else [a.dest]):
            d = os.path.join(work, f"dst-{kind}")
            dst = start(kind, d); servers.append(d)
            (best, loaders), per = ceiling(dst, requests)
            rows.append((kind, f"ceiling ({loaders} loaders; 1/2/4/8: " + "/".join(f"{per[k]:.0f}" for k in (1, 2, 4, 8)) + ")", best, None, None, a.n))
            for slices, gzip in (("1", True), ("auto", True), ("1", False)):
                # Best of two runs, as the ceiling is a best of four: a run right after a large
                # index was deleted on the destination is measurably slower.
                wall, cpu, rss, got = min((engine(src, dst, work, slices, gzip) for _ in range(2)), key=lambda r: r[0])
                label = f"remote-reindex slices={slices}" + ("" if gzip else ", compressResponses=false")
                rows.append((kind, label, got / wall, cpu / got * 1000, rss, got))
            wall, cpu, rss, got, copy_s, check_s = engine_checksum(src, dst, work)
            rows.append((kind, f"remote-reindex slices=auto, verify: Checksum (checksum {check_s:.1f}s = {check_s / copy_s:.2f}x the copy's {copy_s:.1f}s; docs/s over both)", got / wall, cpu / got * 1000, rss, got))
            if not a.skip_elasticdump:
                eds = {}
                for limit in (100, 1000, 5000):
                    wall, cpu, rss, got = elasticdump(src, dst, limit, work)
                    eds[limit] = (got / wall, cpu / got * 1000, rss, got)
                rows.append((kind, "elasticdump --limit=1000", *eds[1000]))
                bl = max(eds, key=lambda k: eds[k][0])
                rows.append((kind, f"elasticdump best (--limit={bl})", *eds[bl]))
            subprocess.call(["kill", open(os.path.join(d, "pid")).read().strip()])
        print(f"\n{a.n} documents, {data_mb:.1f} MB of NDJSON; source noida-db (Elasticsearch 8)\n")
        print(f"| dest | copier | docs/s | MB/s | vs ceiling | vs elasticdump(1000) | CPU s/1k docs | peak RSS MiB | docs |")
        print("|---|---|---|---|---|---|---|---|---|")
        for kind in sorted({r[0] for r in rows}):
            rs = [r for r in rows if r[0] == kind]
            ceil = rs[0][2]
            edr = next((r for r in rs if r[1] == "elasticdump --limit=1000"), None)
            for r in rs:
                mbs = r[2] * data_mb / a.n
                vs_ed = f"{r[2] / edr[2]:.1f}x" if edr else "-"
                cpu = f"{r[3]:.3f}" if r[3] is not None else "-"
                rss = f"{r[4]:.0f}" if r[4] is not None else "-"
                print(f"| {kind} | {r[1]} | {r[2]:.0f} | {mbs:.1f} | {r[2] / ceil:.0%} | {vs_ed} | {cpu} | {rss} | {r[5]} |")
    finally:
        for d in servers:
            try: subprocess.call(["kill", open(os.path.join(d, "pid")).read().strip()], stderr=subprocess.DEVNULL)
            except OSError: pass
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
