"""Kafka sources and sinks built from the job config."""

from __future__ import annotations

import re

from pyflink.common.serialization import ByteArraySchema, SimpleStringSchema
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
)

from rtml.core.config import JobConfig

# The connector jar (flink-sql-connector-kafka) relocates the Kafka client's classes, so a
# class named in a property (a JAAS login module, a callback handler) must use the new name.
KAFKA_PACKAGE = "org.apache.kafka."
SHADED_KAFKA_PACKAGE = "org.apache.flink.kafka.shaded.org.apache.kafka."


def client_properties(cfg: JobConfig) -> list[tuple[str, str]]:
    """[kafka.properties] for the connector: class names moved to the relocated package."""
    shaded = re.compile(r"(?<![\w.])" + re.escape(KAFKA_PACKAGE))
    return [(k, shaded.sub(SHADED_KAFKA_PACKAGE, v)) for k, v in cfg.kafka.properties]


def source(cfg: JobConfig, topic: str, bounded: bool, new_only: bool = False) -> KafkaSource:
    """Resumes from the group's committed offsets; without them, reads the topic from its start
    (or, ``new_only``, only what arrives after the job starts).

    Records reach Python as raw bytes: the parser decodes them strictly, so invalid UTF-8 is
    dead-lettered with its byte offset (a string schema would have replaced it silently).
    Records with a null value (tombstones) carry no event: the byte schema skips them, where
    the string schema would fail the job."""
    reset = KafkaOffsetResetStrategy.LATEST if new_only else KafkaOffsetResetStrategy.EARLIEST
    b = (
        KafkaSource.builder()
        .set_bootstrap_servers(cfg.kafka.bootstrap_servers)
        .set_topics(topic)
        .set_group_id(cfg.kafka.group_id)
        .set_starting_offsets(KafkaOffsetsInitializer.committed_offsets(reset))
        .set_value_only_deserializer(ByteArraySchema())
        .set_property("isolation.level", "read_committed")
        .set_property("commit.offsets.on.checkpoint", "true")
    )
    for k, v in client_properties(cfg):
        b = b.set_property(k, v)
    if bounded:
        b = b.set_bounded(KafkaOffsetsInitializer.latest())
    return b.build()


def sink(cfg: JobConfig, topic: str, transactional_id_prefix: str) -> KafkaSink:
    """``transactional_id_prefix`` must be unique per sink across every job writing to the
    cluster (sinks sharing one fence each other's transactions)."""
    exactly_once = cfg.job.delivery == "exactly-once"
    b = (
        KafkaSink.builder()
        .set_bootstrap_servers(cfg.kafka.bootstrap_servers)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(topic)
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
        .set_delivery_guarantee(
            DeliveryGuarantee.EXACTLY_ONCE if exactly_once else DeliveryGuarantee.AT_LEAST_ONCE
        )
    )
    if exactly_once:
        b = b.set_transactional_id_prefix(transactional_id_prefix).set_property(
            "transaction.timeout.ms", str(cfg.job.transaction_timeout_ms)
        )
    for k, v in client_properties(cfg):
        b = b.set_property(k, v)
    return b.build()
