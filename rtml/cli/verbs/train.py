"""`rtml train`: a classifier on offline features (the job's own feature code)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtml.cli.verbs.common import config_arg, load, scenario_args
from rtml.core.config import ESTIMATORS
from rtml.core.errors import ConfigError

NAME = "train"
HELP = "train a classifier on offline features (the job's own feature code)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arg(p)
    scenario_args(p, events=40_000, days=6.0, seed=1)
    p.add_argument(
        "--history",
        type=Path,
        default=None,
        help="JSON-lines or CSV events to train on instead of a generated history (any config)",
    )
    p.add_argument("--labels", type=Path, default=None, help="JSON-lines labels for --history")
    p.add_argument(
        "--label-field",
        default=None,
        help="with --history: the events' label field (taken out before the features are computed)",
    )
    p.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default="hgb",
        help="the classifier: scikit-learn HistGradientBoosting, LightGBM, XGBoost or an MLP (mlp: quantizable)",
    )
    p.add_argument(
        "--from-log",
        action="store_true",
        help="the feedback loop: train on the live job's scores topic (the logged inputs) joined "
        "with the labels topic, point-in-time correct",
    )
    p.add_argument(
        "--as-of",
        default=None,
        help="with --from-log: only labels known by then (epoch ms or ISO-8601; default: now)",
    )
    p.add_argument(
        "--reweigh",
        action="store_true",
        help="bias mitigation: weight rows by sensitive group and label (Kamiran-Calders reweighing)",
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.data import scenario_options, train_from_log, train_model

    cfg = load(a)
    if a.from_log:
        if a.history is not None:
            raise ConfigError(
                "--from-log and --history are two different sources", hint="pass one of them"
            )
        train_from_log(cfg, a.as_of, a.estimator, a.reweigh)
        return 0
    if a.as_of is not None:
        raise ConfigError("--as-of goes with --from-log", hint="add --from-log or drop --as-of")
    if a.history is None and (a.labels is not None or a.label_field is not None):
        raise ConfigError("--labels and --label-field go with --history", hint="add --history FILE")
    train_model(
        cfg,
        scenario_options(a.seed, a.events, a.days, None, 0.0, a.bias, 0.0),
        a.history,
        a.labels,
        a.estimator,
        a.reweigh,
        label_field=a.label_field,
    )
    return 0
