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
