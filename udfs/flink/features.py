"""Keyed feature operator: one entity's features in Flink state, joined onto each event."""

from __future__ import annotations

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor

from rtml.config import Entity
from udfs.features.engine import EntityFeatures
from udfs.features.spec import FeatureSet
from udfs.flink.records import to_json_nan_safe

TTL_TIMER_GRANULARITY_MS = (
    86_400_000  # coalesce expiry timers to the day: a PyFlink timer call costs ~1 ms
)


class EntityFeaturesFunction(KeyedProcessFunction):
    def __init__(self, entity: Entity, features: FeatureSet, late: OutputTag) -> None:
        self.entity = entity
        self.features = features
        self.late = late
        self.state = None

    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(
            ValueStateDescriptor(f"features-{self.entity.name}", Types.STRING())
        )

    def _load(self) -> EntityFeatures | None:
        raw = self.state.value()
        return None if raw is None else EntityFeatures.restore(self.features, raw.encode())

    def process_element(self, value, ctx: KeyedProcessFunction.Context):
        ts = ctx.timestamp()
        st = self._load()
        if st is None or st.is_expired(ts):
            st = EntityFeatures(self.features)
        old_expiry = self._expiry_timer(st)
        if st.is_late(ts):
            yield (
                self.late,
                to_json_nan_safe(
                    {
                        "reason": f"event is {(st.newest_ts - ts) // 1000}s older than the newest event of {self.entity.key}={ctx.get_current_key()}, beyond the allowed lateness of {self.features.allowed_lateness_ms // 1000}s",
                        "entity": self.entity.name,
                        "key": ctx.get_current_key(),
                        "event": value,
                    }
                ),
            )
            return
        value.update(st.observe(ts, value))
        self.state.update(st.snapshot().decode())
        expiry = self._expiry_timer(st)
        if expiry != old_expiry:  # timer calls are costly in PyFlink: one per key per day at most
            ctx.timer_service().register_event_time_timer(expiry)
        yield value

    def _expiry_timer(self, st: EntityFeatures) -> int | None:
        if st.newest_ts is None:
            return None
        expiry = st.newest_ts + self.features.ttl_ms
        return -(-expiry // TTL_TIMER_GRANULARITY_MS) * TTL_TIMER_GRANULARITY_MS

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        st = self._load()
        if st is not None and st.is_expired(timestamp):
            self.state.clear()
        return iter(())
