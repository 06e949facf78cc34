"""kafka-python helpers: topic creation, producing, reading topics to the end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rtml.core.config import JobConfig
from rtml.core.errors import ServiceError

# [kafka.properties] are the Java client's (Flink passes them on verbatim); these are the ones
# kafka-python, which rtml's own commands use, understands, translated to its spelling.
_SAME_MEANING = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.kerberos.service.name": "sasl_kerberos_service_name",
    "ssl.key.password": "ssl_password",
}
_JAAS_VALUE = re.compile(r'(username|password)\s*=\s*"((?:[^"\\]|\\.)*)"')


def client_settings(cfg: JobConfig) -> dict[str, Any]:
    """Client security settings from [kafka.properties], in kafka-python's spelling: the
    protocol and mechanism, PLAIN/SCRAM credentials from ``sasl.jaas.config``, PEM trust and
    key stores as files, hostname verification. Other keys concern only the Flink job."""
    props = dict(cfg.kafka.properties)
    out: dict[str, Any] = {_SAME_MEANING[k]: v for k, v in props.items() if k in _SAME_MEANING}
    creds = {
        k: re.sub(r"\\(.)", r"\1", v)  # JAAS quoting: \" is a quote
        for k, v in _JAAS_VALUE.findall(props.get("sasl.jaas.config", ""))
    }
    if "username" in creds:
        out["sasl_plain_username"] = creds["username"]
    if "password" in creds:
        out["sasl_plain_password"] = creds["password"]
    if props.get("ssl.truststore.type", "").upper() == "PEM" and "ssl.truststore.location" in props:
        out["ssl_cafile"] = props["ssl.truststore.location"]
    if props.get("ssl.keystore.type", "").upper() == "PEM" and "ssl.keystore.location" in props:
        out["ssl_certfile"] = out["ssl_keyfile"] = props["ssl.keystore.location"]
    if props.get("ssl.endpoint.identification.algorithm") == "":
        out["ssl_check_hostname"] = False
    return out


def _unreachable(servers: str, e: Exception) -> ServiceError:
    return ServiceError(
        f"cannot reach Kafka at {servers} ({type(e).__name__}: {e})",
        hint="start the local broker with `rtml broker start` or pass --bootstrap",
    )


def _admin(cfg: JobConfig):
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    servers = cfg.kafka.bootstrap_servers
    try:
        return KafkaAdminClient(
            bootstrap_servers=servers,
            client_id="rtml-admin",
            request_timeout_ms=15000,
            **client_settings(cfg),
        )
    except KafkaError as e:
        raise _unreachable(servers, e) from None


def ensure_topics(cfg: JobConfig, topics: Iterable[str] | None = None) -> None:
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(cfg)
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(t, num_partitions=cfg.kafka.partitions, replication_factor=1)
            for t in (topics or cfg.kafka.topics.all())
            if t not in existing
        ]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def delete_topics(cfg: JobConfig, topics: Iterable[str]) -> None:
    """Delete the topics that exist (and their records)."""
    admin = _admin(cfg)
    try:
        doomed = [t for t in topics if t in set(admin.list_topics())]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


def produce(
    cfg: JobConfig,
    topic: str,
    records: Iterable[str | bytes | None],  # None: a tombstone (null value)
    progress: Callable[[int], None] | None = None,
) -> int:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    servers = cfg.kafka.bootstrap_servers
    try:
        p = KafkaProducer(
            bootstrap_servers=servers,
            acks="all",
            linger_ms=20,
            batch_size=256 * 1024,
            **client_settings(cfg),
        )
    except KafkaError as e:
        raise _unreachable(servers, e) from None
    n = 0
    try:
        for rec in records:
            if rec is None:  # a tombstone: a key and no value
                p.send(topic, key=b"tombstone", value=None)
            else:
                p.send(topic, rec.encode("utf-8", "surrogatepass") if isinstance(rec, str) else rec)
            n += 1
            if progress and n % 5000 == 0:
                progress(n)
        p.flush(timeout=120)
    finally:
        p.close()
    return n


def read_topic(cfg: JobConfig, topic: str, timeout_ms: int = 5000, parse: bool = True) -> list[Any]:
    """Every committed record of a topic, from the beginning to its current end."""
    return [
        json.loads(m.value) if parse else m.value.decode("utf-8", "replace")
        for m in iter_records(cfg, topic, timeout_ms)
    ]


def iter_records(cfg: JobConfig, topic: str, timeout_ms: int = 5000) -> Iterator[Any]:
    """Every committed record (kafka-python ``ConsumerRecord``: value, timestamp, ...) of a
    topic, from the beginning to its end offsets as of the call."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=timeout_ms,
        **client_settings(cfg),
    )
    try:
        parts = c.partitions_for_topic(topic)
        if not parts:
            return
        tps = [TopicPartition(topic, p) for p in parts]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        end = c.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        while pending:
            batch = c.poll(timeout_ms=timeout_ms)
            if not batch:
                break
            for msgs in batch.values():
                yield from msgs
            pending = {tp for tp in pending if c.position(tp) < end[tp]}
    finally:
        c.close()


def end_offsets(cfg: JobConfig, topics: Iterable[str]) -> dict[str, int]:
    """Topic -> its end offsets summed over partitions (the last stable offsets, so records
    of open transactions are not counted yet)."""
    return _offsets(cfg, topics, lambda c, tps: c.end_offsets(tps))


def committed_offsets(cfg: JobConfig, topics: Iterable[str]) -> dict[str, int]:
    """Topic -> the job's consumer group's committed offsets summed over partitions (a Flink
    job commits them when a checkpoint completes)."""
    return _offsets(
        cfg, topics, lambda c, tps: {tp: c.committed(tp) or 0 for tp in tps}, cfg.kafka.group_id
    )


def _offsets(cfg: JobConfig, topics: Iterable[str], read, group: str | None = None):
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=cfg.kafka.bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **client_settings(cfg),
    )
    try:
        out = {}
        for t in topics:
            parts = c.partitions_for_topic(t) or set()
            tps = [TopicPartition(t, p) for p in parts]
            out[t] = sum(read(c, tps).values()) if tps else 0
        return out
    finally:
        c.close()
