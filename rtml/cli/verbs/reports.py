"""`rtml reports`: drift and fairness verdicts per window."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import DEFAULT_CONFIG
from rtml.core import paths

NAME = "reports"
HELP = "drift and fairness verdicts per window (from the last demo run by default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--bootstrap", default=None)
    p.add_argument("--topic-prefix", default=None)
    p.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the Evidently reports as HTML, a fairness-over-time plot and an index to DIR",
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.review import collect, last_run, print_table
    from rtml.core.config import load_config

    last = last_run() or {}
    cfg = load_config(a.config or Path(last.get("config", DEFAULT_CONFIG)))
    bootstrap = a.bootstrap or last.get("bootstrap")
    if bootstrap:
        cfg = cfg.with_bootstrap(bootstrap)
    prefix = a.topic_prefix if a.topic_prefix is not None else last.get("topic_prefix", "")
    if prefix:
        cfg = cfg.with_topic_prefix(prefix)
    verdicts = collect(cfg)
    print_table(verdicts)
    print(f"\nEvidently snapshots: {paths.workspace_dir()} (serve them with `rtml ui`)")
    if a.export:
        from rtml.cli.commands.report_export import export

        export(verdicts, a.export)
    return 0
