"""The largest value seen lately: what a gauge of "the largest key's ..." reports."""

from __future__ import annotations


class RecentMax:
    """The largest value offered since the current one was set, forgotten once it is older
    than ``window_s``: a value that shrinks shows within a window of the shrink.

    ``offer(value, now)`` with ``now`` from a monotonic clock (seconds)."""

    __slots__ = ("window_s", "value", "at")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.value = 0
        self.at = float("-inf")

    def offer(self, value: int, now: float) -> None:
        if value >= self.value or now - self.at > self.window_s:
            self.value, self.at = value, now

    def current(self, now: float) -> int:
        """The largest value offered within the window up to ``now``; 0 when nothing was
        offered in it (a gauge read while no event comes shows no stale peak)."""
        return self.value if now - self.at <= self.window_s else 0
