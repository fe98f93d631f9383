"""List the module import graph of the Rust crates and fail on a cycle.

Every `.rs` file under a crate's `src/` is one module (`lib.rs` is the crate root, `a/mod.rs`
is `a`, `a/b.rs` is `a::b`; `src/bin/` holds separate crates and is skipped). An edge A -> B
means A names something in module B: `use crate::b::...`, an inline `crate::b::x` path,
`super::b`, or (in a parent module) `use b::...` of its own child. Each path resolves to the
longest existing module prefix, so `crate::pool::shared::PoolShared` is an edge to
`pool::shared`, not to `pool`. Comments and string literals are ignored.

Usage: python3 scripts/rust_module_cycles.py [--graph] CRATE_SRC_DIR...
Exits 1 and prints each cycle if any crate's graph has one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_COMMENT_OR_STRING = re.compile(
    r'//[^\n]*|/\*.*?\*/|r#*"(?:.|\n)*?"#*|b?"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])\'',
    re.DOTALL,
)
_USE = re.compile(r"\buse\s+([^;]+);")
_INLINE = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
_INLINE_MOD = re.compile(r"\bmod\s+(\w+)\s*\{")


def inline_modules(text: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of each `mod name { ... }` block written inside a file."""
    blocks = []
    for match in _INLINE_MOD.finditer(text):
        depth, end = 0, len(text)
        for i in range(match.end() - 1, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                end = i
                break
        blocks.append((match.start(), end, match.group(1)))
    return blocks


def module_name(src: Path, file: Path) -> str:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts.pop()
    return "::".join(["crate", *parts])


def expand_use_tree(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"] (whitespace removed)."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    items, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    paths = []
    for item in filter(None, items):
        for sub in expand_use_tree(item):
            paths.append(prefix + sub if sub != "self" else prefix.rstrip(":"))
    return paths


def resolve(path: str, current: str, modules: set[str], inline: list[str]) -> str | None:
    """The module a path names something in, or None for a path outside the crate.

    `inline` names the `mod x { }` blocks (e.g. `tests`) the path is written in: their
    `super` is the file's own module.
    """
    segments = [s for s in path.split("::") if s]
    if not segments:
        return None
    here = current.split("::") + inline
    if segments[0] == "crate":
        base, rest = ["crate"], segments[1:]
    elif segments[0] in ("super", "self"):
        base = here[:]
        while segments and segments[0] in ("super", "self"):
            if segments.pop(0) == "super":
                base.pop()
        rest = segments
    elif "::".join([*here, segments[0]]) in modules:
        base, rest = here[:], segments  # a parent naming its own child module
    else:
        return None  # std, a dependency, or a local name
    base = base[: len(current.split("::"))]  # inside an inline block: the file's module
    target = "::".join(base)
    for segment in rest:
        candidate = f"{target}::{segment}"
        if candidate not in modules:
            break
        target = candidate
    return target


def crate_graph(src: Path) -> dict[str, set[str]]:
    files = [f for f in src.rglob("*.rs") if "bin" not in f.relative_to(src).parts]
    modules = {module_name(src, f) for f in files}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for file in files:
        current = module_name(src, file)
        text = _COMMENT_OR_STRING.sub(" ", file.read_text())
        blocks = inline_modules(text)
        paths = [
            (use.start(), p) for use in _USE.finditer(text) for p in expand_use_tree(use.group(1))
        ]
        paths += [(m.start(), m.group(1) + m.group(2)) for m in _INLINE.finditer(text)]
        for at, path in paths:
            inline = [name for start, end, name in blocks if start < at < end]
            target = resolve(path, current, modules, inline)
            if target is not None and target != current:
                graph[current].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    show = "--graph" in argv
    failed = False
    for arg in (a for a in argv if a != "--graph"):
        graph = crate_graph(Path(arg))
        edges = sum(len(targets) for targets in graph.values())
        print(f"{arg}: {len(graph)} modules, {edges} import edges")
        if show:
            for module in sorted(graph):
                print(f"  {module} -> {', '.join(sorted(graph[module])) or '-'}")
        for component in cycles(graph):
            failed = True
            print(f"  CYCLE: {' <-> '.join(component)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
