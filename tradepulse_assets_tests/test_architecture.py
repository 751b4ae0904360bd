"""The import rules of docs/architecture.md, checked on the whole import graph of the package.

The layer table is read from the document itself, so the page and the code cannot drift apart. Every import
counts, including those inside functions: an import hidden in a function is still a dependency.
"""

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "tradepulse_assets"
SOURCE = REPO / PACKAGE
DOC = REPO / "docs" / "architecture.md"

#: The one module allowed to import non-public Dagster modules (rule 3).
DAGSTER_INTERNALS = f"{PACKAGE}.defs.dagster_internals"
#: Where each IO primitive may be called (rule 4).
IO_HOME = f"{PACKAGE}.core.io"
IO_PRIMITIVES = {
    "os.replace": re.compile(r"\bos\.replace\("),
    "fcntl": re.compile(r"^\s*(import fcntl|from fcntl import)", re.MULTILINE),
    "boto3.client": re.compile(r"\bboto3\.client\("),
}
DOMAIN_TIERS = range(0, 6)  # core .. pipeline: no Dagster (rule 5)

#: Cycles other work is removing. Each entry must still exist: when one is gone, delete it here.
KNOWN_CYCLES: list[frozenset[str]] = []


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    target: str  # dotted module name (resolved to a module of ours when possible)
    line: int
    names: tuple[str, ...]


def layer_tiers() -> dict[str, int]:
    """``{package: tier}`` from the layer table of docs/architecture.md."""
    tiers = {}
    for match in re.finditer(r"^\| (\d+) \| `([a-z_]+)(?:/|\.py)` \|", DOC.read_text(), re.MULTILINE):
        tiers[match.group(2)] = int(match.group(1))
    return tiers


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SOURCE.rglob("*.py"))}


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import statement of a module, anywhere in it, as edges to dotted module names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno, ())
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(name, is_package, node.level, node.module) if node.level else node.module or ""
            )
            names = tuple(alias.name for alias in node.names)
            yield Import(name, base, node.lineno, names)  # ``from pkg import sub`` runs pkg/__init__ too
            for sub in (f"{base}.{n}" for n in names if f"{base}.{n}" in known):
                yield Import(name, sub, node.lineno, ())


def all_imports() -> list[Import]:
    found = modules()
    known = set(found)
    return [edge for name, path in found.items() for edge in imports_of(name, path, known)]


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == PACKAGE else None


def strongly_connected(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm (iterative); components of more than one module, or one importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    components.append(frozenset(component))
    return components


def _where(edge: Import) -> str:
    return f"{edge.importer} (line {edge.line}) imports {edge.target}"


# ------------------------------------------------------------------------------------------------ tests


def test_the_layer_table_names_every_package():
    tiers = layer_tiers()
    packages = {p.name for p in SOURCE.iterdir() if (p / "__init__.py").is_file()}
    assert tiers, f"no layer table found in {DOC}"
    assert packages - set(tiers) == set(), f"packages missing from the table in {DOC}"


def test_imports_follow_the_layer_table():
    tiers = layer_tiers()
    wrong = []
    for edge in all_imports():
        source, target = package_of(edge.importer), package_of(edge.target)
        if source is None or target is None or source == target:
            continue
        if tiers[target] >= tiers[source]:
            wrong.append(f"{_where(edge)}: tier {tiers[source]} may only import lower tiers, not {tiers[target]}")
    assert wrong == [], "imports against docs/architecture.md:\n" + "\n".join(wrong)


def test_domain_layers_do_not_import_dagster():
    tiers = layer_tiers()
    wrong = [
        _where(edge)
        for edge in all_imports()
        if tiers.get(package_of(edge.importer) or "", 99) in DOMAIN_TIERS
        and edge.target.split(".")[0].startswith("dagster")
        and edge.importer != IO_HOME  # the lazy dagster-aws import of the S3 client factory
    ]
    assert wrong == []


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for edge in all_imports():
        if edge.target.startswith(PACKAGE) and edge.target != edge.importer:
            graph.setdefault(edge.importer, set()).add(edge.target)
    cycles = strongly_connected(graph)
    unexpected = [sorted(c) for c in cycles if not any(known <= c for known in KNOWN_CYCLES)]
    assert unexpected == [], "import cycles (imports inside functions count):\n" + "\n".join(map(str, unexpected))
    gone = [sorted(known) for known in KNOWN_CYCLES if not any(known <= c for c in cycles)]
    assert gone == [], f"these known cycles are gone: delete them from KNOWN_CYCLES in {Path(__file__).name}: {gone}"


def _private(module: str, names: tuple[str, ...]) -> bool:
    top, *rest = module.split(".")
    if not top.startswith("dagster"):
        return False
    return any(part.startswith("_") for part in rest) or any(n.startswith("_") for n in names)


def test_public_dagster_apis_only():
    wrong = [
        _where(edge)
        for edge in all_imports()
        if _private(edge.target, edge.names) and edge.importer != DAGSTER_INTERNALS
    ]
    assert wrong == [], f"private Dagster imports outside {DAGSTER_INTERNALS}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("primitive", sorted(IO_PRIMITIVES))
def test_io_primitives_have_one_home(primitive):
    pattern = IO_PRIMITIVES[primitive]
    wrong = [
        name
        for name, path in modules().items()
        if name != IO_HOME and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert wrong == [], f"{primitive} outside {IO_HOME} (use atomic_write / append_jsonl / s3_client): {wrong}"


def test_the_checker_sees_cycles_and_function_level_imports(tmp_path):
    """The rules above can fail: a cycle closed by an import inside a function is found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [frozenset({"a", "b", "c"})]
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tradepulse_assets.defs import definitions\n")
    edges = list(imports_of("tradepulse_assets.storage.m", module, {"tradepulse_assets.defs.definitions"}))
    assert [(e.target, e.line) for e in edges] == [
        ("tradepulse_assets.defs", 2),
        ("tradepulse_assets.defs.definitions", 2),
    ]
