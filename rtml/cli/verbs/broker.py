"""`rtml broker`: the local Kafka broker (KRaft) on 127.0.0.1."""

from __future__ import annotations

import argparse

from rtml.cli.verbs.common import service_action

NAME = "broker"
HELP = "the local Kafka broker (KRaft) on 127.0.0.1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_action(p)
    p.add_argument("--port", type=int, default=9092)


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.services import broker

    broker(a.action, a.port)
    return 0
