"""The drift monitor's sample of a window, without PyFlink: uniform over the whole window and
the same at any parallelism.

A window's sample is its ``cap`` events of smallest ``(stable key, event id)`` (a bottom-k
sample; ``udfs.sampling.stable_key`` is crc32 of the event id), not its first ``cap`` events.
It is collected in two stages:

1. ``DriftCollector``, one per bucket of event ids: keeps the window's rows whose key can
   still be in its bottom-k. Per event it reads two small counters of its own bucket (cached)
   and writes the row; when ``2 * cap`` rows are kept it trims them to the ``cap`` smallest
   and rejects, from then on, rows above the largest kept key. At the window's close it emits
   a partial: the bucket's bottom-k, how many events it saw, its first event time.
2. ``DriftSample``, one per window: merges the partials (the union's ``cap`` smallest is the
   window's bottom-k, in any order) and hands the rows to the Evidently comparison.

Contract: ``on_row(record, row) -> timers``, ``on_timer(timestamp) -> partials``;
``DriftSample.merge(partial)``; state in the caller's stores (``udfs.fairness_monitor``'s
protocols), stored as in the one-stage monitor before it ("<window start>|<event id>" -> JSON
row), which a collector reads as its own.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from udfs.fairness_monitor import KeyValueStore, ValueStore
from udfs.sampling import stable_key
from udfs.windows import window_start

SampleRow = tuple[int, str, dict[str, Any]]  # (stable key, event id, row)


def bottom_k(rows: list[SampleRow], cap: int) -> list[SampleRow]:
    return sorted(rows, key=lambda r: (r[0], r[1]))[:cap]


class DriftCollector:
    """One bucket of event ids. Stores: ``rows`` ("<ws>|<event id>" -> JSON row), ``kept``
    (ws -> rows kept), ``seen`` (ws -> events seen), ``ceiling`` (ws -> the largest key a row
    may have to be kept, once trimmed) and ``first`` (the bucket's first event time)."""

    def __init__(
        self,
        size: int,
        cap: int,
        rows: KeyValueStore,
        kept: KeyValueStore,
        seen: KeyValueStore,
        ceiling: KeyValueStore,
        first: ValueStore,
    ) -> None:
        self.size, self.cap = size, cap
        self.rows, self.kept, self.seen, self.ceiling, self.first = rows, kept, seen, ceiling, first

    def on_row(self, ts: int, event_id: str, row: dict[str, Any]) -> list[int]:
        """Offer a scored event's row to its window's sample; returns the timers to register
        (the window's close, for its first row here)."""
        first = self.first.value()
        if first is None or ts < first:
            self.first.update(ts)
        ws = window_start(ts, self.size)
        seen = self.seen.get(ws)
        timers = [] if seen is not None else [ws + self.size - 1]
        self.seen.put(ws, (seen or 0) + 1)
        top = self.ceiling.get(ws)
        if top is not None and stable_key(event_id) > top:
            return timers  # cannot be among the window's `cap` smallest keys
        self.rows.put(f"{ws}|{event_id}", json.dumps(row))
        kept = (self.kept.get(ws) or 0) + 1
        if kept >= 2 * self.cap:
            kept = self._trim(ws)
        self.kept.put(ws, kept)
        return timers

    def _window_rows(self, ws: int) -> list[tuple[int, str, str]]:
        prefix = f"{ws}|"
        return [
            (stable_key(k[len(prefix) :]), k[len(prefix) :], k)
            for k, _ in list(self.rows.items())
            if k.startswith(prefix)
        ]

    def _trim(self, ws: int) -> int:
        ordered = sorted(self._window_rows(ws))
        for _, _, k in ordered[self.cap :]:
            self.rows.remove(k)
        self.ceiling.put(ws, ordered[self.cap - 1][0])
        return min(len(ordered), self.cap)

    def on_timer(self, timestamp: int) -> list[dict[str, Any]]:
        """The window closing at ``timestamp``: this bucket's partial, and its state dropped."""
        ws = timestamp + 1 - self.size
        rows = []
        for i, (key, eid, k) in enumerate(sorted(self._window_rows(ws))):
            if i < self.cap:
                rows.append([key, eid, json.loads(self.rows.get(k))])
            self.rows.remove(k)
        seen = self.seen.get(ws) or len(rows)
        for store in (self.kept, self.seen, self.ceiling):
            store.remove(ws)
        return [{"window_start": ws, "rows": rows, "seen": seen, "first_event": self.first.value()}]


@dataclass
class DriftSample:
    """A window's sample, merged from its buckets' partials."""

    cap: int
    rows: list[SampleRow] = field(default_factory=list)
    seen: int = 0
    first_event: int | None = None

    def merge(self, partial: dict[str, Any]) -> None:
        self.rows = bottom_k(self.rows + [tuple(r) for r in partial["rows"]], self.cap)
        self.seen += int(partial["seen"])
        f = partial.get("first_event")
        if f is not None and (self.first_event is None or f < self.first_event):
            self.first_event = f

    def ids_digest(self) -> int:
        """crc32 of the sampled event ids in sample order: equal samples, equal digests."""
        return zlib.crc32("\n".join(r[1] for r in self.rows).encode("utf-8", "surrogatepass"))

    def to_json(self) -> str:
        return json.dumps(
            {"cap": self.cap, "rows": self.rows, "seen": self.seen, "first": self.first_event}
        )

    @classmethod
    def from_json(cls, raw: str) -> DriftSample:
        d = json.loads(raw)
        return cls(d["cap"], [tuple(r) for r in d["rows"]], d["seen"], d["first"])
