"""Bounded window state: per-tile moments and a capped recent-values map.

A window of length W is cut into ``n`` tiles of width ``W // n``. The window as seen at time t
covers the tile holding t and the ``n - 1`` tiles before it. Each tile keeps five moments
(count, sum, sum of squares, min, max), so count, sum, mean, std, min, max, z-score and ratio
all come from the same few numbers and state does not grow with the number of events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# moments of one tile: [count, sum, sum_sq, min, max]
VARIANCE_EPS = 1e-12
Tile = list[float]


@dataclass(frozen=True)
class Moments:
    count: float = 0.0
    total: float = 0.0
    total_sq: float = 0.0
    minimum: float = math.nan
    maximum: float = math.nan

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0), NaN when empty."""
        if not self.count:
            return math.nan
        mean = self.total / self.count
        var = self.total_sq / self.count - mean * mean
        # sum-of-squares variance carries float error ~1e-16 * mean^2: treat that as zero,
        # so a constant series has std 0 (and z-score NaN), not noise
        if var <= VARIANCE_EPS * max(1.0, mean * mean):
            return 0.0
        return math.sqrt(var)


class TileRing:
    """Moments of one (field, window) pair, sparse: only tiles that saw an event exist."""

    __slots__ = ("width_ms", "n_tiles", "tiles")

    def __init__(self, window_ms: int, n_tiles: int) -> None:
        self.n_tiles = n_tiles
        self.width_ms = max(1, window_ms // n_tiles)
        self.tiles: dict[int, Tile] = {}

    def add(self, ts_ms: int, x: float) -> None:
        idx = ts_ms // self.width_ms
        tile = self.tiles.get(idx)
        if tile is None:
            self.tiles[idx] = [1.0, x, x * x, x, x]
        else:
            tile[0] += 1.0
            tile[1] += x
            tile[2] += x * x
            if x < tile[3]:
                tile[3] = x
            if x > tile[4]:
                tile[4] = x

    def moments(self, ts_ms: int) -> Moments:
        cur = ts_ms // self.width_ms
        lo = cur - self.n_tiles
        count = total = total_sq = 0.0
        mn = math.inf
        mx = -math.inf
        # iterate over the (few) stored tiles, never over the window's span
        for idx, t in self.tiles.items():
            if lo < idx <= cur:
                count += t[0]
                total += t[1]
                total_sq += t[2]
                if t[3] < mn:
                    mn = t[3]
                if t[4] > mx:
                    mx = t[4]
        if not count:
            return Moments()
        return Moments(count, total, total_sq, mn, mx)

    def evict_before(self, ts_ms: int) -> None:
        """Drop tiles that end before ``ts_ms``."""
        first_kept = ts_ms // self.width_ms
        for idx in [i for i in self.tiles if i < first_kept]:
            del self.tiles[idx]

    def snapshot(self) -> list[list[float]]:
        return [[idx, *t] for idx, t in sorted(self.tiles.items())]

    def restore(self, rows: list[list[float]]) -> None:
        self.tiles = {int(r[0]): [float(v) for v in r[1:6]] for r in rows}


class RecentValues:
    """Distinct values with the newest time each was seen, capped at ``capacity`` entries.

    ``distinct(ts, window)`` counts values last seen in (ts - window, ts]. Exact while the key
    has at most ``capacity`` distinct values within the retention span; beyond that the values
    seen longest ago are forgotten first (the count is then a lower bound).
    """

    __slots__ = ("capacity", "seen")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seen: dict[str, int] = {}

    def add(self, ts_ms: int, value: str) -> None:
        prev = self.seen.get(value)
        if prev is None or ts_ms > prev:
            self.seen[value] = ts_ms
        if len(self.seen) > self.capacity:
            oldest = min(self.seen, key=self.seen.__getitem__)
            del self.seen[oldest]

    def distinct(self, ts_ms: int, window_ms: int) -> int:
        lo = ts_ms - window_ms
        return sum(1 for t in self.seen.values() if lo < t <= ts_ms)

    def evict_before(self, ts_ms: int) -> None:
        for v in [v for v, t in self.seen.items() if t < ts_ms]:
            del self.seen[v]

    def snapshot(self) -> list[list]:
        return [[v, t] for v, t in sorted(self.seen.items())]

    def restore(self, rows: list[list]) -> None:
        self.seen = {str(v): int(t) for v, t in rows}
