"""`rtml plan`'s reading of Flink's execution plan (flink_jobs.plan): Python nodes, the Python
functions fused into each, stage counts. Fixtures are real plans, annotated by
flink_jobs.explain: the card job's scoring part as of e239db2 (no fused node) and a small graph
whose Python operators PyFlink's chaining optimizer fused into two nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flink_jobs.plan import (
    PlanError,
    format_plan,
    parse_plan,
    plan_summary,
    upstream_first,
)

PLANS = Path(__file__).resolve().parent.parent / "fixtures" / "plans"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((PLANS / f"{name}.json").read_text())


def node(
    id: int, name: str, *preds: int, python: bool = True, functions: int = 1, parallelism: int = 1
) -> dict[str, Any]:
    return {
        "id": id,
        "type": name,
        "pact": "Operator",
        "contents": name,
        "parallelism": parallelism,
        "predecessors": [{"id": p, "ship_strategy": "FORWARD", "side": "second"} for p in preds],
        "stream_node": {
            "class": "x.Python" if python else "x.Java",
            "python": python,
            "python_functions": functions if python else 0,
        },
    }


def test_card_scoring_plan_counts_every_python_node():
    plan = parse_plan(fixture("cards-scoring-e239db2"))
    python = {op.id: op.name for op in plan.operators if op.python}
    # parse, the timestamp assigner, two key selectors, two feature operators, scoring, and
    # the identity map PyFlink's get_side_output puts after each side output read (7)
    assert plan.python_stages == 14 == len(python)
    assert list(python.values()).count("Map") == 7
    assert list(python.values()).count("_stream_key_by_map_operator") == 2
    by_name = {op.name: op for op in plan.operators}
    assert not by_name["Timestamps/Watermarks"].python and not by_name["event time"].python
    assert not any(op.fused for op in plan.operators)
    score = by_name["score (ONNX Runtime)"]
    assert [(p.id, p.ship_strategy) for p in score.predecessors] == [
        (17, "FORWARD"),
        (20, "BROADCAST"),
    ]
    # source -> parse -> timestamps -> key -> features -> key -> features -> score -> map -> sink
    assert plan.longest_python_path == 8


def test_fused_nodes_list_their_functions_upstream_first():
    plan = parse_plan(fixture("fused-python-chain"))
    assert plan.python_stages == 2 and plan.longest_python_path == 2
    fused = {op.id: op for op in plan.operators if op.fused}
    assert fused[13].functions == ("m1", "f1", "p1", "_stream_key_by_map_operator")
    assert fused[14].functions == ("k1", "m2") and fused[14].python_functions == 2
    assert [op.id for op in upstream_first(plan)] == [1, 13, 14, 9]
    text = format_plan(plan)
    assert "fused: m1 + f1 + p1 + _stream_key_by_map_operator" in "\n".join(text)
    assert text[-1].startswith("Python stages: 2 ")


def test_summary_is_json_data():
    summary = plan_summary(parse_plan(fixture("fused-python-chain")))
    assert json.loads(json.dumps(summary)) == summary
    assert summary["python_stages"] == 2
    ops = {op["id"]: op for op in summary["operators"]}
    assert ops[13]["python"] and not ops[1]["python"] and ops[13]["parallelism"] == 2
    assert ops[14]["predecessors"] == [{"id": 13, "ship_strategy": "HASH"}]


def test_a_name_holding_the_separator_is_kept_whole():
    doc = {
        "nodes": [
            node(1, "src", python=False),
            node(2, "parse, validate", 1),  # one function whose name holds ", "
            node(3, "a, b, c", 2, functions=2),  # two fused, one of them named "b, c"
        ]
    }
    ops = parse_plan(doc).operators
    assert ops[1].functions == ("parse, validate",) and not ops[1].fused
    assert ops[2].functions == ("a, b, c",) and ops[2].fused and ops[2].python_functions == 2


def test_longest_path_takes_the_deepest_branch():
    doc = {
        "nodes": [
            node(1, "src", python=False),
            node(2, "a", 1),
            node(3, "b", 2),
            node(4, "side", 2),
            node(5, "java", 3, python=False),
            node(6, "c", 5),
            node(7, "sink", 6, 4, python=False),
        ]
    }
    plan = parse_plan(doc)
    assert plan.python_stages == 4 and plan.longest_python_path == 3


@pytest.mark.parametrize(
    "doc,message",
    [
        ({"plan": []}, "no 'nodes' list"),
        ({"nodes": [{"id": 1, "contents": "x", "parallelism": 1}]}, "has no 'stream_node'"),
        ({"nodes": [node(1, "a", 9)]}, "reads from node 9"),
        ({"nodes": [node(1, "a"), node(1, "b")]}, "same id"),
        ({"nodes": [node(1, "a", parallelism=True)]}, "'parallelism' is True"),
    ],
)
def test_other_documents_are_refused(doc, message):
    with pytest.raises(PlanError, match=message):
        parse_plan(doc)


def test_a_cycle_is_refused():
    plan = parse_plan({"nodes": [node(1, "a", 2), node(2, "b", 1)]})
    with pytest.raises(PlanError, match="cycle"):
        _ = plan.longest_python_path
    with pytest.raises(PlanError, match="cycle"):
        upstream_first(plan)
