"""What the bench measures: when a live read_committed reader first sees each output, the
broker's append times, the jobs' processes and Flink's checkpoint statistics. Pure functions
where possible (unit-tested without services)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from deploy.kafka_client import client_settings, iter_records
from rtml.core.config import JobConfig
from rtml.core.errors import ServiceError

# the live reader's fetch wait. The broker answers a waiting fetch as soon as a record (or a
# transaction's commit marker) arrives, so a long wait adds no latency; a short one only
# makes the idle reader ask again and again. Measured 2026-12-01 (150 records, one every
# 50-130 ms, read_committed): 10 ms took 0.15 core of the machine the job runs on, 500 ms
# 0.03, with p50/p99 poll latency 0.4/8.7 ms vs -0.2/5.3 ms (plain), 2.9/100 vs 0.5/53 ms
# (transactional, from the commit's return).
READER_FETCH_WAIT_MS = 500
READER_POLL_MS = 50


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


class Polled(NamedTuple):
    """One record as the live reader received it."""

    poll_ms: int  # wall clock when the poll that returned it came back
    append_ms: int  # the broker's append time (LogAppendTime)
    value: bytes


def first_seen(polled: Iterable[Polled], id_field: str) -> tuple[dict[str, int], dict[str, int]]:
    """event id -> (when the reader first polled a record of it, that record's append time).

    A resent output (at-least-once after a retry) counts from its first sighting; records
    without an event id (the floor forwards malformed input) are left out."""
    polls: dict[str, int] = {}
    appends: dict[str, int] = {}
    for p in polled:
        eid = event_id_of(p.value, id_field)
        if eid is not None and eid not in polls:
            polls[eid] = p.poll_ms
            appends[eid] = p.append_ms
    return polls, appends


class LiveReader:
    """A read_committed consumer of one topic, as a user's service would read the scores:
    assigned to every partition at offset 0 before the load starts, polling in a thread, it
    records for each record the wall-clock time (ms) the poll returned it."""

    def __init__(self, cfg: JobConfig, topic: str, fetch_max_wait_ms: int = READER_FETCH_WAIT_MS):
        self.cfg = cfg
        self.topic = topic
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.polled: list[Polled] = []
        self._stop = threading.Event()
        self._polling = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer = None
        self._error: Exception | None = None

    @property
    def count(self) -> int:
        return len(self.polled)

    def start(self, timeout_s: float = 30.0) -> LiveReader:
        from kafka import KafkaConsumer, TopicPartition

        c = KafkaConsumer(
            bootstrap_servers=self.cfg.kafka.bootstrap_servers,
            isolation_level="read_committed",
            enable_auto_commit=False,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            **client_settings(self.cfg),
        )
        deadline = time.monotonic() + timeout_s
        parts = c.partitions_for_topic(self.topic)
        while not parts and time.monotonic() < deadline:
            time.sleep(0.2)
            parts = c.partitions_for_topic(self.topic)
        if not parts:
            c.close()
            raise ServiceError(
                f"the live reader finds no partitions of {self.topic!r}",
                hint="create the topics first (deploy.kafka_client.ensure_topics)",
            )
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        self._consumer = c
        self._thread = threading.Thread(target=self._run, name="live-reader", daemon=True)
        self._thread.start()
        if not self._polling.wait(timeout_s):
            self.stop()
            raise ServiceError(f"the live reader of {self.topic!r} did not start polling")
        return self

    def _run(self) -> None:
        c = self._consumer
        try:
            while not self._stop.is_set():
                batch = c.poll(timeout_ms=READER_POLL_MS)
                now = time.time_ns() // 1_000_000
                self._polling.set()
                for msgs in batch.values():
                    self.polled.extend(Polled(now, m.timestamp, m.value) for m in msgs)
        except Exception as e:  # reported by stop(): a reader that died measured nothing after
            self._error = e
            self._polling.set()

    def stop(self) -> list[Polled]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        if self._error is not None:
            raise ServiceError(
                f"the live reader of {self.topic!r} failed: {type(self._error).__name__}: "
                f"{self._error}"
            )
        return self.polled


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
    """End to end per event: the output's time (when the reader polled it, or its append
    time) minus the input's append time."""
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
    """CPU (cores busy) and peak resident memory of a job's processes (the TaskManagers and
    their Python workers, or the peer), sampled in a thread between ``start`` and ``stop``.

    CPU is each process's own user + system time at its last sample, summed over every
    process seen (one that exits between samples keeps its last figure), minus what the
    processes present at ``start`` had used by then."""

    def __init__(self, processes: Callable[[], Iterable], interval_s: float = 1.0) -> None:
        self.processes = processes  # -> the job's top processes (psutil); children are added
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_seen: dict[int, float] = {}
        self.peak_rss = 0
        self._cpu0 = 0.0
        self._t0 = 0.0
        self.cpu_seconds = math.nan
        self.cpu_cores = math.nan

    def _tree(self) -> Iterator:
        for p in self.processes():
            yield p
            try:
                yield from p.children(recursive=True)
            except Exception:  # exited while sampled
                continue

    def _sample(self) -> None:
        rss = 0
        for p in self._tree():
            try:
                t = p.cpu_times()
                rss += p.memory_info().rss
            except Exception:  # a process may exit while sampled
                continue
            self._cpu_seen[p.pid] = t.user + t.system
        self.peak_rss = max(self.peak_rss, rss)

    def start(self) -> ProcessSampler:
        self._sample()
        self._cpu0, self._t0 = sum(self._cpu_seen.values()), time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample()
        self.cpu_seconds = sum(self._cpu_seen.values()) - self._cpu0
        self.cpu_cores = self.cpu_seconds / max(time.monotonic() - self._t0, 1e-9)
