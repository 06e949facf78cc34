"""`rtml ui`: the Evidently UI over the report workspace, on 127.0.0.1."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import config_arg, load

NAME = "ui"
HELP = "serve the Evidently UI over the report workspace on 127.0.0.1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arg(p)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workspace", type=Path, default=None)


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.services import ui

    return ui(load(a), a.port, a.workspace)
