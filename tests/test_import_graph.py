"""No import cycles between teg-plugin's modules, not even through imports inside functions.

Every module of ``teg_plugin`` (``teg_plugin/``), ``teg_plugin.spaces`` (``spaces/``) and
``teg_plugin.strategies`` (``strategies/``) is parsed, never imported, and every import of a
``teg_plugin`` module anywhere in the file counts: at module level, inside functions and methods,
absolute or relative. The code is built in layers (spaces, then indicators and the scorer, then the
strategies, then the Optuna and NNI adapters, then the CLI) that only hold if a lower module never
reaches back up; an import hidden in a function still makes two modules depend on each other.

How an import becomes an edge of the module graph:

* ``import a.b.c`` is an edge to ``a.b.c``;
* ``from a.b import name`` is an edge to ``a.b.name`` when that is a module, else to ``a.b``;
* a package stands for its ``__init__.py``;
* importing ``a.b.c`` first runs the packages above it, ``a`` and ``a.b``: those are edges too,
  except the importing module's own packages, which Python has always started before the module
  itself (otherwise every package that re-exports its submodules would be a cycle with each).

Imports inside an ``if TYPE_CHECKING:`` block are left out: they are never executed, only read by
type checkers (its ``else:`` branch does run, and counts).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Each installed package and the folder its source lives in.
PACKAGE_DIRS = {
    "teg_plugin": ROOT / "teg_plugin",
    "teg_plugin.spaces": ROOT / "spaces",
    "teg_plugin.strategies": ROOT / "strategies",
}


def _modules(package_dirs: dict[str, Path]) -> dict[str, tuple[Path, bool]]:
    """Every module name, with its file and whether it is a package (an ``__init__.py``)."""
    modules: dict[str, tuple[Path, bool]] = {}
    for package, folder in package_dirs.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            # Only files inside packages are importable as modules of ``package``.
            if not all((folder.joinpath(*parts[:i]) / "__init__.py").exists() for i in range(len(parts))):
                continue
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            modules[".".join((package, *parts))] = (path, is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _executed_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in ``node``, at any depth, except in ``if TYPE_CHECKING:`` bodies."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    elif isinstance(node, ast.If) and _is_type_checking(node.test):
        for statement in node.orelse:
            yield from _executed_imports(statement)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _executed_imports(child)


def _imported_modules(name: str, path: Path, is_package: bool, known: set[str]) -> set[str]:
    """The teg_plugin modules the module ``name`` (in ``path``) imports."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in _executed_imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                # Relative: ``from . import x`` in a package is relative to the package itself.
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names
            ]
        for target in targets:
            if target not in known:
                continue
            if target != name:
                found.add(target)
            parts = target.split(".")
            for depth in range(1, len(parts)):
                package = ".".join(parts[:depth])
                if package in known and not (name == package or name.startswith(package + ".")):
                    found.add(package)
    return found


def import_graph(package_dirs: dict[str, Path] = PACKAGE_DIRS) -> dict[str, set[str]]:
    """Each module of ``package_dirs`` and the modules of theirs it imports anywhere in its file."""
    modules = _modules(package_dirs)
    known = set(modules)
    return {name: _imported_modules(name, path, is_package, known) for name, (path, is_package) in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path = [start]
        state[start] = 1
        stack = [iter(sorted(graph[start]))]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                state[path.pop()] = 2
            elif state.get(target) == 1:
                return [*path[path.index(target) :], target]
            elif target not in state:
                state[target] = 1
                path.append(target)
                stack.append(iter(sorted(graph.get(target, ()))))
    return None


def test_the_graph_sees_every_package_and_function_level_imports() -> None:
    graph = import_graph()
    assert {"teg_plugin", "teg_plugin.spaces", "teg_plugin.strategies", "teg_plugin.cli._main"} <= set(graph)
    assert sum(len(edges) for edges in graph.values()) > 100, "too few imports found: is the parser broken?"
    # build_parser imports the subcommands inside the function.
    assert "teg_plugin.cli._bench" in graph["teg_plugin.cli._main"]


def test_function_level_imports_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    files = {
        "__init__.py": "from pkg.sub import mod\n",
        "low.py": "def helper():\n    from .high import thing\n    return thing\n",
        "high.py": (
            "import typing\n"
            "if typing.TYPE_CHECKING:\n    from pkg.other import x\nelse:\n    import pkg.sub.mod\n"
            "from pkg import low\n"
        ),
        "other.py": "import pkg.high\n",
        "sub/__init__.py": "",
        "sub/mod.py": "from pkg.sub import name_in_init\n",
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    graph = import_graph({"pkg": tmp_path / "pkg"})
    assert graph == {
        "pkg": {"pkg.sub", "pkg.sub.mod"},  # importing pkg.sub.mod runs pkg/sub/__init__.py first
        "pkg.low": {"pkg.high"},  # relative, inside a function
        "pkg.high": {"pkg.low", "pkg.sub", "pkg.sub.mod"},  # not pkg.other: type checking only
        "pkg.other": {"pkg.high"},
        "pkg.sub": set(),
        "pkg.sub.mod": {"pkg.sub"},  # a name defined in the package itself
    }
    assert find_cycle(graph) == ["pkg.high", "pkg.low", "pkg.high"]
    (tmp_path / "pkg" / "low.py").write_text("def helper():\n    return 1\n")
    assert find_cycle(import_graph({"pkg": tmp_path / "pkg"})) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
