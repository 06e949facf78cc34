"""What the registry records about each model version."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rtml.core.errors import ModelError


@dataclass(frozen=True)
class ModelInput:
    name: str
    type: str  # "float" | "string"


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: str
    created_at: str
    framework: str  # e.g. "sklearn HistGradientBoostingClassifier"
    inputs: tuple[ModelInput, ...]
    output: str  # name of the probabilities tensor; column 1 = positive class
    positive_label: int
    favourable_outcome: int  # the prediction that is good for the subject (0 = not flagged)
    threshold: float
    sensitive_attribute: str | None
    feature_set_fingerprint: str
    onnx_sha256: str
    training: dict[str, Any] = field(default_factory=dict)  # rows, fingerprint, metrics
    parity: dict[str, Any] = field(default_factory=dict)  # max_abs_diff, rows, tolerance
    reference_file: str = "reference.parquet"
    # the calibrated drift test (udfs.drift_calibration.DriftCalibration.to_dict), when the
    # training history gave enough clean windows; None: the monitor's verdict is drift_share
    drift_calibration: dict[str, Any] | None = None

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMetadata:
        d = dict(d)
        d["inputs"] = tuple(ModelInput(**i) for i in d["inputs"])
        return cls(**d)

    @classmethod
    def load(cls, path: Path) -> ModelMetadata:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ModelError(
                f"model metadata {path} is missing", hint="re-export the model with `rtml export`"
            ) from None
        except (ValueError, TypeError, KeyError) as e:
            raise ModelError(
                f"model metadata {path} is unreadable ({e})",
                hint="re-export the model with `rtml export`",
            ) from None
