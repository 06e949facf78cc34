"""Feature definitions: what to compute, never how.

A feature names the entity it is keyed by, the input field, the aggregation and the window.
Specs are frozen and hashable; a FeatureSet is the ordered collection a job and its model agree
on (its ``fingerprint`` goes into the model metadata).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

# aggregation -> (needs a field, needs a window)
AGGREGATIONS: dict[str, tuple[bool, bool]] = {
    "count": (False, True),
    "sum": (True, True),
    "mean": (True, True),
    "std": (True, True),
    "min": (True, True),
    "max": (True, True),
    "zscore": (True, True),  # (current value - window mean) / window std of the key's history
    "ratio": (True, True),  # current value / window mean of the key's history
    "distinct": (True, True),  # distinct values seen in the window (bounded memory)
    "last": (True, False),  # previous value of the field for this key
    "time_since_last": (False, False),  # seconds since the key's previous event
}

# aggregations answered from the per-window moments (count, sum, sum of squares, min, max)
MOMENT_AGGREGATIONS = frozenset({"count", "sum", "mean", "std", "min", "max", "zscore", "ratio"})


def format_window(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class FeatureSpec:
    entity: str  # entity name, e.g. "account"
    agg: str
    field: str | None = None  # input field; None for count / time_since_last
    window_ms: int | None = None  # None for lifetime aggregations (last, time_since_last)

    @cached_property  # read for every feature of every event: built once per spec
    def name(self) -> str:
        parts = [self.entity]
        if self.field is not None and AGGREGATIONS[self.agg][0]:
            parts.append(self.field)
        parts.append(self.agg)
        if self.window_ms is not None:
            parts.append(format_window(self.window_ms))
        return "_".join(parts)


@dataclass(frozen=True)
class FeatureSet:
    """The ordered features of a job plus the knobs that bound their state."""

    specs: tuple[FeatureSpec, ...]
    tiles_per_window: int = 12
    distinct_capacity: int = 64
    allowed_lateness_ms: int = 3_600_000
    ttl_ms: int = 30 * 86_400_000
    numeric_fields: frozenset[str] = field(default_factory=frozenset)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    @property
    def entities(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for s in self.specs:
            seen.setdefault(s.entity, None)
        return tuple(seen)

    def for_entity(self, entity: str) -> FeatureSet:
        return FeatureSet(
            specs=tuple(s for s in self.specs if s.entity == entity),
            tiles_per_window=self.tiles_per_window,
            distinct_capacity=self.distinct_capacity,
            allowed_lateness_ms=self.allowed_lateness_ms,
            ttl_ms=self.ttl_ms,
            numeric_fields=self.numeric_fields,
        )

    @property
    def max_window_ms(self) -> int:
        return max((s.window_ms or 0 for s in self.specs), default=0)

    def fingerprint(self) -> str:
        payload = json.dumps(
            {
                "specs": [[s.entity, s.agg, s.field, s.window_ms] for s in self.specs],
                "tiles": self.tiles_per_window,
                "distinct": self.distinct_capacity,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
