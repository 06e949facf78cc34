"""(d) of `rtml bench`: what a user might write instead of Flink.

The same feature code and model in one plain Python process, a kafka-python consumer loop
with at-least-once delivery:

    poll the events topic -> parse and validate (bad -> dead-letter topic)
                          -> per-key features, the job's ordering, lateness and duplicate
                             rules (FeatureReplay: late -> late topic, resent -> dead letters)
                          -> score with the registered model (the Flink operator's call)
                          -> the Flink job's score record -> scores topic
    after each poll batch: flush the producer, then commit the consumer's offsets

A benchmark baseline, not product code: it keeps its state in memory (a restart starts the
features from nothing) and applies events on arrival (``feature_order = "arrival"``).

    python -m rtml.cli.bench.peer --config CFG --bootstrap HOST:PORT --topic-prefix P
                              --registry DIR [--bounded] [--stats FILE]

It prints ``rtml peer: ready`` once its consumer is assigned and the model loaded, and on
SIGTERM finishes its batch, commits and exits; ``--stats`` then holds its counts and state.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deploy.kafka_client import client_settings
from rtml.core.config import Entity, JobConfig, load_config
from rtml.core.errors import JobError, RecordError, RtmlError, ServiceError
from udfs.features.offline import FeatureReplay
from udfs.model_slots import score_timed
from udfs.serving import ServingModel, load_serving_model
from udfs.validation import dead_letter, parse_event

READY = "rtml peer: ready"
POLL_MS = 100
GROUP_SUFFIX = "-peer"
STATE_NAME = "peer features"  # the peer's "vertex" in the bench's state-per-key figure


def to_json(record: Any) -> str:
    """Strict JSON with NaN/inf as null, as the Flink job writes (``udfs.flink.records``,
    not imported: it pulls in pyflink, which a plain consumer would not load)."""
    return json.dumps(_clean(record), separators=(",", ":"), allow_nan=False, default=str)


def _clean(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


@dataclass(frozen=True)
class Rejection:
    """Why the feature stage turns an event away, as the job's keyed operators decide."""

    kind: str  # "late" or "duplicate"
    entity: Entity
    key: str
    newest_ts: int


def rejection(replay: FeatureReplay, event: Mapping[str, Any]) -> Rejection | None:
    """What ``replay.observe(event)`` will turn the event away for, read before it runs (it
    only returns None): per entity in order, a late event for the key, or, for the first
    entity, an id the key has seen. Earlier entities count an event a later one finds late,
    in the replay as in the job, so ``observe`` still runs for a rejected event."""
    ts = int(event[replay.event_time])
    for i, (entity, _) in enumerate(replay.stages):
        key = str(event[entity.key])
        st = replay.state.get((entity.name, key))
        if st is None or st.is_expired(ts):
            continue
        assert st.newest_ts is not None
        if st.is_late(ts):
            return Rejection("late", entity, key, st.newest_ts)
        eid = event.get(replay.event_id)
        if i == 0 and eid is not None and st.is_duplicate(str(eid)):
            return Rejection("duplicate", entity, key, st.newest_ts)
    return None


@dataclass
class PeerCounts:
    read: int = 0
    scored: int = 0
    dead_lettered: int = 0
    late: int = 0
    duplicates: int = 0


class PeerScorer:
    """Per input record, the one output the Flink scoring job would write: (topic, JSON)."""

    def __init__(self, cfg: JobConfig, model: ServingModel) -> None:
        self.cfg = cfg
        self.model = model
        self.replay = FeatureReplay.for_job(cfg)
        self.counts = PeerCounts()
        s = cfg.schema
        self.passthrough = [s.event_id, s.event_time, *(e.key for e in s.entities)] + (
            [s.sensitive_attribute] if s.sensitive_attribute else []
        )
        self.lateness_s = cfg.features.allowed_lateness_ms // 1000

    def handle(self, raw: bytes) -> tuple[str, str]:
        t = self.cfg.kafka.topics
        self.counts.read += 1
        try:
            event = parse_event(raw, self.cfg.schema)
        except RecordError as e:
            return self._dead(raw, e)
        except Exception as e:  # as the job's parse operator: a bug must not lose the record
            err = f"unexpected {type(e).__name__} while parsing: {e}"
            return self._dead(raw, RecordError("internal_error", err))
        why = rejection(self.replay, event)
        features = self.replay.observe(event)
        if features is None:
            if why is None:  # the replay and the read-ahead disagree: a bug here
                raise JobError("the feature replay rejected an event for no reason the peer knows")
            return self._rejected(event, why)
        event.update(features)
        return t.scores, to_json(self.score_record(event))

    def score_record(self, event: dict[str, Any]) -> dict[str, Any]:
        """The Flink job's score record (``ScoreFunction.process_element``)."""
        m = self.model
        live = score_timed(m, event)
        self.counts.scored += 1
        out = {k: event[k] for k in self.passthrough}
        out["score"] = live.score
        out["flagged"] = int(live.score >= self.cfg.model.threshold)
        out["model"] = m.name
        out["model_version"] = m.version
        out["inputs"] = {k: event.get(k) for k in m.inputs}
        return out

    def _dead(self, raw: bytes, err: RecordError) -> tuple[str, str]:
        self.counts.dead_lettered += 1
        t = self.cfg.kafka.topics
        return t.dead_letter, to_json(dead_letter(raw, err, t.events))

    def _rejected(self, event: dict[str, Any], why: Rejection) -> tuple[str, str]:
        t = self.cfg.kafka.topics
        if why.kind == "duplicate":
            self.counts.duplicates += 1
            id_field = self.cfg.schema.event_id
            eid = str(event[id_field])
            err = RecordError(
                "duplicate_event_id",
                f"record {eid}: field '{id_field}' repeats an event already scored for {why.entity.key}={why.key} -> resend nothing that was delivered (idempotent producer), or give each event a new id",
                field=id_field,
                record_id=eid,
            )
            self.counts.dead_lettered += 1
            return t.dead_letter, to_json(dead_letter(to_json(event), err, t.events))
        self.counts.late += 1
        ts = int(event[self.cfg.schema.event_time])
        late = {
            "reason": f"event is {(why.newest_ts - ts) // 1000}s older than the newest event of {why.entity.key}={why.key}, beyond the allowed lateness of {self.lateness_s}s",
            "entity": why.entity.name,
            "key": why.key,
            "event": event,
        }
        return t.late, to_json(late)

    def state_bytes(self) -> tuple[int, int]:
        """(keys held, their feature state's snapshot bytes in all)."""
        return len(self.replay.state), sum(len(s.snapshot()) for s in self.replay.state.values())


def _consumer(cfg: JobConfig):
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        group_id=cfg.kafka.group_id + GROUP_SUFFIX,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **client_settings(cfg),
    )


def _producer(cfg: JobConfig):
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        acks="all",
        # the batch is flushed as soon as it is sent: lingering costs no latency, and keeps the
        # I/O thread from draining (and locking) the accumulator after every single send
        linger_ms=1_000,
        batch_size=256 * 1024,
        **client_settings(cfg),
    )


def _assign(consumer, topic: str, timeout_s: float = 30.0) -> list:
    from kafka import TopicPartition

    deadline = time.monotonic() + timeout_s
    parts = consumer.partitions_for_topic(topic)
    while not parts and time.monotonic() < deadline:
        time.sleep(0.2)
        parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise ServiceError(
            f"topic {topic!r} has no partitions", hint="create the topics first (`rtml produce`)"
        )
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    for tp in tps:
        consumer.position(tp)  # resolves the committed offset (or the start) now
    return tps


def run(cfg: JobConfig, model: ServingModel, bounded: bool, stop: threading.Event) -> PeerScorer:
    """The loop: poll, handle each record, send the outputs; after each batch flush the
    producer, then commit the offsets (at-least-once). Bounded: until the end offsets as of
    the start; otherwise until ``stop``."""
    scorer = PeerScorer(cfg, model)
    consumer, producer = _consumer(cfg), _producer(cfg)
    try:
        tps = _assign(consumer, cfg.kafka.topics.events)
        ends = consumer.end_offsets(tps) if bounded else {}
        print(READY, flush=True)
        while not stop.is_set():
            if bounded and all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
            batch = consumer.poll(timeout_ms=POLL_MS)
            if not batch:
                continue
            # the batch's outputs are sent after it is scored: the producer's I/O thread,
            # woken by each send, would otherwise contend for the GIL with every ONNX call
            # (measured: 1.3 ms per call instead of 0.13)
            outputs = [scorer.handle(r.value) for records in batch.values() for r in records]
            for topic, out in outputs:
                producer.send(topic, out.encode("utf-8"))
            producer.flush()
            consumer.commit()
    finally:
        producer.close()
        consumer.close()
    return scorer


def _stats(scorer: PeerScorer, took_s: float) -> dict[str, Any]:
    import resource

    keys, state = scorer.state_bytes()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        **asdict(scorer.counts),
        "keys": keys,
        "state_bytes": state,
        "seconds": took_s,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_bytes": usage.ru_maxrss * 1024,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rtml.cli.bench.peer",
        description="rtml bench (d): the scoring job as a plain consumer",
    )
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--registry", type=Path, required=True)
    p.add_argument("--model-version", default="current")
    p.add_argument("--bootstrap", default=None, help="override [kafka] bootstrap_servers")
    p.add_argument("--topic-prefix", default="", help="prefix every topic and the group id")
    p.add_argument("--bounded", action="store_true", help="stop at the end offsets as of start")
    p.add_argument("--stats", type=Path, default=None, help="write counts and state here (JSON)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from kafka.errors import KafkaError

    a = parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t0 = time.monotonic()
    try:
        cfg = load_config(a.config).with_connection(a.bootstrap, a.topic_prefix)
        m = cfg.model
        model = load_serving_model(
            a.registry, m.name, a.model_version, cfg.model_inputs, m.intra_op_threads
        )
        scorer = run(cfg, model, a.bounded, stop)
    except KafkaError as e:
        print(f"rtml: error: Kafka: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return ServiceError.exit_code
    except RtmlError as e:
        print(f"rtml: error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    stats = _stats(scorer, time.monotonic() - t0)
    if a.stats:
        a.stats.write_text(json.dumps(stats, indent=2) + "\n")
    print(f"rtml peer: done {json.dumps(stats)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
