"""Layering, proven from the source: every import of every module (function-level ones too) runs down
the layer table of docs/architecture.md, none is an edge it refuses, and no chain of imports leads back
to where it started.

Parsed with `ast`, so an import hidden inside a function counts the same as one at the top.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dgslrm_ros"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def layer_table() -> dict[str, int]:
    """Package -> layer number, read from the `| layer | packages | ... |` table of docs/architecture.md."""
    table: dict[str, int] = {}
    for layer, packages in re.findall(r"^\| (\d+) \| ([^|]+) \|", ARCHITECTURE.read_text(), flags=re.MULTILINE):
        for name in re.findall(r"`(\w+)`", packages):
            assert name not in table, f"{name} is in two layers of {ARCHITECTURE.name}"
            table[name] = int(layer)
    return table


def refused_edges() -> set[tuple[str, str]]:
    """(package, package it never imports) from the `| package | never imports | why |` table."""
    table = layer_table()
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", ARCHITECTURE.read_text(), flags=re.MULTILINE)
    return {(source, target) for source, target in rows if source in table and target in table}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every dgslrm_ros module `path` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.relative_to(ROOT)}: relative import (write the absolute module)"
            base = node.module or ""
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
            found.add(base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "dgslrm_ros"}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else None


def test_the_layer_table_names_every_package() -> None:
    table = layer_table()
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages == set(table), f"in the package, not the table: {packages - set(table)}; " \
                                   f"in the table, not the package: {set(table) - packages}"


def test_every_import_runs_down_the_layer_table() -> None:
    table = layer_table()
    upward = []
    for module, targets in import_graph().items():
        source = package_of(module)
        for target in targets:
            into = package_of(target)
            if source is None or into is None or into == source:
                continue
            if table[into] >= table[source]:
                upward.append(f"{module} (layer {table[source]}) imports {target} (layer {table[into]})")
    assert not upward, "imports that do not run down docs/architecture.md's layers:\n" + "\n".join(sorted(upward))


def test_no_refused_edge_even_where_the_layers_allow_it() -> None:
    refused = refused_edges()
    assert ("stream", "convert") in refused  # messages are packed at the edges (node, replay), never in stream
    found = [f"{module} imports {target}" for module, targets in import_graph().items() for target in targets
             if (package_of(module), package_of(target)) in refused]
    assert not found, "imports docs/architecture.md refuses:\n" + "\n".join(sorted(found))


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module] = 2
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_check_sees_function_level_imports(tmp_path) -> None:
    """The parser is what the proof rests on: an import inside a function body must count."""
    source = tmp_path / "probe.py"
    source.write_text("def late():\n    from dgslrm_ros.cli.main import main\n    import dgslrm_ros.ros.node\n")
    assert imported_modules(source) >= {"dgslrm_ros.cli.main", "dgslrm_ros.ros.node"}
