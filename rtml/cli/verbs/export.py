"""`rtml export`: the trained model to ONNX, parity checked, registered."""

from __future__ import annotations

import argparse

from rtml.cli.verbs.common import config_arg, load

NAME = "export"
HELP = "export the trained model to ONNX, check parity, register it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arg(p)
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="max |p_original - p_onnx| allowed on held-out rows",
    )
    p.add_argument(
        "--no-current", action="store_true", help="register without making it the current version"
    )
    p.add_argument(
        "--quantize",
        action="store_true",
        help="register the int8-quantized graph (ONNX Runtime dynamic quantization; helps graphs "
        "with matrix products, e.g. --estimator mlp, not tree ensembles); size, latency and parity are measured",
    )
    p.add_argument(
        "--quantize-tolerance",
        type=float,
        default=0.1,
        help="with --quantize: max |p_original - p_int8| allowed on held-out rows",
    )


def run(a: argparse.Namespace) -> int:
    from rtml.cli.commands.data import export_model

    export_model(
        load(a), a.tolerance, not a.no_current, a.quantize_tolerance if a.quantize else None
    )
    return 0
