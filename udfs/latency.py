"""A recent-latency window: the last N samples, with percentiles for metric gauges.

Pure Python (no pyflink), so the scoring adapter's histogram is unit-testable. Flink's
Python metric API has counters, meters, gauges and distributions; distributions reach the
JVM as non-numeric gauges that the Prometheus reporter drops, so percentiles are exported
as integer gauges computed from this window instead.
"""

from __future__ import annotations

import math


class RecentLatencies:
    """The last ``capacity`` samples (microseconds) in a ring buffer."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._buf: list[int] = []
        self._next = 0
        self.total = 0  # samples ever recorded
        # the window sorted, kept until the next sample: Flink reads every gauge at every
        # bundle end, four quantiles of one window at a time
        self._sorted: list[int] | None = None

    def record(self, micros: int) -> None:
        if len(self._buf) < self.capacity:
            self._buf.append(micros)
        else:
            self._buf[self._next] = micros
            self._next = (self._next + 1) % self.capacity
        self.total += 1
        self._sorted = None

    def quantile(self, q: float) -> int:
        """Nearest-rank quantile of the window (0 when empty)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be within [0, 1]")
        if not self._buf:
            return 0
        if self._sorted is None:
            self._sorted = sorted(self._buf)
        s = self._sorted
        return s[max(0, math.ceil(q * len(s)) - 1)]

    def __len__(self) -> int:
        return len(self._buf)
