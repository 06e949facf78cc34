"""Scoring operator: one ONNX Runtime session per worker, switched without a restart.

The events are one input; the control topic, broadcast to every subtask, is the other. The
version a control record activates is kept in broadcast state (checkpointed, so a restarted
or rescaled job serves what it served before the failure); the loaded session itself is a
cache of that state, rebuilt in ``open`` and on the first event after a restore.
"""

from __future__ import annotations

import json
import logging
import time

from pyflink.common import Types
from pyflink.datastream import BroadcastProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.state import MapStateDescriptor

from rtml.config import JobConfig
from rtml.errors import ModelError, RecordError
from udfs.flink.metrics import counters, gauges, latency_gauges
from udfs.flink.records import to_json_nan_safe
from udfs.latency import RecentLatencies

# model name -> the version the last accepted control record activated
ACTIVE_MODEL = MapStateDescriptor("active-model", Types.STRING(), Types.STRING())

log = logging.getLogger("rtml.scoring")


class ScoreFunction(BroadcastProcessFunction):
    """Adds ``score``, ``flagged`` and the model version to every event.

    The job starts on ``version`` (resolved when the job is built). A control record switches
    every subtask to another registered version between two events: the candidate is fully
    loaded and checked (hash, schema, a probe row) before it replaces the serving model, so
    each event is scored by exactly one model, and a model that fails a check is rejected
    with its reason (to ``model_events``) while the current one keeps serving.

    The score record goes to the main output (for the monitors) and, as JSON, to
    ``scores_json`` (for the scores topic), so no extra Python operator stands between
    scoring and the sink.
    """

    def __init__(
        self,
        cfg: JobConfig,
        registry: str,
        version: str,
        scores_json: OutputTag,
        model_events: OutputTag,
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.version = version
        self.scores_json = scores_json
        self.model_events = model_events
        self.serving = None

    def _load(self, version: str):
        from udfs.serving import load_serving_model

        return load_serving_model(
            self.registry,
            self.cfg.model.name,
            version,
            self.cfg.model_inputs,
            self.cfg.model.intra_op_threads,
        )

    def open(self, runtime_context: RuntimeContext):
        self.serving = self._load(self.version)
        self.restored = False  # the broadcast state is read on the first event
        self.subtask = runtime_context.get_index_of_this_subtask()
        self.threshold = self.cfg.model.threshold
        s = self.cfg.schema
        self.passthrough = [s.event_id, s.event_time, *(e.key for e in s.entities)] + (
            [s.sensitive_attribute] if s.sensitive_attribute else []
        )
        self.scored, self.activated, self.rejected = counters(
            runtime_context, "scored", "models_activated", "models_rejected"
        )
        self.latency = RecentLatencies()
        latency_gauges(runtime_context, "score_latency", self.latency)
        gauges(runtime_context, {"model_version": lambda: int(self.serving.version)})

    def _restore(self, ctx) -> None:
        """After a restart, serve the version the broadcast state says was active."""
        self.restored = True
        active = ctx.get_broadcast_state(ACTIVE_MODEL).get(self.cfg.model.name)
        if active is None or active == self.serving.version:
            return
        try:
            self.serving = self._load(active)
        except ModelError as e:  # accepted before the failure, unreadable now
            log.error(
                "rtml: cannot restore model version %s (%s); serving %s",
                active,
                e,
                self.serving.version,
            )

    def process_element(self, value, ctx):
        if not self.restored:
            self._restore(ctx)
        m = self.serving
        t0 = time.perf_counter_ns()
        score = m.scorer.score_one(value)
        self.latency.record((time.perf_counter_ns() - t0) // 1000)
        self.scored.inc()
        out = {k: value[k] for k in self.passthrough}
        out["score"] = score
        out["flagged"] = int(score >= self.threshold)
        out["model"] = m.name
        out["model_version"] = m.version
        out["inputs"] = {k: value.get(k) for k in m.inputs}
        yield self.scores_json, to_json_nan_safe(out)
        yield out

    def process_broadcast_element(self, value, ctx):
        from udfs.serving import parse_model_switch

        if not self.restored:
            self._restore(ctx)
        previous = self.serving.version
        event = {"model": self.cfg.model.name, "serving_version": previous}
        event["subtask"] = self.subtask
        try:
            switch = parse_model_switch(value, self.cfg.model.name)
            event["version"] = switch.version
            candidate = self._load(switch.version)
        except (RecordError, ModelError) as e:
            self.rejected.inc()
            log.error("rtml: model switch rejected: %s", e)
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            event.update(kind="model_rejected", reason=str(e), control=text[:512])
            yield self.model_events, json.dumps(event)
            return
        ctx.get_broadcast_state(ACTIVE_MODEL).put(self.cfg.model.name, candidate.version)
        self.serving = candidate
        self.activated.inc()
        event.update(kind="model_activated", serving_version=candidate.version)
        event["previous_version"] = previous
        yield self.model_events, json.dumps(event)
