#!/usr/bin/env python3
"""Refuses import loops between the modules of one crate.

Every `.rs` file under a crate's `src/` is a node (`a/b.rs` and `a/b/mod.rs` are module `a::b`);
an edge `x -> y` means that the code of `x` names an item of `y` through a `crate::`, `self::`
or `super::` path. A parent's own `mod child;` declarations and re-exports of its children
(`pub use child::...`) are not edges: they are how a parent exposes what lies below it. A parent
that calls into its children and whose children use the parent's own items is a loop like any
other (the shared items go to a module of their own). Any cycle among the remaining edges is printed and fails the check (STYLE.md 16: shared types move to a
third module that both import).

    scripts/check-module-loops.py [CRATE_DIR ...]      # default: every crate under crates/ and bench/
"""
import os
import re
import sys

COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')
PATH = re.compile(r"\b(crate|self|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)")
USE = re.compile(r"\buse\s+([^;]+);", re.S)
PUB_USE = re.compile(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", re.S)


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    if len(rel) >= 2 and rel[0] == "bin":
        return None
    return tuple(rel)


TESTS = re.compile(r"^#\[cfg\(test\)\]\s*\n\s*mod\s+\w+\s*\{.*", re.S | re.M)


def strip(text):
    """Code without comments, string contents and the inline `#[cfg(test)] mod tests { .. }`
    at the end of a file (test code is not a dependency of the module, and its `super::`
    is the file's own module)."""
    text = COMMENT.sub("", text)
    text = STRING.sub('""', text)
    return TESTS.sub("", text)


def expand_use(tree):
    """Paths named by a use tree such as `crate::a::{b, c::{d, e}}`."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, t):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(t):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(t[start:i])
                start = i + 1
        parts.append(t[start:])
        for p in parts:
            if not p:
                continue
            if "{" in p:
                head, rest = p.split("{", 1)
                walk(prefix + head, rest[:-1])
            else:
                out.append(prefix + re.sub(r"\bas\b.*$", "", p))

    walk("", tree)
    return out


EXTERNAL = ("<another crate>",)


def resolve(mod, path, modules, reexports=None):
    """The module a path lands in: its longest prefix that is a module, followed through the
    re-exports of that module (`crate::Config` is `config::Config` when lib.rs re-exports it)."""
    parts = path.split("::")
    if parts[0] == "crate":
        base = ()
    elif parts[0] == "self":
        base = mod
    elif parts[0] == "super":
        base = mod
        while parts and parts[0] == "super":
            base = base[:-1]
            parts = parts[1:]
        parts = ["super"] + parts
    else:
        return None
    names = [p for p in parts[1:] if p and p != "self"]
    best, used = None, 0
    for i in range(len(names) + 1):
        cand = base + tuple(names[:i])
        if cand in modules:
            best, used = cand, i
    seen = set()
    while reexports is not None and best is not None and used < len(names):
        key = (best, names[used])
        if key not in reexports or key in seen:
            break
        seen.add(key)
        best, used = reexports[key], used + 1
        if best is EXTERNAL:
            return None
    return best


def use_paths(mod, body, children):
    """Absolute-or-relative paths of a use tree, written with crate/self/super."""
    out = []
    for p in expand_use(body):
        if re.match(r"(crate|self|super)::", p):
            out.append(p)
        elif p.split("::")[0] in children:
            out.append("self::" + p)
    return out


def check(crate):
    src = os.path.join(crate, "src")
    if not os.path.isdir(src):
        return []
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(root, n)
                m = module_of(src, p)
                if m is not None:
                    files[m] = p
    modules = set(files)
    texts = {m: strip(open(p, encoding="utf-8").read()) for m, p in files.items()}
    children = {m: {c[-1] for c in modules if c and c[:-1] == m} for m in modules}
    # Pass 1: what each module re-exports, and from where.
    reexports = {}
    for mod, text in texts.items():
        for u in PUB_USE.finditer(text):
            for p in expand_use(u.group(1)):
                last = p.split("::")[-1]
                if last in ("*", "self"):
                    continue
                first = p.split("::")[0]
                if first in ("crate", "self", "super") or first in children[mod]:
                    q = p if first in ("crate", "self", "super") else "self::" + p
                    target = resolve(mod, q.rsplit("::", 1)[0], modules)
                    if target is not None:
                        reexports[(mod, last)] = target
                else:
                    # Re-exported from another crate: naming it is no dependency on this module.
                    reexports[(mod, last)] = EXTERNAL
    edges = {m: set() for m in modules}
    for mod, text in texts.items():
        paths = []
        for u in USE.finditer(text):
            prefix = text[max(0, u.start() - 12):u.start()]
            body = u.group(1)
            # `pub use child::x` re-exports below the parent: not a dependency upwards.
            if re.search(r"pub(\([^)]*\))?\s*$", prefix) and not re.match(r"\s*(crate|self|super)::", body):
                continue
            paths.extend(use_paths(mod, body, children[mod]))
        for m in PATH.finditer(text):
            paths.append(m.group(1) + m.group(2).rstrip(":{"))
        # Paths relative to this module's children, written inline (`ike_init::Initiator`).
        for c in children[mod]:
            for m in re.finditer(r"(?<![:\w])" + re.escape(c) + r"((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
                line_start = text.rfind("\n", 0, m.start()) + 1
                line = text[line_start:m.start()]
                if re.search(r"\b(use|mod)\b", line):
                    continue
                paths.append("self::" + c + m.group(1))
        for p in paths:
            target = resolve(mod, p, modules, reexports)
            if target is None or target == mod:
                continue
            edges[mod].add(target)
    return cycles(edges)


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
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
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [(c, {a: sorted(edges[a] & set(c)) for a in c}) for c in out]


def name(m):
    return "::".join(m) or "lib"


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    crates = sys.argv[1:] or sorted(
        [os.path.join(root, "crates", c) for c in os.listdir(os.path.join(root, "crates"))] + [os.path.join(root, "bench")]
    )
    bad = 0
    for crate in crates:
        for comp, inner in check(crate):
            bad += 1
            print(f"{os.path.relpath(crate, root)}: import loop between {', '.join(sorted(name(m) for m in comp))}")
            for a in sorted(inner):
                print(f"    {name(a)} -> {', '.join(name(b) for b in inner[a])}")
    if bad:
        print(f"{bad} import loop(s): move what both sides need into a module that both import")
        sys.exit(1)
    print(f"no import loops in {len(crates)} crates")


if __name__ == "__main__":
    main()
