"""Scoring operator: one ONNX Runtime session per worker, loaded once in ``open``."""

from __future__ import annotations

import time
from pathlib import Path

from pyflink.datastream import OutputTag, ProcessFunction, RuntimeContext

from models.registry import Registry
from rtml.config import JobConfig
from udfs.flink.metrics import counters, gauges, latency_gauges
from udfs.flink.records import to_json_nan_safe
from udfs.latency import RecentLatencies


class ScoreFunction(ProcessFunction):
    """Adds ``score``, ``flagged`` and the model version to every event.

    The model version is resolved when the job is built (``version``), so every subtask and
    every restart serves the same model; the ONNX file's hash is verified at load. The score
    record goes to the main output (for the monitors) and, as JSON, to ``scores_json`` (for
    the scores topic), so no extra Python operator stands between scoring and the sink.
    """

    def __init__(self, cfg: JobConfig, registry: str, version: str, scores_json: OutputTag) -> None:
        self.cfg = cfg
        self.registry = registry
        self.version = version
        self.scores_json = scores_json
        self.scorer = None

    def open(self, runtime_context: RuntimeContext):
        from udfs.scoring import OnnxScorer

        reg = Registry(Path(self.registry))
        mv = reg.resolve(self.cfg.model.name, self.version)
        reg.verify(mv)
        self.scorer = OnnxScorer.from_metadata(
            mv.onnx_path, mv.metadata, self.cfg.model.intra_op_threads
        )
        self.scorer.check_columns(self.cfg.model_inputs)
        self.inputs = [i.name for i in mv.metadata.inputs]
        self.threshold = self.cfg.model.threshold
        self.model = {"name": mv.metadata.name, "version": mv.metadata.version}
        s = self.cfg.schema
        self.passthrough = [s.event_id, s.event_time, *(e.key for e in s.entities)] + (
            [s.sensitive_attribute] if s.sensitive_attribute else []
        )
        (self.scored,) = counters(runtime_context, "scored")
        self.latency = RecentLatencies()
        latency_gauges(runtime_context, "score_latency", self.latency)
        version = int(mv.metadata.version) if str(mv.metadata.version).isdigit() else -1
        gauges(runtime_context, {"model_version": lambda: version})

    def process_element(self, value, ctx):
        t0 = time.perf_counter_ns()
        score = self.scorer.score_one(value)
        self.latency.record((time.perf_counter_ns() - t0) // 1000)
        self.scored.inc()
        out = {k: value[k] for k in self.passthrough}
        out["score"] = score
        out["flagged"] = int(score >= self.threshold)
        out["model"] = self.model["name"]
        out["model_version"] = self.model["version"]
        out["inputs"] = {k: value.get(k) for k in self.inputs}
        yield self.scores_json, to_json_nan_safe(out)
        yield out
