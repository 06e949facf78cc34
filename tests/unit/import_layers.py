"""The import direction of the project's layers, checked from the source (every import,
including those inside functions): a module may import its own layer and the ones below;
no import circle between modules.

Layers, bottom to top (a module belongs to the most specific prefix that names it):

    core      rtml.core (errors, typed config, feature specs, paths): nothing of the project
    store     models.store: the model registry and metadata
    logic     udfs (not udfs.flink): features, validation, scoring, serving gate, fairness, drift
    training  models: training sets, estimators, ONNX export, reweighing, shadow report
    services  deploy: Kafka broker, Flink cluster, REST and Kafka clients, jars (core only)
    adapters  udfs.flink, flink_jobs: PyFlink functions and job graphs
    cli       rtml.cli: the `rtml` command, its commands, the bench, the scenarios

``services`` sits beside the logic: it may import only the core.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("rtml", "udfs", "models", "flink_jobs", "deploy")

# (prefix, layer); the longest matching prefix decides
LAYER_OF = [
    ("rtml", "core"),  # the package's __init__ (its version)
    ("rtml.core", "core"),
    ("models.store", "store"),
    ("udfs", "logic"),
    ("models", "training"),
    ("deploy", "services"),
    ("udfs.flink", "adapters"),
    ("flink_jobs", "adapters"),
    ("rtml.cli", "cli"),
]
ORDER = ["core", "store", "logic", "training", "services", "adapters", "cli"]
# what each layer may import besides its own: everything below it, except that services
# stand beside the logic and take only the core (and nothing below services uses them)
ALLOWED = {layer: set(ORDER[:i]) for i, layer in enumerate(ORDER)}
ALLOWED["services"] = {"core"}
for upper in ("adapters", "cli"):
    ALLOWED[upper] |= {"services"}


@dataclass(frozen=True)
class Arrow:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.imported} ({layer(self.importer)} -> {layer(self.imported)})"


def layer(module: str) -> str:
    best = max(
        (p for p, _ in LAYER_OF if module == p or module.startswith(p + ".")),
        key=len,
        default=None,
    )
    if best is None:
        raise ValueError(f"{module} is in no layer")
    return dict(LAYER_OF)[best]


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (root / pkg).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imported(node: ast.AST, module: str, is_package: bool, mods: dict) -> list[str]:
    """The project modules an import statement names (for ``from pkg import name``, the
    submodule ``pkg.name`` when there is one, else ``pkg``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix for a in node.names]


def arrows(root: Path) -> list[Arrow]:
    """Every import of one project module by another (the most specific module named)."""
    mods = modules(root)
    out = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            for target in _imported(node, name, path.name == "__init__.py", mods):
                if target.split(".")[0] not in PACKAGES:
                    continue
                resolved = target
                while resolved and resolved not in mods:
                    resolved = resolved.rpartition(".")[0]
                if resolved and resolved != name and not name.startswith(resolved + "."):
                    out.append(Arrow(name, resolved, node.lineno))
    return sorted(set(out), key=lambda a: (a.importer, a.imported, a.line))


def wrong_way(found: list[Arrow]) -> list[Arrow]:
    return [
        a
        for a in found
        if layer(a.imported) != layer(a.importer)
        and layer(a.imported) not in ALLOWED[layer(a.importer)]
    ]


def circles(found: list[Arrow]) -> list[list[str]]:
    """Import circles between modules (strongly connected components of more than one)."""
    graph: dict[str, set[str]] = {}
    for a in found:
        graph.setdefault(a.importer, set()).add(a.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
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
            visit(v)
    return out


def pyflink_imports(root: Path, layers: set[str]) -> list[str]:
    """``module:line`` of every pyflink import in the given layers."""
    out = []
    for name, path in modules(root).items():
        if layer(name) not in layers:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "pyflink" or n.startswith("pyflink.") for n in names):
                out.append(f"{name}:{node.lineno}")
    return out
