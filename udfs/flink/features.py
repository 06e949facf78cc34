"""Keyed feature operator: one entity's features in Flink state, joined onto each event."""

from __future__ import annotations

import json

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from rtml.config import Entity
from rtml.errors import RecordError
from udfs.features.engine import EntityFeatures
from udfs.features.spec import FeatureSet
from udfs.features.stored import StoredFeatures
from udfs.flink import state_writes
from udfs.flink.metrics import counters
from udfs.flink.records import to_json_nan_safe
from udfs.validation import dead_letter

TTL_TIMER_GRANULARITY_MS = (
    86_400_000  # coalesce expiry timers to the day: a PyFlink timer call costs ~1 ms
)


class EntityFeaturesFunction(KeyedProcessFunction):
    """Adds the entity's features (from history before the event) to each event.

    An event is late when it is older than the key's newest event by more than the allowed
    lateness (per key, as the offline replay decides).

    With ``dead_letters`` (the first entity's operator), an event whose id the key has seen
    within the allowed lateness is a resend: it goes to ``dead_letters`` with its reason and
    is neither scored nor counted again.

    ``ordered=False`` applies each event on arrival. ``ordered=True`` buffers events in keyed
    state until the watermark passes them and applies them in (event time, event id) order,
    so the features do not depend on how upstream subtasks interleave: the same at any
    parallelism and through a backlog catch-up, at the cost of waiting for the watermark.
    """

    def __init__(
        self,
        entity: Entity,
        features: FeatureSet,
        late: OutputTag,
        ordered: bool = False,
        id_field: str = "event_id",
        dead_letters: OutputTag | None = None,
        source: str = "",
    ) -> None:
        self.entity = entity
        self.id_field = id_field
        self.dead_letters = dead_letters
        self.source = source
        self.features = features
        self.late = late
        self.ordered = ordered
        self.state = None

    def open(self, runtime_context: RuntimeContext):
        state_writes.install()
        # the live EntityFeatures between events; its snapshot() bytes when Flink serializes it
        self.state = runtime_context.get_state(
            ValueStateDescriptor(f"features-{self.entity.name}", Types.PICKLED_BYTE_ARRAY())
        )
        # events waiting for the watermark (ordered mode): JSON [ts, event]
        self.pending = runtime_context.get_list_state(
            ListStateDescriptor(f"features-{self.entity.name}-pending", Types.STRING())
        )
        self.late_events, self.duplicates = counters(runtime_context, "late_events", "duplicates")

    def _load(self) -> EntityFeatures | None:
        stored = self.state.value()
        return None if stored is None else stored.features(self.features)

    def process_element(self, value, ctx: KeyedProcessFunction.Context):
        ts = ctx.timestamp()
        if self.ordered and ts > ctx.timer_service().current_watermark():
            self.pending.add(json.dumps([ts, value], separators=(",", ":")))
            ctx.timer_service().register_event_time_timer(ts)
            return
        st = self._load()
        old_expiry = None if st is None else self._expiry_timer(st)
        st, out = self._apply(st, ts, value, ctx)
        yield from out
        self._save(st, old_expiry, ctx)

    def _apply(self, st: EntityFeatures | None, ts: int, value: dict, ctx) -> tuple:
        """Apply one event to the key's state; returns (state, records to emit)."""
        if st is None or st.is_expired(ts):
            st = EntityFeatures(self.features)
        if st.is_late(ts):
            self.late_events.inc()
            late = {
                "reason": f"event is {(st.newest_ts - ts) // 1000}s older than the newest event of {self.entity.key}={ctx.get_current_key()}, beyond the allowed lateness of {self.features.allowed_lateness_ms // 1000}s",
                "entity": self.entity.name,
                "key": ctx.get_current_key(),
                "event": value,
            }
            return st, [(self.late, to_json_nan_safe(late))]
        eid = None
        if self.dead_letters is not None:
            eid = str(value[self.id_field])
            if st.is_duplicate(eid):
                self.duplicates.inc()
                return st, [(self.dead_letters, self._duplicate(eid, value))]
        value.update(st.observe(ts, value, eid))
        return st, [value]

    def _duplicate(self, eid: str, value: dict) -> str:
        err = RecordError(
            "duplicate_event_id",
            f"record {eid}: field '{self.id_field}' repeats an event already scored for {self.entity.key}={value[self.entity.key]} -> resend nothing that was delivered (idempotent producer), or give each event a new id",
            field=self.id_field,
            record_id=eid,
        )
        return to_json_nan_safe(dead_letter(to_json_nan_safe(value), err, self.source))

    def _save(self, st: EntityFeatures, old_expiry: int | None, ctx) -> None:
        self.state.update(StoredFeatures.of(st))
        expiry = self._expiry_timer(st)
        if expiry != old_expiry:  # timer calls are costly in PyFlink: one per key per day at most
            ctx.timer_service().register_event_time_timer(expiry)

    def _expiry_timer(self, st: EntityFeatures) -> int | None:
        if st.newest_ts is None:
            return None
        expiry = st.newest_ts + self.features.ttl_ms
        return -(-expiry // TTL_TIMER_GRANULARITY_MS) * TTL_TIMER_GRANULARITY_MS

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        st = self._load()
        if self.ordered:
            waiting = [json.loads(x) for x in (self.pending.get() or [])]
            due = sorted(
                (p for p in waiting if p[0] <= timestamp),
                key=lambda p: (p[0], str(p[1].get(self.id_field, ""))),
            )
            if due:
                old_expiry = None if st is None else self._expiry_timer(st)
                for ts, value in due:
                    st, out = self._apply(st, ts, value, ctx)
                    yield from out
                self.pending.update(
                    [json.dumps(p, separators=(",", ":")) for p in waiting if p[0] > timestamp]
                )
                self._save(st, old_expiry, ctx)
                return
        if st is not None and st.is_expired(timestamp):
            self.state.clear()
