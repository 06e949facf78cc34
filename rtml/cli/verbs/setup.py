"""`rtml setup`: check Java and Maven, fetch the jars, build the job jar."""

from __future__ import annotations

import argparse

NAME = "setup"
HELP = "check Java/Maven and fetch the Kafka and Flink connector jars (idempotent)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.services import setup

    setup()
    return 0
