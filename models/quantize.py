"""Optional int8 quantization of an exported graph (ONNX Runtime dynamic quantization).

Dynamic quantization stores the weights of matrix products (MatMul, Gemm) as int8 and
quantizes activations on the fly. It only applies to graphs that have such products: an MLP
does, tree ensembles (TreeEnsembleClassifier, the graph of hgb, LightGBM and XGBoost) do
not, and ONNX Runtime has no integer kernel for them. Asked to quantize a graph it cannot
change, ``quantize`` refuses rather than register an identical copy.

What it buys is measured at export, side by side with the float graph on the held-out
rows: file size, per-row latency through the serving code, and the parity the quantized
graph keeps with the original model.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rtml.core.errors import ModelError
from udfs.scoring import OnnxScorer

QUANTIZED_OPS = ("MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "ConvInteger")


def _ops(onnx_bytes: bytes) -> Counter:
    import onnx

    return Counter(n.op_type for n in onnx.load_from_string(onnx_bytes).graph.node)


def quantize(onnx_bytes: bytes) -> bytes:
    """The graph with int8 weights for its matrix products; ``ModelError`` when it has none."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="rtml-quantize-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(onnx_bytes)
        logging.disable(logging.WARNING)  # its advice to pre-process targets image models
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        out = dst.read_bytes()
    if not any(_ops(out)[op] for op in QUANTIZED_OPS):
        ops = ", ".join(sorted(_ops(onnx_bytes)))
        raise ModelError(
            f"nothing to quantize: ONNX Runtime has int8 kernels for none of this graph's operators ({ops})",
            hint="export without --quantize (tree ensembles run in float), or train an mlp (`rtml train --estimator mlp`)",
        )
    return out


def interleaved_latency_us(
    scorers: Mapping[str, OnnxScorer], rows: Sequence[Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """Microseconds of each single-row call per scorer, the scorers interleaved row by row
    so that machine noise hits them alike."""
    times: dict[str, list[float]] = {k: [] for k in scorers}
    for r in rows:
        for k, scorer in scorers.items():
            t0 = time.perf_counter_ns()
            scorer.score_one(r)
            times[k].append((time.perf_counter_ns() - t0) / 1000)
    return {k: np.array(v) for k, v in times.items()}


def side_by_side_latency(
    float_scorer: OnnxScorer, int8_scorer: OnnxScorer, rows: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """Median microseconds per single-row call of the two graphs, measured interleaved."""
    t = interleaved_latency_us({"float": float_scorer, "int8": int8_scorer}, rows)
    f, q = float(np.median(t["float"])), float(np.median(t["int8"]))
    return {"float_us_per_row": f, "int8_us_per_row": q, "int8_over_float": q / f if f else None}
