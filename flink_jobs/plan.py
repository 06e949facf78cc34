"""The operator graph of a built job, read from Flink's execution plan (no PyFlink import).

The input is ``env.get_execution_plan()``'s JSON (the stream graph after PyFlink's
``PythonOperatorChainingOptimizer``), each node annotated by ``flink_jobs.explain`` with what
its StreamNode runs::

    {"id": 13, "contents": "m1, f1, p1", "pact": "Operator", "parallelism": 2,
     "predecessors": [{"id": 1, "ship_strategy": "REBALANCE"}],
     "stream_node": {"class": "...ExternalPythonProcessOperator", "python": true,
                     "python_functions": 3}}

A node that fuses several Python functions is named by the optimizer as their names joined
with ", " (upstream first), and gets a new id. Every Python node is one Python stage: its
records wait for the end of its bundle.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANNOTATION = "stream_node"
FUSED_SEPARATOR = ", "  # PythonOperatorChainingOptimizer names a fused node "up, down"


class PlanError(ValueError):
    """The document is not an annotated Flink execution plan."""


@dataclass(frozen=True)
class Input:
    id: int
    ship_strategy: str  # FORWARD, HASH, REBALANCE, BROADCAST, ...


@dataclass(frozen=True)
class Operator:
    id: int
    name: str
    kind: str  # Flink's "pact": "Data Source", "Operator", "Data Sink"
    parallelism: int
    predecessors: tuple[Input, ...]
    operator_class: str
    python: bool
    python_functions: int  # how many Python functions the node runs (fused: several); JVM: 0
    functions: tuple[str, ...]  # their names, when the node's name tells them apart

    @property
    def fused(self) -> bool:
        return self.python_functions > 1


@dataclass(frozen=True)
class Plan:
    operators: tuple[Operator, ...]

    @property
    def python_stages(self) -> int:
        return sum(op.python for op in self.operators)

    @property
    def longest_python_path(self) -> int:
        """The most Python stages any record passes through, source to sink."""
        by_id = {op.id: op for op in self.operators}
        depth: dict[int, int] = {}
        for op in self.operators:
            _python_depth(op.id, by_id, depth, ())
        return max(depth.values(), default=0)


def upstream_first(plan: Plan) -> list[Operator]:
    """The operators, each after its predecessors (among those ready, the lowest id first):
    fused nodes get new ids, so Flink's own order puts them after their consumers."""
    by_id = {op.id: op for op in plan.operators}
    waiting = {op.id: {p.id for p in op.predecessors} for op in plan.operators}
    ready = [i for i, preds in waiting.items() if not preds]
    heapq.heapify(ready)
    ordered: list[Operator] = []
    while ready:
        node = heapq.heappop(ready)
        ordered.append(by_id[node])
        for other, preds in waiting.items():
            if node in preds:
                preds.discard(node)
                if not preds:
                    heapq.heappush(ready, other)
    if len(ordered) != len(plan.operators):
        raise PlanError("the plan has a cycle")
    return ordered


def _python_depth(
    node: int, by_id: Mapping[int, Operator], depth: dict[int, int], path: tuple[int, ...]
) -> int:
    if node in depth:
        return depth[node]
    if node in path:
        raise PlanError(f"the plan has a cycle through node {node}")
    op = by_id[node]
    upstream = [_python_depth(p.id, by_id, depth, (*path, node)) for p in op.predecessors]
    depth[node] = max(upstream, default=0) + op.python
    return depth[node]


def _functions(name: str, count: int) -> tuple[str, ...]:
    """The names of the ``count`` Python functions a node runs; a name that does not split
    into ``count`` parts (a function name holding ", ") is kept whole."""
    if count == 0:
        return ()
    parts = tuple(name.split(FUSED_SEPARATOR))
    return parts if len(parts) == count else (name,)


def _int(node: Mapping[str, Any], key: str) -> int:
    value = node.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PlanError(f"plan node {node.get('id')!r}: {key!r} is {value!r}, not an integer")
    return value


def _operator(node: Mapping[str, Any]) -> Operator:
    node_id = _int(node, "id")
    annotation = node.get(ANNOTATION)
    if not isinstance(annotation, Mapping):
        raise PlanError(
            f"plan node {node_id} has no {ANNOTATION!r}: Flink's JSON alone does not say which "
            "nodes run Python (annotate it with flink_jobs.explain)"
        )
    python = annotation.get("python")
    if not isinstance(python, bool):
        raise PlanError(f"plan node {node_id}: {ANNOTATION}.python is {python!r}, not a boolean")
    count = _int(annotation, "python_functions") if python else 0
    name = str(node.get("contents", node.get("type", "")))
    inputs = tuple(
        Input(_int(p, "id"), str(p.get("ship_strategy", ""))) for p in node.get("predecessors", ())
    )
    return Operator(
        id=node_id,
        name=name,
        kind=str(node.get("pact", "")),
        parallelism=_int(node, "parallelism"),
        predecessors=inputs,
        operator_class=str(annotation.get("class", "")),
        python=python,
        python_functions=count,
        functions=_functions(name, count),
    )


def parse_plan(doc: Mapping[str, Any]) -> Plan:
    """The annotated execution plan as a ``Plan`` (raises ``PlanError`` on another document)."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, list):
        raise PlanError("not a Flink execution plan: no 'nodes' list")
    operators = tuple(_operator(n) for n in nodes)
    ids = {op.id for op in operators}
    if len(ids) != len(operators):
        raise PlanError("the plan has two nodes with the same id")
    for op in operators:
        missing = [p.id for p in op.predecessors if p.id not in ids]
        if missing:
            raise PlanError(f"plan node {op.id} reads from node {missing[0]}, which is not in it")
    return Plan(operators)


def plan_summary(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON data (``rtml plan --json``)."""
    return {
        "python_stages": plan.python_stages,
        "longest_python_path": plan.longest_python_path,
        "operators": [
            {
                "id": op.id,
                "name": op.name,
                "kind": op.kind,
                "python": op.python,
                "python_functions": op.python_functions,
                "functions": list(op.functions),
                "parallelism": op.parallelism,
                "operator_class": op.operator_class,
                "predecessors": [
                    {"id": p.id, "ship_strategy": p.ship_strategy} for p in op.predecessors
                ],
            }
            for op in plan.operators
        ],
    }


def _inputs(op: Operator) -> str:
    return ", ".join(f"{p.id} {p.ship_strategy.lower()}" for p in op.predecessors) or "-"


def format_plan(plan: Plan) -> list[str]:
    """One line per operator, upstream first (id, parallelism, Python functions, name,
    inputs), fused functions listed under their node, and the stage counts."""
    width = max((len(op.name) for op in plan.operators), default=4)
    lines = [f"{'id':>4} {'par':>3} {'py':>2}  {'operator':<{width}}  inputs (id ship-strategy)"]
    for op in upstream_first(plan):
        py = str(op.python_functions) if op.python else ""
        lines.append(f"{op.id:>4} {op.parallelism:>3} {py:>2}  {op.name:<{width}}  {_inputs(op)}")
        if op.fused:
            lines.append(f"{'':>13}fused: {' + '.join(op.functions)}")
    lines.append(
        f"Python stages: {plan.python_stages} (a record passes through at most "
        f"{plan.longest_python_path} of them, source to sink)"
    )
    return lines
