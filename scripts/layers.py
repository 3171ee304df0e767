#!/usr/bin/env python3
"""The import graph of casebot's code, measured: which file uses which module,
the arrows that point from a lower layer up to a higher one, the circles
between files, and the longest functions outside tests.

Usage: python3 scripts/layers.py [--edges]

A file's module path comes from where it lies (src/x/y.rs in the app is
`crate::x::y`; crates/core/src/sla/mod.rs is `casebot_core::sla`). A use of
`crate::…`, `super::…` or another workspace crate's name is an arrow to the
longest module path that exists. Each module is given a layer by the table
LAYERS below (the longest prefix wins); an arrow from a lower layer to a
higher one is counted as pointing up. Tests (`#[cfg(test)]` modules, files
named tests*.rs) are left out: a test may reach anywhere.
"""

import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# Where each crate's sources are, and the name code uses for it.
CRATES = {
    "crate_app": "src",
    "casebot_core": "crates/core/src",
    "casebot_analysis": "crates/analysis/src",
    "casebot_drafting": "crates/drafting/src",
    "casebot_store": "crates/store/src",
    "casebot_app": "crates/app/src",
    "casebot_bench": "crates/bench/src",
}

# Layer of a module, by prefix: 0 is the ground. Drafting decisions sit above
# the analysis engine (they read its conclusions), the store beside them. The table holds both the
# single-crate layout and the workspace, so one command measures both.
LAYERS = [
    # single crate (the binary's main.rs is `crate_app` in either layout: the top)
    ("crate_app", 7),
    ("crate_app::config", 1),
    ("crate_app::ingest::subject", 1),
    ("crate_app::ingest::body", 1),
    ("crate_app::ingest::links", 1),
    ("crate_app::ingest::direction", 1),
    ("crate_app::ingest::thread", 1),
    ("crate_app::ingest::case_state", 1),
    ("crate_app::ingest::parse", 1),
    ("crate_app::ingest::plan", 1),
    ("crate_app::ingest", 4),
    ("crate_app::sla::snapshots", 4),
    ("crate_app::sla", 1),
    ("crate_app::drafting::decide", 3),
    ("crate_app::drafting::reply", 3),
    ("crate_app::drafting::context", 3),
    ("crate_app::drafting::templates", 3),
    ("crate_app::drafting::knowledge", 3),
    ("crate_app::drafting", 4),
    ("crate_app::analysis::worker", 4),
    ("crate_app::analysis::fetch", 2),
    ("crate_app::analysis", 2),
    ("crate_app::store", 3),
    ("crate_app::parallel", 0),
    ("crate_app::mailbox", 4),
    ("crate_app::outbox", 4),
    ("crate_app::fuzzing", 5),
    ("crate_app::daemon", 5),
    ("crate_app::web", 5),
    ("crate_app::cli", 5),
    ("crate_app::bench", 6),
    # workspace
    ("casebot_core::domain", 0),
    ("casebot_core", 1),
    ("casebot_analysis", 2),
    ("casebot_drafting", 3),
    ("casebot_store", 3),
    ("casebot_app::daemon", 5),
    ("casebot_app::web", 5),
    ("casebot_app::cli", 5),
    ("casebot_app", 4),
    ("casebot_bench", 6),
]


def layer(module):
    best, level = -1, None
    for prefix, lv in LAYERS:
        if (module == prefix or module.startswith(prefix + "::")) and len(prefix) > best:
            best, level = len(prefix), lv
    return level


def module_of(crate, rel):
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join([crate] + parts)


def strip_tests(text):
    """Drops `#[cfg(test)] mod … { … }` blocks and comments."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def use_paths(text):
    """Every path a file names: `use` trees expanded, and inline a::b::c."""
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand(m.group(1).replace("\n", " ")))
    for m in re.finditer(r"\b((?:crate|super|casebot_\w+)(?:::\w+)+)", text):
        paths.append(m.group(1))
    return paths


def expand(tree):
    tree = tree.strip()
    m = re.match(r"^(.*?)::\{(.*)\}$", tree, re.S)
    if not m:
        return [re.sub(r"\s+as\s+\w+$", "", tree)]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    items.append(cur)
    out = []
    for it in items:
        if it.strip():
            out.extend(expand(prefix + "::" + it.strip()))
    return out


def main():
    files = {}
    for crate, src in CRATES.items():
        base = os.path.join(ROOT, src)
        if not os.path.isdir(base):
            continue
        for dirpath, _, names in os.walk(base):
            for n in names:
                if not n.endswith(".rs"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, n), base)
                if n.startswith("tests") or "/tests" in rel or rel.endswith("_tests.rs"):
                    continue
                files[module_of(crate, rel)] = os.path.join(dirpath, n)
    modules = set(files)
    edges = defaultdict(set)
    for mod, path in files.items():
        text = strip_tests(open(path, encoding="utf-8").read())
        crate = mod.split("::")[0]
        for p in use_paths(text):
            segs = p.split("::")
            if segs[0] == "crate":
                segs = [crate] + segs[1:]
            elif segs[0] == "super":
                here = mod.split("::")
                while segs and segs[0] == "super":
                    segs = segs[1:]
                    here = here[:-1]
                segs = here + segs
            elif segs[0] not in CRATES:
                continue
            target = None
            for k in range(len(segs), 0, -1):
                cand = "::".join(segs[:k])
                if cand in modules:
                    target = cand
                    break
            if target and target != mod and not mod.startswith(target + "::"):
                edges[mod].add(target)

    up = [(a, b) for a in edges for b in edges[a]
          if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    unknown = sorted({m for m in modules if layer(m) is None})

    # circles: strongly connected components of more than one file
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

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
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            strong(v)

    longest = []
    for mod, path in files.items():
        lines = strip_tests(open(path, encoding="utf-8").read()).split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^(\s*)(pub(\([^)]*\))?\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)", lines[i])
            if m:
                indent = m.group(1)
                j = i + 1
                while j < len(lines) and not re.match("^" + indent + r"\}\s*$", lines[j]):
                    j += 1
                longest.append((j - i + 1, mod, m.group(6)))
                i += 1
            else:
                i += 1
    longest.sort(reverse=True)

    print(f"files: {len(files)}, import arrows: {sum(len(v) for v in edges.values())}")
    print(f"arrows pointing up: {len(up)}")
    for a, b in sorted(up):
        print(f"  {a} ({layer(a)}) -> {b} ({layer(b)})")
    print(f"circles: {len(sccs)}")
    for c in sccs:
        print("  " + " <-> ".join(c))
    print("longest functions:")
    for n, mod, name in longest[:8]:
        print(f"  {n:4} lines  {mod}::{name}")
    if unknown:
        print("modules without a layer: " + ", ".join(unknown))
    if "--edges" in sys.argv:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{a} -> {b}")


if __name__ == "__main__":
    main()
