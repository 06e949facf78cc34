"""The one rule for applying an event to an entity's state, online and offline.

The Flink feature stage (``udfs.flink.features``) and the offline replay
(``udfs.features.offline``) both call ``apply_event``; event-time order applies a key's
waiting events in ``event_order`` (``udfs.features.pending``), the order the offline replay
of that mode reads them in (``in_event_time_order``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rtml.core.featurespec import FeatureSet
from udfs.features.engine import EntityFeatures


@dataclass(frozen=True)
class Applied:
    """The event's features, from the key's history before it; the event is now counted."""

    features: dict[str, float]


@dataclass(frozen=True)
class Late:
    """Older than the key's newest event by more than the allowed lateness: not counted."""

    newest_ts: int


@dataclass(frozen=True)
class Duplicate:
    """An event id the key has counted within the allowed lateness: not counted again."""

    event_id: str


Outcome = Applied | Late | Duplicate


def apply_event(
    state: EntityFeatures | None,
    features: FeatureSet,
    ts: int,
    event: Mapping[str, Any],
    event_id: str | None = None,
) -> tuple[EntityFeatures, Outcome]:
    """Apply one event at ``ts`` to one entity's state; returns the state to keep and what
    became of the event.

    A key without state, or whose state has expired at ``ts`` (its TTL passed since its
    newest event), starts empty. Then: late, if the event is older than the key's newest
    by more than the allowed lateness; with ``event_id`` (the first entity's stage), a
    duplicate if the key has counted that id within the allowed lateness; else applied."""
    if state is None or state.is_expired(ts):
        state = EntityFeatures(features)
    if state.is_late(ts):
        assert state.newest_ts is not None
        return state, Late(state.newest_ts)
    if event_id is not None and state.is_duplicate(event_id):
        return state, Duplicate(event_id)
    return state, Applied(state.observe(ts, event, event_id))


def event_order(ts: int, event_id: str) -> tuple[int, str]:
    """Event-time order: by event time, ties by event id (a stable field, so the order does
    not depend on arrival)."""
    return ts, event_id


def in_event_time_order(
    events: Iterable[Mapping[str, Any]], event_time: str, event_id: str
) -> list[Mapping[str, Any]]:
    """``events`` as event-time order applies them."""
    return sorted(events, key=lambda e: event_order(int(e[event_time]), str(e.get(event_id, ""))))
