#!/usr/bin/env python3
"""Refuses import loops between the modules of one crate.

Every `.rs` file under a crate's `src/` is a node (`a/b.rs` and `a/b/mod.rs` are module `a::b`);
an edge `x -> y` means that the code of `x` names an item of `y` through a `crate::`, `self::`
or `super::` path. A parent's own `mod child;` declarations and re-exports of its children
(`pub use child::...`, `pub use self::child::...`) are not edges: they are how a parent exposes
what lies below it. A parent that calls into its children and whose children use the parent's
own items is a loop like any other (the shared items go to a module of their own). The
`#[cfg(test)] mod tests { .. }` at the end of a file is left out (test code is no dependency);
paths inside any other inline module are resolved from that inline module and count as edges of
the file that holds it. Comments, strings and character literals are removed in one pass, so
that a `//` inside a string hides no code. Any cycle among the remaining edges is printed and
fails the check (STYLE.md 16: shared types move to a third module that both import).

    scripts/check-module-loops.py [CRATE_DIR ...]      # default: every crate under crates/ and bench/
"""
import os
import re
import sys

# Comments, string literals (raw ones included) and character literals, in one left-to-right
# scan, so that a `//` inside a string or a `"` inside a comment does not hide code.
LEXEME = re.compile(
    r"//[^\n]*"
    r"|/\*.*?\*/"
    r'|(?<![A-Za-z0-9_])b?r(#*)".*?"\1'
    r'|b?"(?:\\.|[^"\\])*"'
    r"|b?'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^'\\\n])'",
    re.S,
)
INLINE_MOD = re.compile(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{")
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
    """The code without comments, with every string and character literal emptied, and without
    the inline `#[cfg(test)] mod tests { .. }` at the end of a file (test code is not a
    dependency of the module, and its `super::` is the file's own module)."""

    def blank(m):
        t = m.group(0)
        if t.startswith("/"):
            return " " if t.startswith("//") else "\n" * t.count("\n") or " "
        return "''" if t.endswith("'") else '""'

    return TESTS.sub("", LEXEME.sub(blank, text))


def inline_modules(text):
    """`(start, end, name)` of every inline `mod name { ... }` block of a stripped text."""
    out = []
    for m in INLINE_MOD.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        out.append((m.end(), i, m.group(1)))
    return out


def scope_at(blocks, offset):
    """The inline modules (outermost first) that hold `offset`."""
    return tuple(name for start, end, name in blocks if start <= offset < end)


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
    if best is None and parts[0] != "crate":
        # `self`/`super` inside an inline module (`mod tests { use super::*; }`): the module
        # lands in the file that holds it.
        for i in range(len(base), -1, -1):
            if base[:i] in modules:
                return base[:i]
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
        blocks = inline_modules(text)
        # (the module a path is written in: the file's, or an inline module inside it; the path)
        paths = []
        for u in USE.finditer(text):
            prefix = text[max(0, u.start() - 40):u.start()]
            body = u.group(1)
            scope = scope_at(blocks, u.start())
            # `pub use child::x` re-exports below the parent: not a dependency upwards.
            below = re.match(r"\s*self::([A-Za-z_][A-Za-z0-9_]*)::", body)
            reexport = not re.match(r"\s*(crate|self|super)::", body) or (below and below.group(1) in children[mod])
            if not scope and re.search(r"pub(\([^)]*\))?\s*$", prefix) and reexport:
                continue
            kids = set() if scope else children[mod]
            paths.extend((mod + scope, p) for p in use_paths(mod + scope, body, kids))
        for m in PATH.finditer(text):
            paths.append((mod + scope_at(blocks, m.start()), m.group(1) + m.group(2).rstrip(":{")))
        # Paths relative to this module's children, written inline (`ike_init::Initiator`).
        for c in children[mod]:
            for m in re.finditer(r"(?<![:\w])" + re.escape(c) + r"((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
                line_start = text.rfind("\n", 0, m.start()) + 1
                line = text[line_start:m.start()]
                if re.search(r"\b(use|mod)\b", line):
                    continue
                paths.append((mod, "self::" + c + m.group(1)))
        for at, p in paths:
            target = resolve(at, p, modules, reexports)
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
