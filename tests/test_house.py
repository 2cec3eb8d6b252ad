"""The house (docs/layout.md): no import cycles, imports only go down the list of parts, the
top of src/ppinfer/ shows the parts, and no module grows past the size a newcomer can read.

Imports are read from the source (every ``import`` and ``from ... import``, also those inside
functions: a late import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ppinfer"

# docs/layout.md, top to bottom: a part may import the parts below it, never those above.
LAYERS = [
    ["cli"],
    ["serving"],
    ["api"],
    ["runners", "bench", "quantization"],
    ["export", "predict"],
    ["engines"],
    ["modelfiles"],
    ["models"],
    ["checkpoints", "pipeline", "config"],
    ["runtime"],
    ["io"],
    ["errors"],
]
TOP_LEVEL_MODULES = {"__init__", "__main__", "errors", "export", "predict"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] == "ppinfer":
                    for alias in node.names:
                        targets.add(owner(f"{node.module}.{alias.name}"))
            elif isinstance(node, ast.Import):
                targets |= {owner(a.name) for a in node.names if a.name.split(".")[0] == "ppinfer"}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (version, errors)


def test_no_module_imports_one_that_imports_it_back():
    graph = _imports(_modules())
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_part_imports_only_the_parts_below_it():
    rank = {part: i for i, layer in enumerate(LAYERS) for part in layer}
    upward = []
    for module, targets in _imports(_modules()).items():
        source = _part(module)
        for target in targets:
            into = _part(target)
            if source is None or into is None or source == into or source == "__main__":
                continue
            assert source in rank and into in rank, f"{source} or {into} is not in LAYERS"
            if rank[into] <= rank[source]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run up or sideways: " + ", ".join(sorted(upward))


def test_the_top_of_the_package_shows_its_parts():
    loose = {p.stem for p in PACKAGE.glob("*.py")} - TOP_LEVEL_MODULES
    assert not loose, f"modules loose at the top of src/ppinfer/: {sorted(loose)}"
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    listed = {part for layer in LAYERS for part in layer}
    assert folders <= listed, f"folders missing from LAYERS: {sorted(folders - listed)}"


def test_no_module_is_longer_than_a_newcomer_reads():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
