"""Events of one key waiting for the watermark, for event-time feature order.

Event-time order applies a key's events in (event time, event id) order, whatever order
upstream subtasks delivered them in, so that the features equal the offline replay's at any
parallelism. A feature operator holds each event until the watermark passes it, then applies
every event the watermark has passed, in that order, in one go.

``PendingEvents`` is a heap: adding an event and taking the due ones cost O(log n) each, and
each event is read once (the operator keeps the live object in Flink's state cache between
events; it is serialized only when the state is written back). ``timer`` is the event-time
timer the operator registered for the earliest event, so that it registers one timer per key
per watermark advance, not one per event.

The update/snapshot contract: ``snapshot()`` is versioned, compact bytes; ``restore`` reads
them back to an equal object (same events, same order of application).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable
from typing import Any

from rtml.core.errors import StateVersionError
from udfs.features.apply import event_order

SNAPSHOT_VERSION = 1


class PendingEvents:
    __slots__ = ("_heap", "_seq", "timer")

    def __init__(self, timer: int | None = None) -> None:
        # (event time, tie, arrival sequence, event): the sequence keeps the heap from ever
        # comparing two events (a resent event repeats its time and id)
        self._heap: list[tuple[int, str, int, dict[str, Any]]] = []
        self._seq = 0
        self.timer = timer

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, ts: int, tie: str, event: dict[str, Any]) -> int | None:
        """Hold ``event``; returns the event-time timer to register when no registered one
        fires by ``ts`` (then ``timer`` is ``ts``), else None."""
        heapq.heappush(self._heap, (*event_order(ts, tie), self._seq, event))
        self._seq += 1
        if self.timer is None or ts < self.timer:
            self.timer = ts
            return ts
        return None

    def earliest(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, watermark: int) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
        """At a timer, with the watermark at ``watermark``: the events at or before it, in
        (event time, tie, arrival) order, and the timer to register for the earliest event
        still waiting (None when none waits, or a registered timer is still to fire)."""
        out = []
        h = self._heap
        while h and h[0][0] <= watermark:
            ts, _, _, event = heapq.heappop(h)
            out.append((ts, event))
        if self.timer is not None and self.timer <= watermark:
            self.timer = None  # it has fired
        if h and self.timer is None:
            self.timer = h[0][0]
            return out, self.timer
        return out, None

    def extend(self, items: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
        """Hold several events (a restore); ``timer`` is the earliest's afterwards."""
        for ts, tie, event in items:
            self.add(ts, tie, event)

    def snapshot(self) -> bytes:
        ordered = sorted(self._heap)  # restore keeps the order of application
        doc = {"v": SNAPSHOT_VERSION, "t": self.timer, "e": [[t, k, e] for t, k, _, e in ordered]}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def restore(cls, data: bytes) -> PendingEvents:
        doc = json.loads(data)
        if doc.get("v") != SNAPSHOT_VERSION:
            raise StateVersionError(
                f"buffered events in snapshot version {doc.get('v')!r}; this rtml reads version {SNAPSHOT_VERSION}",
                hint="restore the savepoint with the rtml release that took it, or start the job without it",
            )
        p = cls()
        p.extend((t, k, e) for t, k, e in doc["e"])
        p.timer = doc["t"]
        return p

    def __reduce__(self):
        return (restore_pending, (self.snapshot(),))


# named in every pickle of this layout: keep the name and the module
def restore_pending(data: bytes) -> PendingEvents:
    return PendingEvents.restore(data)
