"""The package's import graph: no circles, and no layer imports one above it.

Only imports that run are counted: module level and function level, but not
those under ``if TYPE_CHECKING:`` (annotations may name any layer).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "boxless"

# A layer may import only itself and the layers listed after it (ARCHITECTURE.md).
LAYERS = [
    ("cli",),
    ("api",),
    ("client",),
    ("node",),
    ("waku", "wire", "sync", "chat", "groups", "crypto", "identity"),
    ("archive", "storage"),  # the databases, at the bottom
]
SHARED = {"errors", "fanout", "_trio_compat", "__init__", "__main__"}


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module.startswith("boxless"):
                    subs = {f"{child.module}.{a.name}" for a in child.names} & modules
                    # `from pkg import submodule` needs the submodule, not pkg's own code
                    if len(subs) < len(child.names):
                        found.add(child.module)
                    found.update(subs)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("boxless"))
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in SRC.rglob("*.py") if not p.name.endswith("_pb2.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = _runtime_imports(path, set(modules))
        graph[name] = {m for m in deps if m in modules and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_circles() -> None:
    assert _cycles(_graph()) == []


def test_no_layer_imports_one_above_it() -> None:
    rank = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
    upward = []
    for module, deps in _graph().items():
        mine = _package(module)
        if mine in SHARED or mine not in rank:
            continue
        for dep in deps:
            theirs = _package(dep)
            if theirs in SHARED or theirs not in rank:
                continue
            if rank[theirs] < rank[mine]:
                upward.append(f"{module} -> {dep}")
    assert upward == []


def test_no_module_reaches_for_another_packages_private_names() -> None:
    """``api/onboarding.py`` took ``api/app.py``'s ``_body``; a helper two modules
    share is public, in the module whose job it is."""
    reached = []
    for path in SRC.rglob("*.py"):
        if path.name.endswith("_pb2.py"):
            continue
        mine = _module(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("boxless"):
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    same_module_family = node.module == mine.rsplit(".", 1)[0]
                    if private and not same_module_family:
                        reached.append(f"{mine} imports {node.module}.{alias.name}")
    assert reached == []
