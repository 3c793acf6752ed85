#!/usr/bin/env python3
"""Real-engine copy benchmark (not run in CI): Elasticsearch 7.17 → OpenSearch 2.19, one run, same data.

usage: scripts/bench.sh --engines [N=20000] [--shards 2] [--loaders 1,2,4,8] [--rounds 2]
                        [--skip-elasticdump]

Starts two private nodes with scripts/engine.sh on free loopback ports (ENGINE_HEAP, default 1g
here): an Elasticsearch 7.17 source and an OpenSearch 2.19 destination started with
`reindex.remote.allowlist=127.0.0.1:<source port>`. Loads N documents (0.2-20 KiB) into a source
index with --shards primaries, then measures, into a fresh destination index with the same
shards, mapping and copy-time settings (refresh_interval -1, no replicas):

  ceiling           pre-built 5 MiB NDJSON bulks of the same documents posted by 1/2/4/8
                    parallel curl loaders straight to the destination, while a reader scrolls
                    the whole source index once (size 1000), so the source serves an equal
                    scroll load on the same cores. A sweep over the loader counts picks the
                    count the rounds below use.
  native reindex    POST /_reindex?wait_for_completion=false on the destination with
                    source.remote (size 1000 and 5000), then GET /_tasks/<id>
                    ?wait_for_completion=true until it completes (remote reindex cannot slice).
  elasticdump       --limit=1000 (npm elasticdump 6).
  remote-reindex    `run -f` with slices 1 and slices auto (= the source's shards), both with the
                    default compression (none for a loopback source), and auto with
                    compressResponses: true (the default for a source across a WAN).

Every row's wall time runs from an absent destination index to a searchable copy: it includes
creating the index (remote-reindex creates it itself, in its prepare step) and ends with a
`_refresh` (remote-reindex's finalize step does one); every row checks the destination's `_count`
against N. CPU is measured per process: the copier (curl loaders, elasticdump or remote-reindex)
from wait4, each JVM from /proc/<pid>/stat (utime+stime) before and after; the copier's peak RSS
from GNU time (the largest of the parallel loaders for the ceiling); "cores busy" is all three
over the wall time. remote-reindex's wall time is also split into prepare / copy / finalize from
its output's timestamps.

One unmeasured ceiling load (2 loaders) first warms both JVMs. After the sweep, --rounds rounds
run every copier once (every other round in reverse order, since load drifts and the JVMs keep
warming up); each copier's row is its best round. The 1-minute load average is printed with
every row: on a shared machine the numbers are noisy.
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no scripts/__pycache__ from importing bench
from bench import ROOT, TOOLS, binary, count, export_requests, jvm_cpu, read_rss, req, under_time  # noqa: E402

MAPPING = {"dynamic": False, "properties": {"n": {"type": "long"}, "tag": {"type": "keyword"}}}


def load1():
    return os.getloadavg()[0]


def native_reindex(dst, body):
    """The destination's own remote reindex of `body`, started as a task and followed to its end;
    exits on a refusal, an error or failures."""
    r = req("POST", f"{dst}/_reindex?wait_for_completion=false", body)
    if not r or "task" not in r:
        sys.exit(f"POST _reindex failed: {r}")
    while True:
        t = req("GET", f"{dst}/_tasks/{r['task']}?wait_for_completion=true&timeout=30s")
        if t.get("completed"):
            break
    resp = t.get("response") or {}
    if t.get("error") or resp.get("failures"):
        sys.exit(f"native reindex failed: {json.dumps(t.get('error') or resp.get('failures'))[:1000]}")


def fresh(dst, index, shards):
    """A destination index as every copier gets it: the source's mapping and shard count, with
    remote-reindex's copy-time settings."""
    req("DELETE", f"{dst}/{index}")
    r = req("PUT", f"{dst}/{index}", {"settings": {"index": {"number_of_shards": shards, "number_of_replicas": 0,
                                                            "refresh_interval": "-1"}}, "mappings": MAPPING})
    if not r or not r.get("acknowledged"):
        sys.exit(f"creating {dst}/{index} failed: {r}")


def drop(dst, index):
    req("DELETE", f"{dst}/{index}")
    time.sleep(2)  # let the destination settle after deleting a large index before the next row


def refresh(url, index):
    req("POST", f"{url}/{index}/_refresh")


def spawn(cmd, **kw):
    """Starts cmd under GNU time (bench.under_time); wait_process measures it."""
    rss_file = tempfile.mktemp(prefix="rr-bench-rss.")
    p = subprocess.Popen(under_time(cmd, rss_file), **kw)
    p.rss_file = rss_file
    return p


def wait_process(p):
    """Waits for a spawn()ed child: (cpu s from wait4, including its waited-for children; peak
    RSS MiB; exit code)."""
    _, status, ru = os.wait4(p.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    rss = read_rss(p.rss_file) if code == 0 else 0.0
    os.unlink(p.rss_file)
    return ru.ru_utime + ru.ru_stime, rss, code


def scroll_load(src, index, out):
    """Scrolls the whole index once (size 1000, no gzip) without parsing the hits: the load a
    single-slice copier puts on the source. Stores the number of pages in out."""
    def post(url, body):
        r = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                   headers={"Content-Type": "application/json"})
        return urllib.request.urlopen(r, timeout=600).read()
    def scroll_id(page):
        return re.search(rb'"_scroll_id":"([^"]+)"', page).group(1).decode()
    page = post(f"{src}/{index}/_search?scroll=2m", {"size": 1000, "sort": ["_doc"]})
    pages = 0
    while b'"hits":[]' not in page:
        pages += 1
        page = post(f"{src}/_search/scroll", {"scroll": "2m", "scroll_id": scroll_id(page)})
    req("DELETE", f"{src}/_search/scroll", {"scroll_id": [scroll_id(page)]})
    out.append(pages)


class Row:
    """One measured copy."""
    def __init__(self, label, wall, docs, copier_cpu, copier_rss, src_cpu, dst_cpu, load):
        self.label, self.wall, self.docs = label, wall, docs
        self.copier_cpu, self.copier_rss, self.src_cpu, self.dst_cpu, self.load = copier_cpu, copier_rss, src_cpu, dst_cpu, load

    @property
    def rate(self):
        return self.docs / self.wall


class Bench:
    def __init__(self, src, dst, src_d, dst_d, n, shards, work):
        self.src, self.dst, self.src_d, self.dst_d = src, dst, src_d, dst_d
        self.n, self.shards, self.work = n, shards, work

    def measured(self, label, index, fn, create=True):
        """Runs fn() -> (copier cpu or None, copier RSS or None); the wall time starts with
        creating the destination index (create=False: the copier creates it) and ends with a
        _refresh of it; checks its count."""
        req("DELETE", f"{self.dst}/{index}")
        load = load1()
        s0, d0 = jvm_cpu(self.src_d), jvm_cpu(self.dst_d)
        t0 = time.time()
        if create:
            fresh(self.dst, index, self.shards)
        cpu, rss = fn()
        refresh(self.dst, index)
        wall = time.time() - t0
        d1 = jvm_cpu(self.dst_d)
        s1 = jvm_cpu(self.src_d)
        got = count(self.dst, index)
        if got != self.n:
            print(f"warning: {label}: the destination holds {got} of {self.n} documents", file=sys.stderr)
        row = Row(label, wall, got, cpu, rss, s1 - s0, d1 - d0, load)
        print(f"  {label}: {row.rate:.0f} docs/s in {wall:.1f}s (load {load:.1f})", file=sys.stderr, flush=True)
        return row

    def ceiling(self, loaders, requests):
        scripts = ["set -e\n" + "\n".join(
            f"curl -sS -f -o /dev/null -H 'Content-Type: application/x-ndjson' --data-binary @{c} {self.dst}/_bulk"
            for c in requests[i::loaders]) for i in range(loaders)]
        pages = []
        reader = threading.Thread(target=scroll_load, args=(self.src, "src", pages))

        def run():
            reader.start()
            procs = [spawn(["bash", "-c", s]) for s in scripts]
            cpu, rss = 0.0, 0.0
            for p in procs:
                c, r, code = wait_process(p)
                if code != 0:
                    sys.exit(f"a bulk loader failed (exit {code})")
                cpu, rss = cpu + c, max(rss, r)
            return cpu, rss
        # The source's CPU is read after the reader has finished its scroll (measured() reads
        # it last), so the row shows a whole scroll's cost even when the loaders end first.
        row = self.measured(f"ceiling, {loaders} loader(s)", "ceiling", lambda: (run(), reader.join())[0])
        row.label_loaders = loaders
        if not pages:
            sys.exit("the concurrent source scroll failed")
        drop(self.dst, "ceiling")
        return row

    def native(self, size):

        def run():
            native_reindex(self.dst, {"source": {"remote": {"host": self.src}, "index": "src", "size": size},
                                      "dest": {"index": "native"}})
            return None, None
        row = self.measured(f"native remote reindex, size {size}", "native", run)
        drop(self.dst, "native")
        return row

    def elasticdump(self, limit):
        ed = os.environ.get("ELASTICDUMP") or os.path.join(TOOLS, "elasticdump/node_modules/.bin/elasticdump")
        cmd = [ed, f"--input={self.src}/src", f"--output={self.dst}/ed", "--type=data", f"--limit={limit}", "--quiet",
               '--searchBody={"track_total_hits":true,"query":{"match_all":{}}}']

        def run():
            p = spawn(cmd, stdout=subprocess.DEVNULL)
            cpu, rss, code = wait_process(p)
            if code != 0:
                sys.exit(f"elasticdump failed (exit {code})")
            return cpu, rss
        row = self.measured(f"elasticdump --limit={limit}", "ed", run)
        drop(self.dst, "ed")
        return row

    def ours(self, slices, gzip=None):
        y = os.path.join(self.work, f"r-{slices}-{gzip}.yaml")
        compress = "" if gzip is None else f", compressResponses: {str(gzip).lower()}"
        with open(y, "w") as f:
            f.write(f"""apiVersion: reindex.dev/v1alpha1
kind: RemoteReindex
metadata: {{name: bench}}
spec:
  source: {{remote: {{host: "{self.src}"{compress}}}, index: src, slices: {slices}}}
  dest: {{remote: {{host: "{self.dst}"}}, index: dst}}
""")

        lines = []  # (seconds since the start, line) of the copier's output

        def run():
            t0 = time.time()
            p = spawn([binary(), "run", "-f", y], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for line in p.stdout:
                lines.append((time.time() - t0, line))
            cpu, rss, code = wait_process(p)
            lines.append((time.time() - t0, "(exit)"))
            if code != 0:
                sys.exit("remote-reindex failed:\n" + "".join(l for _, l in lines[-30:]))
            return cpu, rss
        label = f"remote-reindex slices={slices}" + ("" if gzip is None else f", compressResponses={str(gzip).lower()}")
        row = self.measured(label, "dst", run, create=False)
        row.phases = phases(lines)
        drop(self.dst, "dst")
        return row


def phases(lines):
    """Seconds of remote-reindex's phases from its output's timestamps: prepare (start until the
    "Copying:" line: version probe, index creation, PIT and the source's count), copy (until
    "Finalizing:") and finalize (restoring settings, refresh, count check, until exit)."""
    at = {}
    for t, line in lines:
        for key in ("Copying:", "Finalizing:", "(exit)"):
            if line.startswith(key):
                at.setdefault(key, t)
    if len(at) < 3:
        return None
    return at["Copying:"], at["Finalizing:"] - at["Copying:"], at["(exit)"] - at["Finalizing:"]


def version(url):
    v = req("GET", url)["version"]
    return f"{v.get('distribution', 'elasticsearch')} {v['number']}"


def table(rows, ceiling_row, native_row, data_mb, n):
    def per_k(x):
        return "-" if x is None else f"{x / n * 1000:.3f}"
    print("| copier | docs/s | MB/s | vs ceiling | vs native size 1000 | copier CPU s/1k docs | source JVM CPU s/1k docs"
          " | destination JVM CPU s/1k docs | all three, s/1k docs | cores busy | copier peak RSS MiB | docs | load avg (1 min)"
          " | every round, docs/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        total = (r.copier_cpu or 0) + r.src_cpu + r.dst_cpu
        print(f"| {r.label} | {r.rate:.0f} | {r.rate * data_mb / n:.1f} | {r.rate / ceiling_row.rate:.0%} | "
              f"{r.rate / native_row.rate:.2f}x | {per_k(r.copier_cpu)} | {per_k(r.src_cpu)} | {per_k(r.dst_cpu)} | "
              f"{per_k(total)} | {total / r.wall:.2f} | {'-' if r.copier_rss is None else f'{r.copier_rss:.0f}'} | "
              f"{r.docs} | {r.load:.1f} | {' / '.join(f'{x.rate:.0f}' for x in getattr(r, 'rounds', [r]))} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=20_000)
    ap.add_argument("--shards", type=int, default=2, help="primaries of the source (and every destination) index")
    ap.add_argument("--loaders", default="1,2,4,8", help="parallel bulk loader counts for the ceiling")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over every copier (alternate ones reversed); rows are the best")
    ap.add_argument("--skip-elasticdump", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("ENGINE_HEAP", "1g")
    work = tempfile.mkdtemp(prefix="rr-bench-engines.")
    src_d, dst_d = os.path.join(work, "es7"), os.path.join(work, "os2")
    started = []
    try:
        src = start_engine("elasticsearch-7", src_d, started)
        dst = start_engine("opensearch-2", dst_d, started, f"reindex.remote.allowlist={src.split('://', 1)[1]}")
        req("PUT", f"{src}/src", {"settings": {"index": {"number_of_shards": a.shards, "number_of_replicas": 0}},
                                  "mappings": MAPPING})
        subprocess.check_call([sys.executable, f"{ROOT}/scripts/load-docs.py", src, "src", str(a.n),
                               "--min-bytes", "200", "--max-bytes", str(20 * 1024)], stdout=sys.stderr)
        req("POST", f"{src}/src/_forcemerge?max_num_segments=1")
        requests, total_bytes = export_requests(src, "src", work)
        data_mb = total_bytes / 1e6
        b = Bench(src, dst, src_d, dst_d, a.n, a.shards, work)
        start_load, start_time = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        # Warm both JVMs (JIT, caches) with one unmeasured load so the first row is not the cold one.
        print("warm-up (not measured):", file=sys.stderr)
        b.ceiling(2, requests)
        sweep = [b.ceiling(int(k), requests) for k in a.loaders.split(",")]
        loaders = max(sweep, key=lambda r: r.rate).label_loaders
        copiers = [("ceiling", lambda: b.ceiling(loaders, requests)),
                   ("native1000", lambda: b.native(1000)), ("native5000", lambda: b.native(5000))]
        if not a.skip_elasticdump:
            copiers.append(("elasticdump", lambda: b.elasticdump(1000)))
        copiers += [("ours1", lambda: b.ours("1")), ("ours", lambda: b.ours("auto")),
                    ("ours-gzip", lambda: b.ours("auto", gzip=True))]
        # Rounds, every other one in reverse order: the machine's load drifts and the JVMs keep
        # warming up over a run, which would otherwise favour whichever copier runs last.
        rounds = {k: [] for k, _ in copiers}
        for i in range(a.rounds):
            print(f"round {i + 1} of {a.rounds}:", file=sys.stderr)
            for k, make in (copiers if i % 2 == 0 else copiers[::-1]):
                rounds[k].append(make())
        best = {k: max(v, key=lambda r: r.rate) for k, v in rounds.items()}
        for k, r in best.items():
            r.rounds = rounds[k]
        end_load = os.getloadavg()
        top = max(sweep + rounds["ceiling"], key=lambda r: r.rate)
        print(f"\n{a.n} documents ({data_mb:.1f} MB of NDJSON, 0.2-20 KiB each), {a.shards} primaries; "
              f"{version(src)} → {version(dst)}, heaps {os.environ['ENGINE_HEAP']}; copier binary {binary()}; "
              f"{os.cpu_count()} cores; {start_time}, load average at start {start_load[0]:.1f}/{start_load[1]:.1f}/"
              f"{start_load[2]:.1f}, at end {end_load[0]:.1f}/{end_load[1]:.1f}/{end_load[2]:.1f}\n")
        print(f"Rows: the ceiling's loader sweep, then each copier's best of {a.rounds} round(s) (every round's docs/s "
              "in the last column); ratios against the best ceiling row and the best native size-1000 row.\n")
        for r in sweep:
            r.label = "ceiling sweep: " + r.label
        table(sweep + list(best.values()), top, best["native1000"], data_mb, a.n)
        print()
        for k in ("ours1", "ours", "ours-gzip"):
            for r in rounds[k]:
                if r.phases:
                    p, c, f = r.phases
                    print(f"{r.label}: {r.wall:.1f}s wall = prepare {p:.1f}s + copy {c:.1f}s ({r.docs / c:.0f} docs/s) "
                          f"+ finalize {f:.1f}s (+ the bench's own refresh and process exit)")
        for k in ("ours", "ours-gzip"):
            r = best[k]
            print(f"\n{r.label}: {r.rate / best['native1000'].rate:.2f}x native reindex size 1000 (target >= 2x), "
                  f"{r.rate / best['native5000'].rate:.2f}x size 5000; {r.rate / top.rate:.0%} of the ingest ceiling (target >= 90%)")
    finally:
        for d in started:
            subprocess.call([f"{ROOT}/scripts/engine.sh", "stop", d])
        shutil.rmtree(work, ignore_errors=True)


def start_engine(kind, d, started, *settings):
    out = subprocess.check_output([f"{ROOT}/scripts/engine.sh", "start", kind, "0", d, *settings], text=True)
    started.append(d)
    return next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("url="))


if __name__ == "__main__":
    main()
