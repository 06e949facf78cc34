"""Train a gradient-boosted classifier on offline features; save it for export.

Artifacts (``<artifacts>/<model name>/``): ``model.joblib`` (the fitted sklearn pipeline, only
ever loaded from this local folder), ``holdout.parquet`` (rows for the parity check and
metrics), ``reference.parquet`` (the drift reference sample, with the model's score) and
``training.json`` (inputs, metrics, data fingerprint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.dataset import LABEL_COLUMN, fingerprint
from models.drift_history import CALIBRATION_FILE, calibration_rows
from models.estimators import SCALED, make_classifier
from models.reweighing import reweighing_weights
from models.store.metadata import ModelInput
from rtml.core.config import JobConfig
from rtml.core.errors import ModelError
from udfs.fairness import FairnessWindow

SCORE_COLUMN = "score"
REFERENCE_ROWS = 2000


def model_inputs(cfg: JobConfig) -> tuple[ModelInput, ...]:
    out = []
    for name in cfg.model.raw_inputs:
        t = cfg.schema.field(name).type
        out.append(ModelInput(name, "string" if t in ("string", "category") else "float"))
    out += [ModelInput(n, "float") for n in cfg.features.names]
    return tuple(out)


def frame_for_model(df: pd.DataFrame, inputs: tuple[ModelInput, ...]) -> pd.DataFrame:
    """The exact columns and dtypes the pipeline (and the ONNX model) take."""
    out = pd.DataFrame(index=df.index)
    for i in inputs:
        out[i.name] = (
            df[i.name].astype(str) if i.type == "string" else df[i.name].astype(np.float32)
        )
    return out


def make_pipeline(inputs: tuple[ModelInput, ...], seed: int, estimator: str = "hgb"):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    cats = [i.name for i in inputs if i.type == "string"]
    nums = [i.name for i in inputs if i.type == "float"]
    num: Any = "passthrough"  # trees split on raw values and route missing ones themselves
    if estimator in SCALED:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import StandardScaler

        num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats),
            ("num", num, nums),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline([("pre", pre), ("clf", make_classifier(estimator, seed))])


def _framework(clf) -> str:
    """e.g. "sklearn HistGradientBoostingClassifier", "lightgbm LGBMClassifier"."""
    return f"{type(clf).__module__.split('.')[0]} {type(clf).__name__}"


def _disparate_impact(groups: list, flagged: np.ndarray, cfg: JobConfig) -> float | None:
    """Min over max favourable-decision rate across groups (the live monitor's formula)."""
    w = FairnessWindow.of_decisions(
        groups, (int(f) == cfg.model.favourable_outcome for f in flagged)
    )
    return w.report(cfg.monitoring.min_group_count)["disparate_impact_ratio"]


@dataclass(frozen=True)
class TrainResult:
    artifacts: Path
    metrics: dict[str, Any]


TRAIN_SHARE = 0.8  # the earliest rows by event time train; the latest are held out


def train(
    cfg: JobConfig,
    df: pd.DataFrame,
    out_dir: Path,
    seed: int = 0,
    progress=print,
    estimator: str = "hgb",
    reweigh: bool = False,
    source: dict[str, Any] | None = None,
) -> TrainResult:
    """Fit on the earliest 80% of ``df`` by event time, evaluate on the rest. ``reweigh``
    weights rows by group and label (``models.reweighing``); ``source`` says where the rows
    came from (recorded in training.json and the model card)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    inputs = model_inputs(cfg)
    df = df.sort_values("__event_time__", kind="stable").reset_index(drop=True)
    cut = int(len(df) * TRAIN_SHARE)
    train_df, hold_df = df.iloc[:cut], df.iloc[cut:]
    y_train = train_df[LABEL_COLUMN].to_numpy()
    if len(np.unique(y_train)) < 2:
        raise ModelError(
            "the training rows hold only one class",
            hint="generate or supply more history with both outcomes",
        )
    pipe = make_pipeline(inputs, seed, estimator)
    fit_params: dict[str, Any] = {}
    mitigation: dict[str, Any] = {"reweighing": None}
    if reweigh:
        if "__group__" not in train_df:
            raise ModelError(
                "reweighing needs each row's group, and the config names no sensitive attribute",
                hint="set [schema] sensitive_attribute, or train without --reweigh",
            )
        weights, table = reweighing_weights(train_df["__group__"].tolist(), y_train.tolist())
        fit_params["clf__sample_weight"] = weights
        mitigation["reweighing"] = table
        progress(
            f"reweighing by group and label: weights {weights.min():.3f} to {weights.max():.3f}"
        )
    progress(
        f"fitting on {len(train_df)} rows ({int(y_train.sum())} positive), {len(inputs)} inputs"
    )
    pipe.fit(frame_for_model(train_df, inputs), y_train, **fit_params)
    p_hold = pipe.predict_proba(frame_for_model(hold_df, inputs))[:, 1]
    y_hold = hold_df[LABEL_COLUMN].to_numpy()
    flagged = p_hold >= cfg.model.threshold
    metrics: dict[str, Any] = {
        "rows_train": int(len(train_df)),
        "rows_holdout": int(len(hold_df)),
        # a split by event time: the held-out rows are the latest, as live traffic will be
        "split": {
            "kind": "event-time",
            "train_share": TRAIN_SHARE,
            "holdout_from_ms": int(hold_df["__event_time__"].iloc[0]) if len(hold_df) else None,
        },
        "positive_rate_train": float(y_train.mean()),
        "roc_auc": float(roc_auc_score(y_hold, p_hold)) if len(np.unique(y_hold)) > 1 else None,
        "average_precision": float(average_precision_score(y_hold, p_hold))
        if len(np.unique(y_hold)) > 1
        else None,
        "precision_at_threshold": float(y_hold[flagged].mean()) if flagged.any() else None,
        "recall_at_threshold": float(flagged[y_hold == 1].mean()) if (y_hold == 1).any() else None,
    }
    if "__group__" in hold_df:
        metrics["flag_rate_by_group"] = {
            str(g): float(flagged[(hold_df["__group__"] == g).to_numpy()].mean())
            for g in sorted(hold_df["__group__"].unique())
        }
        metrics["disparate_impact_holdout"] = _disparate_impact(
            hold_df["__group__"].tolist(), flagged, cfg
        )

    import joblib

    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipe, out_dir / "model.joblib")
    hold_df.to_parquet(out_dir / "holdout.parquet", index=False)
    ref = hold_df.sample(n=min(REFERENCE_ROWS, len(hold_df)), random_state=seed).copy()
    ref[SCORE_COLUMN] = pipe.predict_proba(frame_for_model(ref, inputs))[:, 1]
    cols = [i.name for i in inputs] + [SCORE_COLUMN] + (["__group__"] if "__group__" in ref else [])
    ref[cols].to_parquet(out_dir / "reference.parquet", index=False)
    calibration, calibration_summary = calibration_rows(
        cfg,
        train_df,
        metrics["split"]["holdout_from_ms"],
        lambda: make_pipeline(inputs, seed, estimator),
        lambda rows: frame_for_model(rows, inputs),
        inputs,
        SCORE_COLUMN,
        fit_params,
    )
    (out_dir / CALIBRATION_FILE).unlink(missing_ok=True)  # an earlier training's
    if calibration is not None:
        calibration.to_parquet(out_dir / CALIBRATION_FILE, index=False)
        progress(
            f"kept {len(calibration)} training rows with out-of-fold scores for the drift "
            f"calibration ({calibration_summary['clean_windows']} clean windows)"
        )
    else:
        progress(f"no drift calibration: {calibration_summary['skipped']}")
    info = {
        "model_name": cfg.model.name,
        "framework": _framework(pipe.named_steps["clf"]),
        "inputs": [[i.name, i.type] for i in inputs],
        "feature_set_fingerprint": cfg.features.fingerprint(),
        "data_fingerprint": fingerprint(df),
        "threshold": cfg.model.threshold,
        "positive_label": cfg.labels.positive,
        "favourable_outcome": cfg.model.favourable_outcome,
        "sensitive_attribute": cfg.schema.sensitive_attribute,
        "metrics": metrics,
        "mitigation": mitigation,
        "drift_calibration_rows": calibration_summary,
        "source": source or {"kind": "events"},
    }
    (out_dir / "training.json").write_text(json.dumps(info, indent=2))
    return TrainResult(out_dir, metrics)
