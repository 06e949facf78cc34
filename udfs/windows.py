"""Tumbling event-time windows: alignment and display."""

from __future__ import annotations

from datetime import UTC, datetime


def window_start(ts_ms: int, size_ms: int) -> int:
    return ts_ms - (ts_ms % size_ms)


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def window_label(start_ms: int, size_ms: int) -> str:
    return f"{iso(start_ms)}..{iso(start_ms + size_ms)}"


def windows_for(ts_ms: int, size_ms: int, slide_ms: int) -> list[int]:
    """Starts of every window [start, start + size) holding ``ts_ms``, windows every ``slide_ms``
    (``slide_ms == size_ms``: tumbling, exactly one window)."""
    last = ts_ms - (ts_ms % slide_ms)
    return [s for s in range(last, ts_ms - size_ms, -slide_ms)]
