"""Per-row scoring cost of each model family, int8 quantization and a shadow candidate
(ONNX Runtime through the serving code, no JVM).

    .venv/bin/python benchmarks/model_families.py [--events 6000] [--rows 2000]

Trains every estimator on the same generated history, exports each (parity checked), and
times single-row calls through ``OnnxScorer`` (what the job's scoring operator does per
event), all families interleaved row by row so machine noise hits them alike. Prints median
and p99 microseconds per row, the ratio to hgb, file size and held-out ROC AUC; then the MLP
float vs int8 (size, latency, parity), and the cost of scoring with a shadow (live hgb +
candidate LightGBM per event) vs the live model alone.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from models.dataset import build_dataset
from models.export import export
from models.quantize import interleaved_latency_us
from models.store.registry import Registry
from models.train import frame_for_model, train
from rtml.cli.scenarios.cards import ScenarioOptions, generate
from rtml.core.config import ESTIMATORS, load_config
from udfs.scoring import OnnxScorer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=6000)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--config", default="deploy/configs/cards.toml")
    a = ap.parse_args()
    cfg = load_config(a.config)
    sc = generate(ScenarioOptions(seed=3, events=a.events, days=2, bias=0.2))
    df = build_dataset(cfg, sc.events, sc.labels)
    tmp = Path(tempfile.mkdtemp(prefix="rtml-bench-models-"))
    reg = Registry(tmp / "registry")
    scorers, sizes, aucs = {}, {}, {}
    for est in ESTIMATORS:
        res = train(cfg, df, tmp / est, progress=lambda m: None, estimator=est)
        mv = export(tmp / est, reg, 1e-3, progress=lambda m: None)
        scorers[est] = OnnxScorer.from_metadata(mv.onnx_path, mv.metadata)
        sizes[est], aucs[est] = mv.onnx_path.stat().st_size, res.metrics["roc_auc"]
        inputs = mv.metadata.inputs
    q = export(tmp / "mlp", reg, 1e-3, progress=lambda m: None, quantize_tolerance=0.2)
    scorers["mlp-int8"] = OnnxScorer.from_metadata(q.onnx_path, q.metadata)
    sizes["mlp-int8"] = q.onnx_path.stat().st_size
    aucs["mlp-int8"] = None

    hold = pd.read_parquet(tmp / "hgb" / "holdout.parquet")
    rows = frame_for_model(hold, inputs).to_dict("records")
    rows = (rows * (a.rows // len(rows) + 1))[: a.rows]
    interleaved_latency_us(scorers, rows[:200])  # warm up
    t = interleaved_latency_us(scorers, rows)
    base = np.median(t["hgb"])
    print(f"{len(rows)} single-row calls per model, interleaved; {len(inputs)} inputs")
    print(f"{'model':<10} {'p50 us':>7} {'p99 us':>7} {'p50/hgb':>8} {'bytes':>8} {'ROC AUC':>8}")
    for k, v in t.items():
        auc = "" if aucs[k] is None else f"{aucs[k]:.4f}"
        print(
            f"{k:<10} {np.median(v):7.0f} {np.quantile(v, 0.99):7.0f} {np.median(v) / base:8.2f} {sizes[k]:8d} {auc:>8}"
        )
    par = q.metadata.parity["quantized"]
    print(
        f"\nmlp int8 vs float: {par['float_bytes']} -> {par['int8_bytes']} bytes, "
        f"max |p_model - p_int8| {par['max_abs_diff']:.3g}, {par['decisions_flipped']} of {par['rows']} decisions flipped"
    )
    shadow = t["hgb"] + t["lightgbm"]
    print(
        f"shadow (live hgb + candidate lightgbm per event): p50 {np.median(shadow):.0f} us vs "
        f"{base:.0f} us live alone ({np.median(shadow) / base:.2f}x)"
    )


if __name__ == "__main__":
    main()
