"""What the bench measures, from the brokers' append times, the TaskManagers' processes and
Flink's checkpoint statistics. Pure functions where possible (unit-tested without services)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from rtml.config import JobConfig
from rtml.kafka_client import iter_records


def event_id_of(raw: str | bytes, field: str) -> str | None:
    """The event id of a JSON record, or None (malformed records have none)."""
    try:
        rec = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    v = rec.get(field) if isinstance(rec, dict) else None
    return v if isinstance(v, str) else None


def append_times(cfg: JobConfig, topic: str, id_field: str) -> dict[str, int]:
    """event id -> broker append time (ms) of its first record in ``topic`` (read_committed)."""
    out: dict[str, int] = {}
    for r in iter_records(cfg, topic):
        eid = event_id_of(r.value, id_field)
        if eid is not None:
            out.setdefault(eid, r.timestamp)
    return out


def throughput(out_times: Iterable[int]) -> float:
    """Sustained events/s: records over the span of their append times (start-up excluded)."""
    ts = sorted(out_times)
    if len(ts) < 2 or ts[-1] == ts[0]:
        return math.nan
    return (len(ts) - 1) / ((ts[-1] - ts[0]) / 1000.0)


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    if not sorted_values:
        return math.nan
    k = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[k - 1]


@dataclass(frozen=True)
class Latency:
    n: int
    missing: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def latency(in_times: dict[str, int], out_times: dict[str, int]) -> Latency:
    """End to end per event: output append time minus input append time."""
    lat = sorted(out_times[e] - t for e, t in in_times.items() if e in out_times)
    return Latency(
        n=len(lat),
        missing=sum(1 for e in in_times if e not in out_times),
        p50_ms=quantile(lat, 0.5),
        p99_ms=quantile(lat, 0.99),
        max_ms=lat[-1] if lat else math.nan,
    )


def state_bytes_per_key(vertex_state: dict[str, int], keyed: Iterable[str], keys: int) -> float:
    """Checkpointed state of the keyed vertices (name contains one of ``keyed``) per key."""
    total = sum(v for name, v in vertex_state.items() if any(k in name for k in keyed))
    return total / keys if keys else math.nan


class ProcessSampler:
    """CPU (cores busy) and peak resident memory of the TaskManagers and their Python
    workers, sampled once a second in a thread between ``start`` and ``stop``."""

    def __init__(self, taskmanagers: Callable[[], Iterable]) -> None:
        self.taskmanagers = taskmanagers  # -> the TaskManager processes (psutil)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_rss = 0
        self._cpu0 = 0.0
        self._t0 = 0.0
        self.cpu_cores = math.nan

    def _processes(self) -> Iterator:
        for p in self.taskmanagers():
            yield p
            try:
                yield from p.children(recursive=True)
            except Exception:  # exited while sampled
                continue

    def _cpu(self) -> float:
        total = 0.0
        for p in self._processes():
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except Exception:  # a worker may exit while sampled
                continue
        return total

    def _rss(self) -> int:
        total = 0
        for p in self._processes():
            try:
                total += p.memory_info().rss
            except Exception:
                continue
        return total

    def start(self) -> ProcessSampler:
        self._cpu0, self._t0 = self._cpu(), time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.peak_rss = max(self.peak_rss, self._rss())

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak_rss = max(self.peak_rss, self._rss())
        self.cpu_cores = (self._cpu() - self._cpu0) / max(time.monotonic() - self._t0, 1e-9)
