"""Stable hashing of event ids: which monitor bucket an event's records go to, and its place in
a window's bottom-k sample. crc32, never Python's salted ``hash()``: the same in every
process, run and parallelism."""

from __future__ import annotations

import zlib

# the monitors pre-aggregate per bucket of event ids, then merge per window: the bucket count
# bounds their useful parallelism, not their results (the merge is exact at any count)
MONITOR_BUCKETS = 16


def stable_key(event_id: object) -> int:
    """A hash of an event id that is the same in every process and run (crc32)."""
    return zlib.crc32(str(event_id).encode("utf-8", "surrogatepass"))


def bucket_of(event_id: object, buckets: int = MONITOR_BUCKETS) -> str:
    """The monitor bucket of an event id (prediction and label of one event meet there)."""
    return f"b{stable_key(event_id) % buckets}"
