"""`rtml plan`: the job's operator graph as Flink plans it, without running it."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import DEFAULT_CONFIG
from rtml.core.config import FEATURE_ORDERS, GRAPH_PARTS

NAME = "plan"
HELP = (
    "print the job's operator graph as Flink plans it (fused Python operators, Python "
    "stages), without running it"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument(
        "--part",
        choices=GRAPH_PARTS,
        default="scoring",
        help="the job graph to plan: scoring, monitoring, both in one job (all), or a "
        "`rtml bench` baseline (floor, naive)",
    )
    p.add_argument(
        "--feature-order",
        choices=FEATURE_ORDERS,
        default=None,
        help="plan with this feature order instead of the config's [job] feature_order",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.plan import plan

    plan(a.config, a.part, a.json, a.feature_order)
    return 0
