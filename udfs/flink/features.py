"""Keyed feature operators: one entity's features in Flink state, joined onto each event.

``FeatureStage`` is the per-key logic over Flink's keyed state and timers, shared by the two
operators that hold an entity's features:
- ``EntityFeaturesFunction``, a keyed process function: every entity's stage but the last
  (its output, events and tagged records alike, goes on to the next entity's ``key_by``,
  which PyFlink fuses into the same Python stage), or the last one when nothing is scored
  (``split`` routes the tagged records to their side outputs);
- ``udfs.flink.scoring.FeaturesAndScoreFunction``: the last entity's features and the scoring
  in one keyed broadcast operator.

Event time is read from the record's event-time field, never from the record's Flink
timestamp: in arrival order (the default) the scoring path has no timestamp assigner and
the timestamp is the Kafka append time (the end-to-end latency metric is measured from it),
and a record emitted from a timer carries the timer's timestamp.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Iterator
from typing import Any

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext, TimeDomain
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from rtml.core.config import Entity
from rtml.core.errors import RecordError
from rtml.core.featurespec import FeatureSet
from udfs.features.apply import Duplicate, Late, apply_event
from udfs.features.engine import EntityFeatures
from udfs.features.pending import PendingEvents
from udfs.features.stored import StoredFeatures
from udfs.flink import bundle_sampler, state_writes
from udfs.flink.metrics import counters, gauges
from udfs.flink.records import is_tagged, tagged, to_json_nan_safe
from udfs.recent import RecentMax
from udfs.validation import dead_letter

DAY_MS = 86_400_000
# expiry timers are coalesced (a PyFlink timer call costs ~1 ms): at most one per key per
# granule, a thirtieth of the TTL, between a second and a day
MIN_GRANULE_MS = 1_000
LARGEST_WINDOW_S = 10.0
# a key's stored bytes are measured (pickled, as Flink stores them) at most this often
STATE_SAMPLE_S = 1.0


def expiry_granule_ms(ttl_ms: int) -> int:
    return min(DAY_MS, max(MIN_GRANULE_MS, ttl_ms // 30))


def coalesced(t_ms: int, granule_ms: int) -> int:
    """``t_ms`` rounded up to the granule."""
    return -(-t_ms // granule_ms) * granule_ms


class FeatureStage:
    """One entity's features over keyed state, for an operator that owns ``open``/timers.

    An event is late when it is older than the key's newest event by more than the allowed
    lateness (per key, as the offline replay decides). With ``dedupe`` (the first entity's
    stage), an event whose id the key has seen within the allowed lateness is a resend: it
    becomes a dead letter with its reason and is neither scored nor counted again.

    ``ordered=False`` applies each event on arrival; an idle key's state is dropped by a
    processing-time timer once the TTL has passed on the stage's event clock (the newest event
    time it has seen, less the out-of-orderness bound, the watermark the job would have), so
    it needs no watermarks. ``ordered=True`` holds events in the key's state
    (``PendingEvents``) until the watermark passes them, with one event-time timer per key
    for the earliest; when it fires, every event the watermark has passed is applied in
    (event time, event id) order, each read once, so the features do not depend on how
    upstream subtasks interleave and a backlog drains in linear time. An event already
    behind the watermark when it arrives (more out of order than ``max_out_of_orderness``)
    is applied at once. Event-time timers expire idle state there.

    ``process`` and ``on_timer`` yield events (dicts, features added) and tagged records
    (dead letters, late events) alike; the operator decides where each goes.
    """

    def __init__(
        self,
        entity: Entity,
        features: FeatureSet,
        late: OutputTag,
        dead_letters: OutputTag,
        *,
        ordered: bool,
        dedupe: bool,
        id_field: str,
        time_field: str,
        out_of_orderness_ms: int,
        source: str,
        pipelined_state_writes: bool = True,
    ) -> None:
        self.entity = entity
        self.features = features
        self.late_id = late.tag_id
        self.dead_id = dead_letters.tag_id
        self.ordered = ordered
        self.dedupe = dedupe
        self.id_field = id_field
        self.time_field = time_field
        self.out_of_orderness_ms = out_of_orderness_ms
        self.source = source
        self.pipelined_state_writes = pipelined_state_writes
        self.granule_ms = expiry_granule_ms(features.ttl_ms)

    def open(self, runtime_context: RuntimeContext) -> None:
        state_writes.use(self.pipelined_state_writes)
        bundle_sampler.install()
        # the live EntityFeatures between events; its snapshot() bytes when Flink serializes it
        self.state = runtime_context.get_state(
            ValueStateDescriptor(f"features-{self.entity.name}", Types.PICKLED_BYTE_ARRAY())
        )
        # where the layout of 969cad7 and before kept the events waiting for the watermark (JSON
        # [ts, event] each): read only to move them into the key's state (_stored_ordered)
        self.legacy_pending = runtime_context.get_list_state(
            ListStateDescriptor(f"features-{self.entity.name}-pending", Types.STRING())
        )
        self.late_events, self.duplicates, self.expired, self.behind = counters(
            runtime_context, "late_events", "duplicates", "keys_expired", "behind_watermark"
        )
        # event-time order: the largest buffer of any key at an event's arrival, over about
        # the last LARGEST_WINDOW_S (a hot key's buffer stays bounded by the watermark's lag);
        # the largest stored state (bytes) of the keys sampled once a second: a hot key is
        # sampled in proportion to its share of the events
        self.largest_waiting = RecentMax(LARGEST_WINDOW_S)
        self.largest_bytes = RecentMax(LARGEST_WINDOW_S)
        self.sampled_at = 0.0
        largest = {"state_bytes_largest_key": lambda: self.largest_bytes.current(time.monotonic())}
        if self.ordered:
            largest["waiting_events_largest_key"] = lambda: self.largest_waiting.current(
                time.monotonic()
            )
        gauges(runtime_context, largest)
        # arrival order's event clock: the newest event time this subtask has seen. Lost on
        # a restart, it only starts again from the next event (expiry waits, nothing else).
        self.clock = 0

    def _stored(self) -> StoredFeatures | None:
        return self.state.value()

    def process(self, value: Any, ctx) -> Iterator[Any]:
        if is_tagged(value):  # a dead letter or late event of an earlier stage: pass it on
            yield value
            return
        # the event's time is its field's in both orders: in arrival order there is no
        # timestamp assigner on the path, and in event-time order a record emitted from a
        # timer carries the timer's timestamp, not the event's
        ts = int(value[self.time_field])
        if self.ordered:
            stored = self._stored_ordered(ctx)
            if ts > ctx.timer_service().current_watermark():
                self._hold(stored, ts, value, ctx)
                return
            self.behind.inc()  # more out of order than the bound: applied on arrival
        else:
            if ts > self.clock:
                self.clock = ts
            stored = self._stored()
        st = None if stored is None else stored.features(self.features)
        st, out = self._apply(st, ts, value, ctx)
        yield from out
        self._save(st, stored, ctx)

    def _stored_ordered(self, ctx) -> StoredFeatures | None:
        """Event-time order's state of the key, with the events the earlier layout kept in
        a list state of their own moved into it (read once per key: a key stored in this
        layout has none there)."""
        stored = self._stored()
        if stored is not None and not stored.legacy:
            return stored
        waiting = [json.loads(x) for x in (self.legacy_pending.get() or [])]
        if stored is not None:
            stored.legacy = False
        if not waiting:
            return stored
        self.legacy_pending.clear()
        if stored is None:
            stored = StoredFeatures.of(EntityFeatures(self.features))
        for ts, value in waiting:
            self._hold(stored, ts, value, ctx)
        return stored

    def _hold(self, stored: StoredFeatures | None, ts: int, value: dict, ctx) -> None:
        """Keep an event until the watermark passes it; one timer per key, for the earliest
        event waiting."""
        if stored is None:
            stored = StoredFeatures.of(EntityFeatures(self.features))
        if stored.pending is None:
            stored.pending = PendingEvents()
        timer = stored.pending.add(ts, str(value.get(self.id_field, "")), value)
        if timer is not None:
            ctx.timer_service().register_event_time_timer(timer)
        self.state.update(stored)
        now = time.monotonic()
        self.largest_waiting.offer(len(stored.pending), now)
        self._sample_bytes(stored, now)

    def _sample_bytes(self, stored: StoredFeatures, now: float) -> None:
        if now - self.sampled_at >= STATE_SAMPLE_S:
            self.sampled_at = now
            self.largest_bytes.offer(len(pickle.dumps(stored)), now)

    def _apply(self, st: EntityFeatures | None, ts: int, value: dict, ctx) -> tuple:
        """Apply one event to the key's state (``apply_event``, the offline replay's rule);
        returns (state, records to emit)."""
        eid = str(value[self.id_field]) if self.dedupe else None
        st, outcome = apply_event(st, self.features, ts, value, eid)
        if isinstance(outcome, Late):
            self.late_events.inc()
            late = {
                "reason": f"event is {(outcome.newest_ts - ts) // 1000}s older than the newest event of {self.entity.key}={ctx.get_current_key()}, beyond the allowed lateness of {self.features.allowed_lateness_ms // 1000}s",
                "entity": self.entity.name,
                "key": ctx.get_current_key(),
                "event": value,
            }
            return st, [tagged(self.late_id, to_json_nan_safe(late))]
        if isinstance(outcome, Duplicate):
            self.duplicates.inc()
            return st, [tagged(self.dead_id, self._duplicate(outcome.event_id, value))]
        value.update(outcome.features)
        return st, [value]

    def _duplicate(self, eid: str, value: dict) -> str:
        err = RecordError(
            "duplicate_event_id",
            f"record {eid}: field '{self.id_field}' repeats an event already scored for {self.entity.key}={value[self.entity.key]} -> resend nothing that was delivered (idempotent producer), or give each event a new id",
            field=self.id_field,
            record_id=eid,
        )
        return to_json_nan_safe(dead_letter(to_json_nan_safe(value), err, self.source))

    def _save(self, st: EntityFeatures, before: StoredFeatures | None, ctx) -> None:
        """Store the key's state and keep one expiry timer registered for it (timer calls
        are costly in PyFlink: a new one only when the coalesced expiry moves on)."""
        stored = (
            StoredFeatures.of(st)
            if before is None
            else StoredFeatures.of(st, timer=before.timer, pending=before.pending)
        )
        timers = ctx.timer_service()
        if self.ordered:
            expiry = self._event_time_expiry(st)
            if expiry is not None and expiry != stored.timer:
                timers.register_event_time_timer(expiry)
                stored.timer = expiry
        else:
            now = timers.current_processing_time()
            timer = coalesced(now + self.features.ttl_ms, self.granule_ms)
            if timer != stored.timer:
                timers.register_processing_time_timer(timer)
                stored.timer = timer
        self.state.update(stored)
        self._sample_bytes(stored, time.monotonic())

    def _event_time_expiry(self, st: EntityFeatures) -> int | None:
        if st.newest_ts is None:
            return None
        return coalesced(st.newest_ts + self.features.ttl_ms, DAY_MS)

    def on_timer(self, timestamp: int, ctx) -> Iterator[Any]:
        if ctx.time_domain() == TimeDomain.PROCESSING_TIME:
            self._on_expiry_timer(timestamp, ctx)
            return
        # event time (event-time order): every waiting event the watermark has passed is
        # applied now, in (event time, event id) order, each once
        stored = self._stored_ordered(ctx)
        if stored is None:
            return
        if stored.pending:
            due, timer = stored.pending.pop_due(ctx.timer_service().current_watermark())
            if timer is not None:
                ctx.timer_service().register_event_time_timer(timer)
            if due:
                st = stored.features(self.features)
                for ts, value in due:
                    st, out = self._apply(st, ts, value, ctx)
                    yield from out
                self._save(st, stored, ctx)
                return  # the key has just had events: not idle
            if timer is not None:
                self.state.update(stored)
            if stored.pending:
                return  # events still wait: the key is not idle
        if stored.features(self.features).is_expired(timestamp):
            self.state.clear()
            self.expired.inc()

    def _on_expiry_timer(self, timestamp: int, ctx) -> None:
        """Arrival order: drop the key's state once its TTL has passed on the event clock;
        a timer a newer one superseded does nothing."""
        stored = self._stored()
        if stored is None or stored.timer != timestamp:
            return
        if stored.features(self.features).is_expired(self.clock - self.out_of_orderness_ms):
            self.state.clear()
            self.expired.inc()
            return
        # the key is idle, but event time has not moved on enough: look again a TTL later
        timer = coalesced(timestamp + self.features.ttl_ms, self.granule_ms)
        ctx.timer_service().register_processing_time_timer(timer)
        stored.timer = timer
        self.state.update(stored)


class EntityFeaturesFunction(KeyedProcessFunction):
    """One entity's ``FeatureStage`` as a keyed process function.

    Without ``split`` every record goes to the main output (for the next entity's stage);
    with ``split`` (the last stage of a job that does not score) events go to the main
    output and tagged records to the side output of their tag."""

    def __init__(self, stage: FeatureStage, split: tuple[OutputTag, ...] = ()) -> None:
        self.stage = stage
        self.split = {t.tag_id: t for t in split}

    def open(self, runtime_context: RuntimeContext):
        self.stage.open(runtime_context)

    def _route(self, records: Iterator[Any]) -> Iterator[Any]:
        if not self.split:
            yield from records
            return
        for r in records:
            if is_tagged(r):
                yield self.split[r[0]], r[1]
            else:
                yield r

    def process_element(self, value, ctx: KeyedProcessFunction.Context):
        yield from self._route(self.stage.process(value, ctx))

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        yield from self._route(self.stage.on_timer(timestamp, ctx))
