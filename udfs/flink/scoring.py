"""Scoring: one ONNX Runtime session per worker, switched without a restart.

The events are one input; the control topic, broadcast to every subtask, is the other. The
versions control records set (the live model and the shadow candidate, if any) are kept in
broadcast state (checkpointed, so a restarted or rescaled job serves what it served before
the failure); the loaded sessions (``ModelSlots``) are a cache of that state, rebuilt in
``open`` and on the first event after a restore.

``Scorer`` is that logic; two operators use it:
- ``FeaturesAndScoreFunction``, the product's last Python stage: the last entity's features
  (keyed state) and the scoring (broadcast state) in one keyed broadcast operator, which also
  splits the tagged records of the earlier stages into their side outputs;
- ``ScoreFunction``, scoring alone on an unkeyed stream (a config without entity features,
  and the bench's naive design).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from pyflink.common import Types
from pyflink.datastream import (
    BroadcastProcessFunction,
    KeyedBroadcastProcessFunction,
    OutputTag,
    RuntimeContext,
)
from pyflink.datastream.state import MapStateDescriptor

from rtml.core.config import JobConfig
from rtml.core.errors import ModelError, RecordError
from udfs.flink import bundle_sampler
from udfs.flink.context import subtask_index
from udfs.flink.features import FeatureStage
from udfs.flink.metrics import counters, gauges, latency_gauges
from udfs.flink.records import is_tagged, to_json_nan_safe
from udfs.latency import RecentLatencies
from udfs.model_slots import ModelSlots, score_timed, shadow_record

# model name -> the live version the last accepted control record activated;
# model name + SHADOW_KEY -> the shadow candidate's version ("" when none)
ACTIVE_MODEL = MapStateDescriptor("active-model", Types.STRING(), Types.STRING())
SHADOW_KEY = "#shadow"

log = logging.getLogger("rtml.scoring")


class Scorer:
    """Adds ``score``, ``flagged`` and the model version to every event.

    The job starts on ``version`` (resolved when the job is built). A control record switches
    every subtask to another registered version between two events: the candidate is fully
    loaded and checked (hash, schema, a probe row) before it replaces the serving model, so
    each event is scored by exactly one model, and a model that fails a check is rejected
    with its reason (to ``model_events``) while the current one keeps serving. A shadow
    candidate (control action ``shadow``) passes the same checks, then scores every event
    too; the pair (scores, decisions, latencies) goes to ``shadow_out``, never to the scores.

    The score record goes, as JSON, to ``scores_json`` (for the scores topic) and, with
    ``emit_records`` (the monitors of a one-job deployment read it), as a dict to the main
    output, so no extra Python operator stands between scoring and the sink.

    With ``timed_by_arrival`` (arrival order: the record's Flink timestamp is the Kafka
    append time of the event), each score's end-to-end latency (append time to emit, ms) is
    kept for the ``e2e_latency_*_ms`` gauges.
    """

    def __init__(
        self,
        cfg: JobConfig,
        registry: str,
        version: str,
        scores_json: OutputTag,
        model_events: OutputTag,
        shadow_out: OutputTag,
        emit_records: bool = True,
        timed_by_arrival: bool = False,
    ) -> None:
        self.cfg = cfg
        self.registry = registry
        self.version = version
        self.scores_json = scores_json
        self.model_events = model_events
        self.shadow_out = shadow_out
        self.emit_records = emit_records
        self.timed_by_arrival = timed_by_arrival
        self.slots = None

    def _load(self, version: str):
        from udfs.serving import load_serving_model

        return load_serving_model(
            self.registry,
            self.cfg.model.name,
            version,
            self.cfg.model_inputs,
            self.cfg.model.intra_op_threads,
        )

    def open(self, runtime_context: RuntimeContext) -> None:
        bundle_sampler.install()
        self.slots = ModelSlots(self._load(self.version))
        self.restored = False  # the broadcast state is read on the first event
        self.subtask = subtask_index(runtime_context)
        self.threshold = self.cfg.model.threshold
        s = self.cfg.schema
        self.passthrough = [
            s.event_id,
            s.event_time,
            *(e.key for e in s.entities),
            *s.sensitive_attributes,
        ]
        self.shadow_keys = [s.event_id, s.event_time] + (
            [s.sensitive_attribute] if s.sensitive_attribute else []
        )
        self.scored, self.activated, self.rejected, self.shadowed = counters(
            runtime_context, "scored", "models_activated", "models_rejected", "shadow_scored"
        )
        self.latency = RecentLatencies()
        latency_gauges(runtime_context, "score_latency", self.latency, "us")
        self.e2e = RecentLatencies()
        if self.timed_by_arrival:
            latency_gauges(runtime_context, "e2e_latency", self.e2e, "ms")
        gauges(
            runtime_context,
            {
                "model_version": lambda: int(self.slots.live.version),
                "shadow_version": lambda: (
                    int(self.slots.shadow.version) if self.slots.shadow else 0
                ),
            },
        )

    def _restore(self, ctx) -> None:
        """After a restart, serve the versions the broadcast state says were set."""
        self.restored = True
        state = ctx.get_broadcast_state(ACTIVE_MODEL)
        name = self.cfg.model.name
        self.slots.live = self._reloaded("live", state.get(name), self.slots.live)
        self.slots.shadow = self._reloaded(
            "shadow", state.get(name + SHADOW_KEY), self.slots.shadow
        )

    def _reloaded(self, role: str, version: str | None, current):
        """``version`` loaded, or ``current`` when it is unset, already loaded or unreadable."""
        if not version or (current is not None and current.version == version):
            return current
        try:
            return self._load(version)
        except ModelError as e:  # accepted before the failure, unreadable now
            log.error("rtml: cannot restore %s model version %s (%s)", role, version, e)
            return current

    def score(self, value: dict, ctx) -> Iterator[Any]:
        if not self.restored:
            self._restore(ctx)
        m = self.slots.live
        live = score_timed(m, value)
        self.latency.record(live.latency_us)
        self.scored.inc()
        out = {k: value[k] for k in self.passthrough}
        out["score"] = live.score
        out["flagged"] = int(live.score >= self.threshold)
        out["model"] = m.name
        out["model_version"] = m.version
        out["inputs"] = {k: value.get(k) for k in m.inputs}
        yield self.scores_json, to_json_nan_safe(out)
        appended = ctx.timestamp()  # None for a record without one (not from Kafka)
        if self.timed_by_arrival and appended is not None and appended > 0:
            self.e2e.record(int(time.time() * 1000) - appended)
        cand = self.slots.shadow
        if cand is not None:
            pair = shadow_record(
                {k: value[k] for k in self.shadow_keys},
                m,
                live,
                cand,
                score_timed(cand, value),
                self.threshold,
            )
            self.shadowed.inc()
            yield self.shadow_out, to_json_nan_safe(pair)
        if self.emit_records:
            yield out

    def control(self, value, ctx) -> Iterator[Any]:
        from udfs.serving import parse_model_switch

        if not self.restored:
            self._restore(ctx)
        event = {"model": self.cfg.model.name, "serving_version": self.slots.live.version}
        event["subtask"] = self.subtask
        try:
            switch = parse_model_switch(value, self.cfg.model.name)
            event["action"] = switch.action
            event["version"] = switch.version
            event.update(self.slots.apply(switch, self._load))
        except (RecordError, ModelError) as e:
            self.rejected.inc()
            log.error("rtml: model control record rejected: %s", e)
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            event.update(kind="model_rejected", reason=str(e), control=text[:512])
            yield self.model_events, json.dumps(event)
            return
        state = ctx.get_broadcast_state(ACTIVE_MODEL)
        state.put(self.cfg.model.name, self.slots.live.version)
        shadow = self.slots.shadow
        state.put(self.cfg.model.name + SHADOW_KEY, "" if shadow is None else shadow.version)
        if event["kind"] == "model_activated":
            self.activated.inc()
        yield self.model_events, json.dumps(event)


class ScoreFunction(BroadcastProcessFunction):
    """``Scorer`` on an unkeyed stream of events."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def open(self, runtime_context: RuntimeContext):
        self.scorer.open(runtime_context)

    def process_element(self, value, ctx):
        yield from self.scorer.score(value, ctx)

    def process_broadcast_element(self, value, ctx):
        yield from self.scorer.control(value, ctx)


class FeaturesAndScoreFunction(KeyedBroadcastProcessFunction):
    """The last Python stage: the last entity's features, then the score, in one operator
    (keyed feature state and the broadcast model state side by side), so that neither the
    control stream nor a separate scoring operator costs a stage.

    Tagged records (dead letters, late events) of this and the earlier stages go to the side
    output of their tag (``split``); nothing else of the pipeline has a side output."""

    def __init__(self, stage: FeatureStage, scorer: Scorer, split: tuple[OutputTag, ...]) -> None:
        self.stage = stage
        self.scorer = scorer
        self.split = {t.tag_id: t for t in split}

    def open(self, runtime_context: RuntimeContext):
        self.stage.open(runtime_context)
        self.scorer.open(runtime_context)

    def _emit(self, records: Iterator[Any], ctx) -> Iterator[Any]:
        for r in records:
            if is_tagged(r):
                yield self.split[r[0]], r[1]
            else:
                yield from self.scorer.score(r, ctx)

    def process_element(self, value, ctx):
        yield from self._emit(self.stage.process(value, ctx), ctx)

    def on_timer(self, timestamp: int, ctx):
        yield from self._emit(self.stage.on_timer(timestamp, ctx), ctx)

    def process_broadcast_element(self, value, ctx):
        yield from self.scorer.control(value, ctx)
