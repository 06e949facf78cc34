"""The `rtml` console script: the user's one entry point. Each command is a module of
``rtml.cli.verbs`` (its arguments and its run function); this builds the parser from them,
dispatches, and turns every rtml error into one line and an exit code."""

from __future__ import annotations

import argparse
import sys

from rtml.cli.console import fail
from rtml.cli.verbs import COMMANDS
from rtml.core.errors import RtmlError


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="rtml",
        description="Real-time ML on Apache Flink: per-key features, ONNX scoring, fairness and drift monitoring.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.NAME, help=command.HELP))
    return ap


def dispatch(a: argparse.Namespace) -> int:
    command = next(c for c in COMMANDS if c.NAME == a.cmd)
    return command.run(a) or 0


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        return dispatch(a)
    except RtmlError as e:
        fail(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        fail("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
