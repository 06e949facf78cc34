"""ONNX Runtime scoring: one session per worker, loaded once, checked against the job.

The same ``OnnxScorer`` scores in the Flink job, in the export parity check and in the
benchmarks, so parity is measured on the code path that serves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.store.metadata import ModelInput, ModelMetadata
from rtml.core.errors import ModelError


def session_options(threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # an idle spinning session burns a core on shared CPUs
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


class OnnxScorer:
    def __init__(
        self,
        model: bytes | Path,
        inputs: Sequence[ModelInput],
        output: str = "probabilities",
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        try:
            src = model if isinstance(model, bytes) else str(model)
            self.session = ort.InferenceSession(
                src, sess_options=session_options(threads), providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(
                f"ONNX Runtime cannot load the model: {str(e).splitlines()[0][:200]}",
                hint="the file is corrupt or not an ONNX model; re-export it",
            ) from None
        self.inputs = tuple(inputs)
        declared = {i.name for i in self.session.get_inputs()}
        wanted = {i.name for i in self.inputs}
        if declared != wanted:
            raise ModelError(
                f"the ONNX graph's inputs differ from its metadata: only in graph {sorted(declared - wanted)}, only in metadata {sorted(wanted - declared)}",
                hint="re-export the model so graph and metadata agree",
            )
        outs = [o.name for o in self.session.get_outputs()]
        if output not in outs:
            raise ModelError(
                f"the ONNX model has no output {output!r} (it has {outs})",
                hint="export with zipmap disabled",
            )
        self.output = output

    @classmethod
    def from_metadata(cls, onnx_path: Path, meta: ModelMetadata, threads: int = 1) -> OnnxScorer:
        return cls(onnx_path, meta.inputs, meta.output, threads)

    def check_columns(self, available: Sequence[str], what: str = "the job") -> None:
        missing = [i.name for i in self.inputs if i.name not in set(available)]
        if missing:
            raise ModelError(
                f"the model needs inputs {what} does not produce: {missing}",
                hint="add the features to the job config or export a model trained on the job's features",
            )

    def feed(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        n = len(rows)
        out: dict[str, np.ndarray] = {}
        for i in self.inputs:
            name = i.name
            if i.type == "string":
                col = np.empty((n, 1), dtype=object)
                for k, r in enumerate(rows):
                    v = r.get(name)
                    col[k, 0] = "" if v is None else str(v)
            else:
                col = np.fromiter(
                    (np.nan if (v := r.get(name)) is None else v for r in rows),
                    dtype=np.float32,
                    count=n,
                ).reshape(n, 1)
            out[name] = col
        return out

    def score(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Probability of the positive class for each row."""
        if not rows:
            return np.empty(0, dtype=np.float64)
        probs = self.session.run([self.output], self.feed(rows))[0]
        return np.asarray(probs)[:, 1].astype(np.float64)

    def score_one(self, row: Mapping[str, Any]) -> float:
        return float(self.score([row])[0])
