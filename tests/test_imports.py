"""No import cycles in python/pushwire.

Every import a module runs counts, at module level or inside a function (an import moved into
a function still ties the two modules together); imports only for type checkers
(``if TYPE_CHECKING:``) do not. Cycles are found as strongly connected components.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "pushwire"


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package); the extension counts through its stub."""
    modules = {}
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pyi")]):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = (path, is_package)
    return modules


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _type_checking_only(node):
            for branch in node.orelse:
                found.extend(_imports(ast.Module(body=[branch], type_ignores=[])))
        else:
            found.extend(_imports(node))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in modules}
                continue
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in modules:
                    graph[name].add(submodule)
                elif target in modules:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_cycle_held_together_by_an_import_inside_a_function():
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    tree = ast.parse(
        "import x\nif TYPE_CHECKING:\n    import y\nelse:\n    import w\ndef f():\n    import z"
    )
    assert sorted(n.names[0].name for n in _imports(tree)) == ["w", "x", "z"]  # type: ignore[union-attr]


def test_the_graph_sees_the_package_as_it_is():
    graph = import_graph()
    assert "pushwire._results" in graph["pushwire._dispatch"]
    assert "pushwire._core" in graph["pushwire._dispatch"]  # through the stub
    assert "pushwire.store.sqlite" in graph["pushwire.store.factory"]


def test_no_module_of_pushwire_takes_part_in_an_import_cycle():
    assert cycles(import_graph()) == []


def test_no_attribute_of_the_package_hides_a_module_of_the_same_name():
    # `import pushwire.classify as m` once gave the classify() function, not the module.
    pushwire = importlib.import_module("pushwire")
    for path in [*PACKAGE.glob("*.py"), *PACKAGE.glob("*/__init__.py")]:
        name = path.stem if path.stem != "__init__" else path.parent.name
        if name.startswith("_") or not hasattr(pushwire, name):
            continue
        module = importlib.import_module(f"pushwire.{name}")
        assert getattr(pushwire, name) is module, name
