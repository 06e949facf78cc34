"""The model a scoring worker serves, and the control records that switch it.

``load_serving_model`` is the one gate every model passes before it scores anything, at job
start and at a hot-swap alike: the registry entry resolves, the ONNX file matches the hash
recorded at export, ONNX Runtime loads it, the job offers every input it needs, and it scores
a probe row. A model that fails any of these raises ``ModelError`` and never serves.

A control record (the control topic, written by ``rtml models activate`` and ``rtml models
shadow``) is one JSON object: ``{"action": "activate", "model": "<name>", "version": "<version>"}``.
``"shadow"`` makes the version a candidate that scores alongside the live model (the pair goes to
the shadow topic), ``"unshadow"`` (no version) stops it. It is decoded with ``json.loads`` only,
like every other record read from a stream.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from models.store.metadata import ModelMetadata
from models.store.registry import Registry
from rtml.core.errors import ModelError, RecordError
from udfs.scoring import OnnxScorer
from udfs.validation import json_object

ACTIVATE, SHADOW, UNSHADOW = "activate", "shadow", "unshadow"
ACTIONS = (ACTIVATE, SHADOW, UNSHADOW)


@dataclass(frozen=True)
class ServingModel:
    name: str
    version: str
    scorer: OnnxScorer
    metadata: ModelMetadata

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.metadata.input_names


def load_serving_model(
    registry: str | Path,
    name: str,
    version: str,
    available: Sequence[str],
    threads: int = 1,
) -> ServingModel:
    """Resolve, verify, load and probe ``name`` ``version``; ``available`` are the columns the
    job offers the model (raw inputs and features)."""
    reg = Registry(Path(registry))
    mv = reg.resolve(name, version)
    reg.verify(mv)
    scorer = OnnxScorer.from_metadata(mv.onnx_path, mv.metadata, threads)
    scorer.check_columns(available)
    try:
        probe = scorer.score([{}])  # every input missing: NaN numbers, empty strings
    except Exception as e:  # ONNX Runtime's own error types
        raise ModelError(
            f"model {name!r} version {mv.metadata.version} fails on a probe row: {str(e).splitlines()[0][:200]}",
            hint="the graph's input types differ from its metadata; re-export the model",
        ) from None
    if probe.shape != (1,):
        raise ModelError(
            f"model {name!r} version {mv.metadata.version} returns {probe.shape} for one row",
            hint="export a binary classifier with probabilities as its output",
        )
    return ServingModel(mv.metadata.name, mv.metadata.version, scorer, mv.metadata)


@dataclass(frozen=True)
class ModelSwitch:
    model: str
    version: str | None  # None for "unshadow"
    action: str = ACTIVATE

    def to_json(self) -> str:
        doc = {"action": self.action, "model": self.model}
        if self.version is not None:
            doc["version"] = self.version
        return json.dumps(doc)


def parse_model_switch(raw: str | bytes, model_name: str) -> ModelSwitch:
    """A control record -> ``ModelSwitch``; ``RecordError`` names the field and the fix."""
    doc, _ = json_object(raw, "version", "control record", "send one JSON object per switch")
    action = doc.get("action", ACTIVATE)
    if action not in ACTIONS:
        raise RecordError(
            "bad_control",
            f"control record: field 'action' is {str(action)[:40]!r} -> use one of {list(ACTIONS)}",
            field="action",
        )
    model = doc.get("model")
    if model != model_name:
        raise RecordError(
            "bad_control",
            f"control record: field 'model' is {str(model)[:40]!r}, this job serves {model_name!r} -> send the switch to the job that serves that model",
            field="model",
        )
    if action == UNSHADOW:
        return ModelSwitch(model, None, action)
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not version.isdigit():
        raise RecordError(
            "bad_control",
            f"control record: field 'version' is {str(version)[:40]!r} -> send a registered version number (`rtml models list`)",
            field="version",
        )
    return ModelSwitch(model, version, action)
