"""Export a trained model to ONNX, prove parity, and publish it to the registry."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.estimators import register_onnx_converter
from models.store.metadata import ModelInput, ModelMetadata
from models.store.registry import CARD_FILE, METADATA_FILE, MODEL_FILE, ModelVersion, Registry
from models.train import SCORE_COLUMN, frame_for_model
from rtml.core.config import JobConfig
from rtml.core.errors import ModelError, ParityError
from udfs.scoring import OnnxScorer

DEFAULT_TOLERANCE = 1e-4
PROBA_OUTPUT = "probabilities"


def to_onnx(pipe: Any, inputs: tuple[ModelInput, ...]) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = [
        (i.name, StringTensorType([None, 1]) if i.type == "string" else FloatTensorType([None, 1]))
        for i in inputs
    ]
    clf = pipe.steps[-1][1] if hasattr(pipe, "steps") else pipe
    register_onnx_converter(clf)
    try:
        onx = convert_sklearn(
            pipe,
            initial_types=types,
            options={id(clf): {"zipmap": False}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
    except Exception as e:  # skl2onnx raises many types for unsupported models
        raise ModelError(
            f"cannot convert {type(clf).__name__} to ONNX: {str(e).splitlines()[0][:200]}",
            hint="use a scikit-learn estimator skl2onnx supports, LightGBM or XGBoost",
        ) from None
    return onx.SerializeToString()


PARITY_BATCH = 2000  # rows scored per ONNX Runtime call in the parity check


def parity(
    pipe: Any,
    onnx_bytes: bytes,
    rows: pd.DataFrame,
    inputs: tuple[ModelInput, ...],
    tolerance: float,
    rows_done: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Max absolute difference of the positive-class probability, original vs ONNX;
    ``rows_done(done, total)`` hears how many rows ONNX Runtime has scored so far."""
    x = frame_for_model(rows, inputs)
    expected = pipe.predict_proba(x)[:, 1]
    scorer = OnnxScorer(onnx_bytes, inputs, PROBA_OUTPUT)
    records = x.to_dict("records")
    parts = []
    for i in range(0, len(records), PARITY_BATCH):
        parts.append(scorer.score(records[i : i + PARITY_BATCH]))
        if rows_done is not None:
            rows_done(min(i + PARITY_BATCH, len(records)), len(records))
    got = np.concatenate(parts) if parts else np.zeros(0)
    diff = np.abs(expected - got)
    return {
        "rows": int(len(rows)),
        "max_abs_diff": float(diff.max()) if len(diff) else 0.0,
        "mean_abs_diff": float(diff.mean()) if len(diff) else 0.0,
        "tolerance": tolerance,
        "decisions_flipped": int(np.sum((expected >= 0.5) != (got >= 0.5))),
    }


def model_card(meta: ModelMetadata) -> str:
    m = meta.training.get("metrics", {})
    lines = [
        f"# Model card: {meta.name} v{meta.version}",
        "",
        f"- Created: {meta.created_at}",
        f"- Model: {meta.framework}, exported to ONNX (sha256 `{meta.onnx_sha256[:16]}...`)",
        f"- Output: `{meta.output}`[:, 1] = probability of label {meta.positive_label}; flagged when >= {meta.threshold}",
        f"- Favourable outcome for the subject: prediction {meta.favourable_outcome} (not flagged)",
        f"- Sensitive attribute monitored: `{meta.sensitive_attribute}`",
        f"- Inputs: {len(meta.inputs)} ({sum(i.type == 'string' for i in meta.inputs)} categorical); feature set `{meta.feature_set_fingerprint}`",
        f"- Training data fingerprint: `{meta.training.get('data_fingerprint')}`, {m.get('rows_train')} rows; held out {m.get('rows_holdout')} rows",
        f"- Split: {_split_line(m.get('split'))}",
        f"- Training data source: {_source_line(meta.training.get('source', {}))}",
        f"- Bias mitigation at training: {_mitigation_line(meta.training.get('mitigation', {}))}",
        "",
        "## Held-out metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for k in ("roc_auc", "average_precision", "precision_at_threshold", "recall_at_threshold"):
        v = m.get(k)
        lines.append(f"| {k} | {'n/a' if v is None else f'{v:.4f}'} |")
    if m.get("flag_rate_by_group"):
        lines += ["", "## Flag rate by group (held out)", "", "| group | flag rate |", "|---|---|"]
        lines += [f"| {g} | {r:.4f} |" for g, r in m["flag_rate_by_group"].items()]
        di = m.get("disparate_impact_holdout")
        lines += [
            "",
            f"Disparate impact (min/max favourable-decision rate over groups): {'n/a' if di is None else f'{di:.4f}'}",
        ]
    p = meta.parity
    lines += [
        "",
        "## ONNX parity",
        "",
        f"Max absolute probability difference {p.get('max_abs_diff', float('nan')):.2e} over {p.get('rows')} held-out rows (tolerance {p.get('tolerance')}); {p.get('decisions_flipped')} decisions flipped.",
        "",
        *_quantized_lines(p.get("quantized")),
        "## Limits",
        "",
        _limits_line(meta.training.get("source", {})),
    ]
    return "\n".join(lines) + "\n"


def _limits_line(src: dict[str, Any]) -> str:
    if src.get("kind") in ("history", "feedback-log"):
        return "Judged on held-out rows of its own data only; watch its live fairness, drift and quality."
    return (
        "Trained on synthetic card transactions from the seeded generator; not for real decisions."
    )


def _quantized_lines(q: dict[str, Any] | None) -> list[str]:
    if not q:
        return []
    return [
        "## Int8 quantization",
        "",
        f"The registered graph is int8-quantized (ONNX Runtime dynamic quantization): {q['float_bytes']} -> {q['int8_bytes']} bytes, "
        f"median {q['float_us_per_row']:.0f} -> {q['int8_us_per_row']:.0f} us per row (side by side on {q['rows']} held-out rows). "
        f"Parity with the original model: max absolute probability difference {q['max_abs_diff']:.2e} (tolerance {q['tolerance']}); "
        f"{q['decisions_flipped']} decisions flipped. The figures above are the float graph's.",
        "",
    ]


def _source_line(src: dict[str, Any]) -> str:
    if src.get("kind") == "feedback-log":
        st = src.get("stats", {})
        versions = ", ".join(f"v{v}: {n}" for v, n in st.get("model_versions", {}).items())
        return (
            f"the live job's scored features and the labels known at {src.get('as_of_iso')} "
            f"(topics `{src.get('scores_topic')}`, `{src.get('labels_topic')}`); rows scored by {versions}"
        )
    if src.get("kind") == "history":
        return f"the events of `{src.get('history')}` (labels: {src.get('labels')}) replayed through the job's feature code"
    return (
        "generated card transactions (the seeded scenario) replayed through the job's feature code"
    )


def _split_line(split: dict[str, Any] | None) -> str:
    if not split:
        return "the latest rows by event time held out"
    start = split.get("holdout_from_ms")
    when = (
        "n/a"
        if start is None
        else datetime.fromtimestamp(start / 1000, UTC).isoformat(timespec="seconds")
    )
    share = split.get("train_share", 0.8)
    return f"by event time: the earliest {share:.0%} of the rows train, the rest (from {when}) are held out"


def _mitigation_line(mit: dict[str, Any]) -> str:
    table = mit.get("reweighing")
    if not table:
        return "none"
    cells = "; ".join(
        f"{g}: " + ", ".join(f"y={y} x{w:.3f}" for y, w in sorted(ws.items()))
        for g, ws in table.items()
    )
    return f"reweighing by group and label (weights {cells})"


def _quantized(
    pipe: Any,
    onnx_bytes: bytes,
    hold: pd.DataFrame,
    inputs: tuple[ModelInput, ...],
    tolerance: float,
    progress,
) -> tuple[bytes, dict[str, Any]]:
    from models.quantize import quantize, side_by_side_latency

    q_bytes = quantize(onnx_bytes)
    par = parity(pipe, q_bytes, hold, inputs, tolerance)
    rows = frame_for_model(hold, inputs).head(1000).to_dict("records")
    par.update(
        side_by_side_latency(
            OnnxScorer(onnx_bytes, inputs, PROBA_OUTPUT),
            OnnxScorer(q_bytes, inputs, PROBA_OUTPUT),
            rows,
        )
    )
    par.update(float_bytes=len(onnx_bytes), int8_bytes=len(q_bytes))
    progress(
        f"int8 quantized: {len(onnx_bytes)} -> {len(q_bytes)} bytes, {par['float_us_per_row']:.0f} -> {par['int8_us_per_row']:.0f} us/row; "
        f"parity max |p_model - p_int8| = {par['max_abs_diff']:.2e} (tolerance {tolerance}), {par['decisions_flipped']} decisions flipped"
    )
    if not par["max_abs_diff"] <= tolerance:
        raise ParityError(
            f"quantized parity failed: max probability difference {par['max_abs_diff']:.3g} > tolerance {tolerance} on {par['rows']} rows",
            hint="export without --quantize, or raise --quantize-tolerance knowingly",
        )
    return q_bytes, par


def _drift_calibration(
    cfg: JobConfig, artifacts: Path, info: dict[str, Any], inputs: tuple[ModelInput, ...], progress
) -> dict[str, Any] | None:
    """The calibrated drift test as metadata (``models.drift_history``), or None."""
    from models.drift_history import fit_calibration

    reference = pd.read_parquet(artifacts / "reference.parquet")
    cal = fit_calibration(cfg, artifacts, reference, inputs, SCORE_COLUMN)
    if cal is None:
        why = info.get("drift_calibration_rows", {}).get(
            "skipped", "no row band of the history had enough clean windows"
        )
        progress(f"drift verdicts by [monitoring] drift_share, uncalibrated: {why}")
        return None
    bands = ", ".join(f"{b.rows} rows: {b.threshold:.2f}" for b in cal.bands)
    progress(
        f"drift test calibrated on {cal.history['windows']} clean windows at "
        f"{cal.false_alarm_rate:.1%} false alarms per window (thresholds by rows compared: {bands})"
    )
    return cal.to_dict()


def export(
    artifacts: Path,
    registry: Registry,
    tolerance: float = DEFAULT_TOLERANCE,
    make_current: bool = True,
    progress=print,
    quantize_tolerance: float | None = None,
    rows_done: Callable[[int, int], None] | None = None,
    cfg: JobConfig | None = None,
) -> ModelVersion:
    """Convert, check parity, publish. With ``quantize_tolerance`` the registered graph is
    the int8-quantized one, held to that (looser) parity with the original model. With the
    job's ``cfg``, the drift test is calibrated on the training's clean history, when it
    kept one (``models.drift_history``), and stored in the metadata."""
    import joblib

    info_path = artifacts / "training.json"
    if not info_path.is_file():
        raise ModelError(f"no trained model in {artifacts}", hint="run `rtml train` first")
    info = json.loads(info_path.read_text())
    pipe = joblib.load(artifacts / "model.joblib")  # our own local artifact, never from a stream
    hold = pd.read_parquet(artifacts / "holdout.parquet")
    inputs = tuple(ModelInput(n, t) for n, t in info["inputs"])
    progress(f"converting {info['framework']} with {len(inputs)} inputs to ONNX")
    onnx_bytes = to_onnx(pipe, inputs)
    par = parity(pipe, onnx_bytes, hold, inputs, tolerance, rows_done)
    progress(
        f"parity on {par['rows']} held-out rows: max |p_model - p_onnx| = {par['max_abs_diff']:.2e} (tolerance {tolerance})"
    )
    if not par["max_abs_diff"] <= tolerance:
        raise ParityError(
            f"ONNX parity failed: max probability difference {par['max_abs_diff']:.3g} > tolerance {tolerance} on {par['rows']} rows",
            hint="check for float64-sensitive preprocessing (e.g. a scaler before trees) or raise --tolerance knowingly",
        )
    if quantize_tolerance is not None:
        onnx_bytes, par["quantized"] = _quantized(
            pipe, onnx_bytes, hold, inputs, quantize_tolerance, progress
        )
    import hashlib

    calibration = None
    if cfg is not None:
        calibration = _drift_calibration(cfg, artifacts, info, inputs, progress)
    name = info["model_name"]
    version = registry.next_version(name)
    meta = ModelMetadata(
        name=name,
        version=version,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        framework=info["framework"],
        inputs=inputs,
        output=PROBA_OUTPUT,
        positive_label=int(info["positive_label"]),
        favourable_outcome=int(info.get("favourable_outcome", 0)),
        threshold=float(info["threshold"]),
        sensitive_attribute=info.get("sensitive_attribute"),
        feature_set_fingerprint=info["feature_set_fingerprint"],
        onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        training={
            "data_fingerprint": info["data_fingerprint"],
            "metrics": info["metrics"],
            "mitigation": info.get("mitigation", {"reweighing": None}),
            "source": info.get("source", {"kind": "events"}),
        },
        parity=par,
        drift_calibration=calibration,
    )
    ref = io.BytesIO((artifacts / "reference.parquet").read_bytes())
    registry.publish(
        name,
        version,
        {
            MODEL_FILE: onnx_bytes,
            METADATA_FILE: meta.to_json().encode(),
            CARD_FILE: model_card(meta).encode(),
            meta.reference_file: ref.getvalue(),
        },
        make_current=make_current,
    )
    return replace(registry.resolve(name, version))
