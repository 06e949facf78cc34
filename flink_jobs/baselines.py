"""The two baseline job graphs ``rtml bench`` measures the product's pipeline against.

    floor:  events topic -> key by account (raw JSON) -> empty keyed Python function -> scores topic
    naive:  events topic -> parse/validate -> event time
                         -> key by entity 1 -> raw events in list state, features recomputed
                         -> key by entity 2 -> (same)
                         -> score (ONNX Runtime, one call per event) -> scores topic
                         (and the dead letters, as in the product)

Both read and write the same topics as the product (under the bench's topic prefix).
"""

from __future__ import annotations

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment

from flink_jobs.options import RunOptions
from flink_jobs.stages import (
    RECORD,
    control_source,
    parse_events,
    score,
    score_outputs,
    sink_outputs,
    source,
    to_topic,
)
from rtml.core.config import JobConfig
from udfs.flink.baselines import KeyedPassThrough, NaiveEntityFeatures, RawJsonKey
from udfs.flink.records import FieldKey


def build_baseline(env: StreamExecutionEnvironment, cfg: JobConfig, opts: RunOptions) -> None:
    t = cfg.kafka.topics
    raw = source(env, cfg, t.events, opts.bounded, "events")
    first_key = cfg.schema.entities[0].key
    if opts.part == "floor":
        out = (
            raw.key_by(RawJsonKey(first_key), key_type=Types.STRING())
            .process(KeyedPassThrough(), output_type=Types.STRING())
            .uid("floor")
            .name(f"empty keyed function by {first_key}")
        )
        to_topic(cfg, out, t.scores, "scores", opts.part)
        return
    stream, dead = parse_events(raw, cfg, opts.bounded)
    for entity in cfg.schema.entities:
        if entity.name not in cfg.features.entities:
            continue
        stream = (
            stream.key_by(FieldKey(entity.key), key_type=Types.STRING())
            .process(
                NaiveEntityFeatures(entity, cfg.features.for_entity(entity.name)),
                output_type=RECORD,
            )
            .uid(f"naive-features-{entity.name}")
            .name(f"naive features by {entity.key}")
        )
    scored = score(stream, control_source(env, cfg, opts.bounded), cfg, opts)
    sink_outputs(cfg, {**score_outputs(scored), "dead-letters": dead}, opts.part)
