#!/usr/bin/env python3
"""Fail on any import cycle between the modules of the crate under src/ (scripts/test.sh).

A module depends on another when its non-test code names it: a `use` path or an inline path
starting with `crate::`, `super::`, `self::` or one of its own child modules. Code gated by
`#[cfg(test)]` does not count: tests may reach anywhere. Each module is one node (a child is
its own node, so a parent that uses its child and a child that uses its parent is a cycle).
On a cycle it prints the modules in order with the file and line of each import.

Usage: module-cycles.py [SRC_DIR]      (default: src/ next to this script's parent)
       module-cycles.py --self-test    (shows the check failing on a made-up cycle)
"""

import os
import re
import sys
import tempfile

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def blank(text, start, end):
    """The text with [start, end) replaced by spaces, newlines kept (for line numbers)."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def strip_literals(text):
    """Comments, string, byte-string, raw-string and char literals become spaces."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not re.match(r"\w", text[i - 1])):
            close = '"' + m.group(1)
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not re.match(r"\w", text[i - 1]))):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:])):
            j = i + m.end()  # a char literal; a lifetime ('a) has no closing quote
        else:
            out.append(c)
            i += 1
            continue
        out.append(re.sub(r"[^\n]", " ", text[i:j]))
        i = j
    return "".join(out)


def item_end(text, start):
    """The end of the item starting at `start`: after its `;`, or after its matching `}`."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        elif text[j] == ";" and depth == 0:
            return j + 1
    return len(text)


def strip_test_items(text):
    """Every item under `#[cfg(test)]` (a test module, a test-only helper) becomes spaces."""
    while m := re.search(r"#\[cfg\(test\)\]", text):
        text = blank(text, m.start(), item_end(text, m.end()))
    return text


def use_paths(tree):
    """The paths a `use` tree names: `a::{b, c::{d as e}}` -> [a::b, a::c::d]."""
    tokens = re.findall(rf"{IDENT}|::|[{{}},*]", tree)
    pos = 0

    def parse(prefix):
        nonlocal pos
        paths, current = [], list(prefix)
        while pos < len(tokens):
            t = tokens[pos]
            pos += 1
            if t == "{":
                paths += parse(current)
            elif t == "}":
                break
            elif t == ",":
                if current != prefix:
                    paths.append(current)
                current = list(prefix)
                continue
            elif t == "as":
                pos += 1  # the alias
            elif t == "::":
                continue
            elif t == "*":
                paths.append(current)
                current = list(prefix)
            else:
                current = current + [t]
                continue
            if t == "{":
                current = list(prefix)
        if current != prefix:
            paths.append(current)
        return paths

    return [p for p in parse([]) if p]


class Module:
    def __init__(self, path, file, text):
        self.path = path  # ("core", "authz") for src/core/authz/mod.rs
        self.file = file
        self.text = text
        self.children = re.findall(rf"\bmod\s+({IDENT})\s*;", text)


def load(src):
    """The module tree from src/lib.rs, following `mod x;` outside `#[cfg(test)]`."""
    modules = {}

    def visit(path, file, dir_for_children):
        with open(file, encoding="utf-8") as f:
            text = strip_test_items(strip_literals(f.read()))
        module = Module(path, file, text)
        modules[path] = module
        for child in module.children:
            flat = os.path.join(dir_for_children, child + ".rs")
            nested = os.path.join(dir_for_children, child, "mod.rs")
            if os.path.exists(flat):
                visit(path + (child,), flat, os.path.join(dir_for_children, child))
            elif os.path.exists(nested):
                visit(path + (child,), nested, os.path.join(dir_for_children, child))

    visit((), os.path.join(src, "lib.rs"), src)
    return modules


def resolve(module, segments, modules):
    """The module a path names (its longest module prefix), or None outside the crate."""
    head, rest = segments[0], segments[1:]
    if head == "crate":
        base = ()
    elif head == "self":
        base = module.path
    elif head == "super":
        base = module.path[:-1]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif head in module.children:
        base, rest = module.path + (head,), rest
    else:
        return None
    target = base
    for seg in rest:
        if target + (seg,) in modules:
            target = target + (seg,)
        else:
            break
    return target


def edges(modules):
    """{(from, to): (file, line)} for every dependency between two different modules."""
    found = {}

    def add(module, segments, offset):
        target = resolve(module, segments, modules)
        if target is None or target == module.path:
            return
        line = module.text.count("\n", 0, offset) + 1
        found.setdefault((module.path, target), (module.file, line))

    for module in modules.values():
        text = module.text
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            for segments in use_paths(m.group(1)):
                add(module, segments, m.start())
        code = re.sub(r"\buse\s+[^;]+;", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
        heads = ["crate", "super", "self"] + module.children
        pattern = rf"(?<![\w:])(?:{'|'.join(heads)})(?:\s*::\s*{IDENT})+"
        for m in re.finditer(pattern, code):
            add(module, re.findall(IDENT, m.group(0)), m.start())
    return found


def cycles(modules, found):
    """The strongly connected components with more than one module (Tarjan)."""
    graph = {p: sorted(t for (f, t) in found if f == p) for p in modules}
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sccs, graph


def one_cycle(scc, graph):
    """A concrete cycle inside a component: a shortest path from its first module back to it."""
    members = set(scc)
    start = scc[0]
    previous, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in graph[v]:
                if w == start:
                    path = [v]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    return list(reversed(path)) + [start]
                if w in members and w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    return [start]


def name(path):
    return "crate::" + "::".join(path) if path else "crate"


def check(src, out=sys.stdout):
    modules = load(src)
    found = edges(modules)
    sccs, graph = cycles(modules, found)
    for scc in sccs:
        print(f"module cycle among {len(scc)} modules: " + ", ".join(name(p) for p in scc), file=out)
        cycle = one_cycle(scc, graph)
        for a, b in zip(cycle, cycle[1:]):
            file, line = found[(a, b)]
            print(f"  {name(a)} -> {name(b)}   ({os.path.relpath(file, os.path.dirname(src))}:{line})", file=out)
    if not sccs:
        print(f"no module cycle among {len(modules)} modules under {os.path.relpath(src)}", file=out)
    return 1 if sccs else 0


def self_test():
    """A made-up crate: acyclic until one import closes a loop; test-only imports never count."""
    import io

    files = {
        "lib.rs": "pub mod leaf;\npub mod feature;\nmod host;\n",
        "leaf.rs": "pub struct Error;\n// use crate::feature::Thing; (a comment)\n"
        'const S: &str = "use crate::host::X;";\n'
        "#[cfg(test)]\nmod tests {\n    use crate::host::Host;\n    fn f() { let _ = '{'; }\n}\n",
        "feature/mod.rs": "pub mod part;\nuse super::leaf::Error;\npub fn f() { part::g() }\n",
        "feature/part.rs": "pub fn g() { let _ = crate::leaf::Error; }\n",
        "host.rs": "use crate::{feature::{self, part::g}, leaf};\n",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(text)
        out = io.StringIO()
        assert check(tmp, out) == 0, out.getvalue()
        # A leaf that imports a feature closes leaf -> feature::part -> leaf (through a grouped use).
        with open(os.path.join(tmp, "leaf.rs"), "a") as f:
            f.write("use crate::{feature::part as p};\nfn g() { p::g() }\n")
        out = io.StringIO()
        assert check(tmp, out) == 1, out.getvalue()
        report = out.getvalue()
        for expected in ("crate::leaf -> crate::feature::part", "crate::feature::part -> crate::leaf"):
            assert expected in report, report
        # A child that reaches back into its parent's items is a cycle with that parent.
        with open(os.path.join(tmp, "leaf.rs"), "w") as f:
            f.write(files["leaf.rs"])
        with open(os.path.join(tmp, "feature/part.rs"), "a") as f:
            f.write("fn h() { super::f() }\n")
        out = io.StringIO()
        assert check(tmp, out) == 1, out.getvalue()
        assert "crate::feature::part -> crate::feature" in out.getvalue(), out.getvalue()
        print("self-test: the check passes an acyclic crate and fails, naming the imports, on two cycles")
        print("  " + report.strip().replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(root)))
