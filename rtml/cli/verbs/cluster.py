"""`rtml cluster`: the local Flink standalone session cluster."""

from __future__ import annotations

import argparse

from rtml.cli.verbs.common import service_action

NAME = "cluster"
HELP = "the local Flink standalone session cluster"


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_action(p)
    p.add_argument("--rest-port", type=int, default=8081)
    p.add_argument("--taskmanagers", type=int, default=1)
    p.add_argument("--slots", type=int, default=2)
    p.add_argument(
        "--prometheus-ports",
        default=None,
        metavar="RANGE",
        help="expose metrics to Prometheus on these ports, e.g. 9249-9259 (Flink's reporter binds to all interfaces)",
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.services import cluster

    cluster(a.action, a.rest_port, a.taskmanagers, a.slots, a.prometheus_ports)
    return 0
