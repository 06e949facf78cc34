"""Baseline operators for ``rtml bench``: what the product's pipeline is measured against.

- ``KeyedPassThrough``: the engine floor, an empty keyed Python function (the raw record out).
- ``NaiveEntityFeatures``: the naive design. Each key keeps its raw events in a list state and
  every event recomputes the features from that list (the same feature code as the product,
  so the two designs differ only in how state is kept).
"""

from __future__ import annotations

import json

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, KeySelector, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor

from rtml.core.config import Entity
from rtml.core.featurespec import FeatureSet
from udfs.features.engine import EntityFeatures


class KeyedPassThrough(KeyedProcessFunction):
    def process_element(self, value: bytes, ctx):
        yield value.decode("utf-8", "replace")


class NaiveEntityFeatures(KeyedProcessFunction):
    """Raw events per key in a list (trimmed to the longest window), features recomputed from
    the whole list for every event."""

    def __init__(self, entity: Entity, features: FeatureSet) -> None:
        self.entity = entity
        self.features = features
        self.fields = sorted({s.field for s in features.specs if s.field})

    def open(self, runtime_context: RuntimeContext):
        self.history = runtime_context.get_list_state(
            ListStateDescriptor(f"naive-{self.entity.name}", Types.STRING())
        )

    def process_element(self, value, ctx):
        ts = ctx.timestamp()
        horizon = ts - self.features.max_window_ms
        kept = [p for p in (json.loads(x) for x in (self.history.get() or [])) if p[0] >= horizon]
        st = EntityFeatures(self.features)
        for t, event in kept:
            st.observe(t, event)
        value.update(st.observe(ts, value))
        kept.append([ts, {k: value.get(k) for k in self.fields}])
        self.history.update([json.dumps(p, separators=(",", ":")) for p in kept])
        yield value


class RawJsonKey(KeySelector):
    """Key of a raw JSON record (the floor parses only what keying needs); "" when unparsable."""

    def __init__(self, field: str) -> None:
        self.field = field

    def get_key(self, value: bytes) -> str:
        try:
            return str(json.loads(value).get(self.field, ""))
        except (ValueError, AttributeError):
            return ""
