#!/usr/bin/env bash
# Import cycles between the files of one crate: file A names a module of file B (`use crate::b`,
# `crate::b::f()`, `super::b`, or a child module `b::f()` declared in A) and B's names reach A
# again. Tests are left out (`#[cfg(test)]` modules, inline or in their own files, and tests/).
# Prints each cycle by its files and exits 1 when there is one.
#
#   bash scripts/check-cycles.sh                    every crate (crates/*/src)
#   bash scripts/check-cycles.sh crates/extmem-cli  some crates (a crate's folder or its src/)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import glob, os, re, sys

def strip(code):
    """The code without comments, string and char literals (their text is not a path)."""
    out, i, n = [], 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            j = code.find("\n", i)
            i = n if j < 0 else j
        elif code.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if code.startswith("/*", i): depth, i = depth + 1, i + 2
                elif code.startswith("*/", i): depth, i = depth - 1, i + 2
                else: i += 1
        elif c == "r" and re.match(r'r#*"', code[i:]) and (i == 0 or not (code[i-1].isalnum() or code[i-1] == "_")):
            m = re.match(r'r(#*)"', code[i:])
            end = code.find('"' + m.group(1), i + len(m.group(0)))
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and code[i] != '"':
                i += 2 if code[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", code[i:i+4]) or (c == "'" and code.startswith("'\\", i)):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x..|\\.|[^\\'])'", code[i:])
            if m:
                i += len(m.group(0)); out.append("' '")
            else:
                out.append(c); i += 1
        else:
            out.append(c); i += 1
    return "".join(out)

def drop_test_modules(code):
    """`#[cfg(test)] mod x { ... }` removed; the names of `#[cfg(test)] mod x;` returned."""
    test_files = set(re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code))
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", code)
        if not m:
            return code, test_files
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        code = code[:m.start()] + code[i:]

def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (aliases and globs cut)."""
    tree = re.sub(r"\s+", "", tree)
    def parts(s):
        depth, cur, out = 0, "", []
        for ch in s:
            if ch == "," and depth == 0:
                out.append(cur); cur = ""
                continue
            depth += (ch == "{") - (ch == "}")
            cur += ch
        out.append(cur)
        return [p for p in out if p]
    def go(s):
        i = s.find("{")
        if i < 0:
            return [re.sub(r"as\w+$", "", s.split(" as ")[0]).rstrip(":*").rstrip(":")]
        prefix, inner = s[:i], s[i + 1:s.rfind("}")]
        return [prefix + q if q != "self" else prefix.rstrip(":") for p in parts(inner) for q in go(p)]
    return [p for p in go(tree) if p]

def modules_of(src):
    """Every non-test .rs file of a crate's src/: {module path tuple: file}, per crate root."""
    files = {}
    for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
        rel = os.path.relpath(path, src)
        parts = rel[:-3].split(os.sep)
        if rel.startswith("bin" + os.sep):
            continue  # each binary is a crate of its own: checked on its own below
        if parts[-1] in ("lib", "main") and len(parts) == 1:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        files[tuple(parts)] = path
    return files

def check(src):
    files = modules_of(src)
    # Leave out test-only files: declared under #[cfg(test)] by their parent.
    excluded = set()
    texts = {}
    for mod in sorted(files, key=len):
        if any(mod[:k] in excluded for k in range(len(mod) + 1)):
            excluded.add(mod); continue
        code, tests = drop_test_modules(strip(open(files[mod], encoding="utf-8").read()))
        for t in tests:
            excluded.add(mod + (t,))
        texts[mod] = code
    edges = {m: set() for m in texts}
    for mod, code in texts.items():
        children = set(re.findall(r"\bmod\s+(\w+)\s*;", code))
        is_dir = files[mod].endswith(("mod.rs", "lib.rs", "main.rs"))
        here = mod  # the module the file is
        paths = []
        # A re-export (`pub use`) is no use of the file itself: it lets others name the item
        # through this file (a facade); only what the file's own code names counts.
        for m in re.finditer(r"(\bpub(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", code):
            if not m.group(1):
                paths += expand(m.group(2))
        body = re.sub(r"\buse\s+[^;]+;", "", code)
        paths += [m.group(1) for m in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", body)]
        if children:
            pat = r"(?<![\w:])((?:%s)(?:::\w+)+)" % "|".join(sorted(children))
            paths += [m.group(1) for m in re.finditer(pat, body)]
        for p in paths:
            segs = [s for s in p.split("::") if s]
            if not segs:
                continue
            if segs[0] == "crate":
                target = segs[1:]
            elif segs[0] in ("super", "self"):
                base = list(here)
                while segs and segs[0] in ("super", "self"):
                    if segs.pop(0) == "super":
                        base = base[:-1]
                target = base + segs
            elif segs[0] in children:
                target = list(here) + segs
            else:
                continue
            # The file of the longest module prefix the path names.
            for k in range(len(target), -1, -1):
                t = tuple(target[:k])
                if t in texts:
                    if t != mod:
                        edges[mod].add(t)
                    break
    # Strongly connected components (Tarjan) of two or more files are the cycles.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1:
                comps.append(comp)
    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [sorted(os.path.relpath(files[m]) for m in comp) for comp in comps], len(texts)

args = sys.argv[1:] or sorted(glob.glob("crates/*/src"))
total = 0
for a in args:
    src = a if os.path.basename(os.path.normpath(a)) == "src" else os.path.join(a, "src")
    if not os.path.isdir(src):
        print(f"check-cycles: {a}: no src/ folder", file=sys.stderr); sys.exit(2)
    # src/bin/NAME/main.rs binaries with modules of their own (a one-file binary has no cycle).
    roots = [src] + sorted(os.path.dirname(m) for m in glob.glob(os.path.join(src, "bin", "*", "main.rs")))
    cycles = [c for root in roots for c in check(root)[0]]
    for c in cycles:
        print(f"import cycle in {os.path.relpath(src)}: " + " <-> ".join(c))
    total += len(cycles)
if total:
    print(f"check-cycles: {total} import cycle(s) (files whose module paths reach each other)", file=sys.stderr)
    sys.exit(1)
print(f"check-cycles: no import cycles in {len(args)} crate(s)")
PY
