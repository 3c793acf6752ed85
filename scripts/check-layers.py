#!/usr/bin/env python3
"""Import layering of src/ (run by .ci/run; python3 stdlib only).

usage: scripts/check-layers.py [--graph] [--files]

Reads every `crate::…` / `super::…` / `self::…` path in src/**/*.rs (in `use` trees and inline),
resolves each to the file that defines the item (following `pub use` re-exports of a `mod.rs`
or `lib.rs` to the child file that holds the item), and checks two rules:

1. Layers: every top-level module of src/ (a `src/X.rs` or `src/X/`) has a place in LAYERS
   below, lowest first. A file may import from its own module and from modules of LOWER
   layers only; an import of a module on the same or a higher layer fails, unless the pair is
   listed in EXCEPTIONS with the reason it is still there.
2. Circles: no two files import each other through any chain (a strongly connected component
   of the file graph with more than one file), unless every file of the circle is listed in
   the same entry of CIRCLES with its reason.

`--graph` prints the module graph (arrow counts), `--files` the file graph's circles.
Exit status 1 on any violation, with one line per violation naming both files.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# Lowest first. A module imports only modules of earlier entries (entries of one tuple are on
# the same layer and do not import each other).
LAYERS = [
    ("net", "telemetry"),
    ("search",),
    ("api",),
    ("policy",),
    ("copy",),
    ("verify",),
    ("workflow",),
    ("migration",),
    ("controller",),
    ("cli",),
    ("main", "lib"),
]

# (importing module, imported module): why the arrow is still there. None today.
EXCEPTIONS = {}

# Accepted file circles, all inside one module: (files…) → why. A circle is accepted only when
# all its files are in one entry. None today.
CIRCLES = {}

USE_RE = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        # Drop // comments outside string literals (good enough for this code base).
        in_str = False
        cut = len(line)
        i = 0
        while i < len(line):
            c = line[i]
            if c == "\\" and in_str:
                i += 2
                continue
            if c == '"':
                in_str = not in_str
            elif not in_str and line.startswith("//", i):
                cut = i
                break
            i += 1
        out.append(line[:cut])
    return "\n".join(out)


def strip_strings(text):
    return re.sub(r'r#*"(?:.|\n)*?"#*|"(?:\\.|[^"\\])*"', '""', text)


def files():
    for d, _, fs in os.walk(ROOT):
        for f in fs:
            if f.endswith(".rs"):
                yield os.path.relpath(os.path.join(d, f), ROOT)


def module_path(rel):
    """src-relative file → module segments (lib.rs/main.rs → [])."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod",):
        parts = parts[:-1]
    if parts in (["lib"], ["main"]):
        return []
    return parts


def file_of(segs):
    """The file defining module `segs`, or None."""
    if not segs:
        return "lib.rs"
    a = os.path.join(*segs) + ".rs"
    b = os.path.join(*segs, "mod.rs")
    for c in (a, b):
        if os.path.exists(os.path.join(ROOT, c)):
            return c
    return None


def expand_use(tree):
    """`a::{b, c::{d, e}}` → ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, s):
        # split s at top-level commas
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(s):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(s[start:i])
                start = i + 1
        parts.append(s[start:])
        for p in parts:
            if not p:
                continue
            if "{" in p:
                head, rest = p.split("{", 1)
                walk(prefix + head, rest[: rest.rfind("}")])
            else:
                out.append(prefix + re.sub(r"\bas\b.*", "", p))

    walk("", tree)
    return out


REEXPORTS = {}


def reexports(modfile):
    """Names a mod.rs / lib.rs re-exports from its children: name → child path segments."""
    if modfile in REEXPORTS:
        return REEXPORTS[modfile]
    text = strip_strings(strip_comments(open(os.path.join(ROOT, modfile)).read()))
    names = {}
    for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text, re.S):
        for p in expand_use(m.group(1)):
            segs = [s for s in p.split("::") if s]
            if segs and segs[-1] != "*":
                names[segs[-1]] = segs
    REEXPORTS[modfile] = names
    return names


def resolve(cur, kind, rest):
    """Absolute module segments of path kind::rest seen from module `cur`."""
    segs = [s for s in rest.split("::") if s]
    if kind == "crate":
        base = []
    elif kind == "self":
        base = list(cur)
    else:
        base = list(cur[:-1])
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
    return base + segs


def target(segs, depth=0):
    """The file holding the item `segs` names."""
    for k in range(len(segs), -1, -1):
        f = file_of(segs[:k])
        if f is None:
            continue
        item = segs[k] if k < len(segs) else None
        if item and depth < 8 and os.path.basename(f) in ("mod.rs", "lib.rs"):
            r = reexports(f)
            if item in r:
                inner = r[item]
                mod = module_path(f)
                if inner[0] in ("crate", "super", "self"):
                    abs_ = resolve(mod + ["x"] if inner[0] == "self" else mod + ["x"], inner[0], "::".join(inner[1:]))
                    if inner[0] == "self":
                        abs_ = mod + inner[1:]
                else:
                    abs_ = mod + inner
                return target(abs_, depth + 1)
        return f
    return None


def top(f):
    parts = f[:-3].split(os.sep)
    return parts[0]


def graph():
    edges = {}
    for rel in sorted(files()):
        cur = module_path(rel)
        if rel.endswith("mod.rs") or rel in ("lib.rs", "main.rs"):
            cur_for_super = cur + ["mod"]
        else:
            cur_for_super = cur
        text = strip_strings(strip_comments(open(os.path.join(ROOT, rel)).read()))
        # An inline `mod tests { … }` is one module deeper: its `super::` is this file.
        parts = [(text, cur_for_super)]
        inline = re.search(r"\n\s*mod tests \{", text)
        if inline:
            parts = [(text[: inline.start()], cur_for_super),
                     (text[inline.start():], cur + ["tests"])]
        out = edges.setdefault(rel, set())
        for chunk, here in parts:
            paths = []
            for m in USE_RE.finditer(chunk):
                paths += expand_use(m.group(1))
            paths += [m.group(0) for m in PATH_RE.finditer(USE_RE.sub("", chunk))]
            for p in paths:
                m = re.match(r"(crate|super|self)((?:::[A-Za-z_*][A-Za-z0-9_]*)*)", p)
                if not m:
                    continue
                t = target(resolve(here, m.group(1), m.group(2)))
                if t and t != rel and t not in ("main.rs",):
                    out.add(t)
    return edges


def layer_of(mod):
    for i, names in enumerate(LAYERS):
        if mod in names:
            return i
    return None


def sccs(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            strong(v)
    return out


def main():
    edges = graph()
    bad = []
    mods = {}
    for f, ts in edges.items():
        a = top(f)
        if layer_of(a) is None:
            bad.append(f"{f}: module `{a}` has no layer in scripts/check-layers.py LAYERS")
            continue
        for t in ts:
            b = top(t)
            if a == b or b == "lib":
                continue
            mods[(a, b)] = mods.get((a, b), 0) + 1
            lb = layer_of(b)
            if lb is None:
                continue
            if lb >= layer_of(a) and (a, b) not in EXCEPTIONS:
                where = "the same layer" if lb == layer_of(a) else "a higher layer"
                bad.append(f"{f} imports {t}: `{a}` may not import `{b}` ({where})")
    circles = sccs(edges)
    for c in circles:
        if not any(set(c) <= set(k) for k in CIRCLES):
            bad.append("import circle: " + " → ".join(c))
    if "--graph" in sys.argv:
        for (a, b), n in sorted(mods.items()):
            print(f"{a} -> {b} ({n})")
    if "--files" in sys.argv:
        for f, ts in sorted(edges.items()):
            print(f, "->", " ".join(sorted(ts)))
    for b in bad:
        print("check-layers:", b, file=sys.stderr)
    if bad:
        print(f"check-layers: {len(bad)} violation(s)", file=sys.stderr)
        return 1
    print(f"check-layers: {len(edges)} files, {sum(len(t) for t in edges.values())} imports, "
          f"layers respected, no import circle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
