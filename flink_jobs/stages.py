"""The building blocks of rtml's job graphs: sources, parsers, the feature stages, the
scoring stage, the sinks and the slot-sharing groups, each with its stable uid and name.

``flink_jobs.graph`` wires the product's jobs from them and ``flink_jobs.baselines`` the
benchmark's; neither reaches into the other. Every stateful operator has a stable uid
(savepoints map state by uid) and a name: the feature stages keep ``features-<entity>``
whatever is fused into them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pyflink.common import Duration, Types, WatermarkStrategy
from pyflink.datastream import (
    BroadcastStream,
    DataStream,
    KeyedStream,
    OutputTag,
    StreamExecutionEnvironment,
)
from pyflink.datastream.connectors.base import Sink

from flink_jobs import kafka_io
from flink_jobs.event_time import json_field_watermarks
from flink_jobs.options import RunOptions
from flink_jobs.tags import (
    DEAD_LETTERS,
    LATE_EVENTS,
    MODEL_EVENTS,
    SCORES_JSON,
    SHADOW,
)
from rtml.core.config import Entity, JobConfig
from udfs.flink.features import EntityFeaturesFunction, FeatureStage
from udfs.flink.parse import ParseRecords
from udfs.flink.records import FieldKey, FieldTimestamp
from udfs.flink.scoring import ACTIVE_MODEL, ScoreFunction, Scorer
from udfs.validation import parse_event, parse_score

RECORD = Types.PICKLED_BYTE_ARRAY()  # in-cluster records between Python operators
IDLE_SOURCE_TIMEOUT_S = 30
# The control topic is quiet almost always: idle after a second, so that it never holds the
# scoring operator's watermark back (its records are timed by their Kafka timestamps).
IDLE_CONTROL_TIMEOUT_S = 1
# Monitors get their own slot, hence their own Python worker (Evidently's imports and memory
# stay out of the scoring worker). They still slow scoring down through the shared stream and
# CPU: measured in benchmarks/monitor_latency.py, see docs/limits.md.
MONITORING_SLOTS = "monitoring"
# With [job] python_workers = 2, the stages after the first keyed one (further entities'
# features, scoring) run in this slot sharing group: their own slot, so their own Python
# worker process. In process mode all Python operators of a slot share one worker, and one
# worker is one core: measured, that worker was the scoring pipeline's bottleneck.
SCORING_SLOTS = "scoring"


def second_worker(stream: DataStream, cfg: JobConfig) -> DataStream:
    return stream.slot_sharing_group(SCORING_SLOTS) if cfg.job.python_workers == 2 else stream


def field_watermarks(
    cfg: JobConfig, time_field: str, bounded: bool, idleness: bool = True
) -> WatermarkStrategy:
    """Bounded out-of-orderness on the record's time field; idleness detection when unbounded
    (unless ``idleness`` is off).

    The timestamp assigner goes on last: PyFlink's ``with_idleness`` returns a new strategy
    without the Python assigner, which would silently time records by their Kafka timestamp."""
    ws = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(cfg.schema.max_out_of_orderness_ms)
    )
    if not bounded and idleness:
        ws = ws.with_idleness(Duration.of_seconds(IDLE_SOURCE_TIMEOUT_S))
    return ws.with_timestamp_assigner(FieldTimestamp(time_field))


def side_output(stream: DataStream, tag: OutputTag) -> DataStream:
    """The side output as the JVM holds it. PyFlink's ``get_side_output`` appends a Python
    identity map (one more Python operator, so one more bundle's wait, in front of every
    sink); a side output of JSON strings reaches a Kafka sink without it."""
    return DataStream(stream._j_data_stream.getSideOutput(tag.get_java_output_tag()))


def union(first: DataStream, *rest: DataStream) -> DataStream:
    return first.union(*rest) if rest else first


def to_topic(cfg: JobConfig, stream: DataStream, topic: str, uid: str, part: str) -> None:
    """Sink a stream of JSON strings, produced directly by the Python function upstream (a side
    output or its main output: no extra Python map operator in front of a sink)."""
    owner = cfg.job.name if part == "all" else f"{cfg.job.name}-{part}"
    stream.sink_to(kafka_io.sink(cfg, topic, f"{owner}-{uid}-{topic}")).uid(f"sink-{uid}").name(
        f"{uid} -> {topic}"
    )


def feature_entities(cfg: JobConfig) -> list[Entity]:
    return [e for e in cfg.schema.entities if e.name in cfg.features.entities]


def is_ordered(cfg: JobConfig) -> bool:
    return cfg.job.feature_order == "event-time"


def feature_stage(cfg: JobConfig, entity: Entity, first: bool) -> FeatureStage:
    """One entity's feature logic; the first entity's also dead-letters resent events."""
    return FeatureStage(
        entity,
        cfg.features.for_entity(entity.name),
        LATE_EVENTS,
        DEAD_LETTERS,
        ordered=is_ordered(cfg),
        dedupe=first,
        id_field=cfg.schema.event_id,
        time_field=cfg.schema.event_time,
        out_of_orderness_ms=cfg.schema.max_out_of_orderness_ms,
        source=cfg.kafka.topics.events,
        pipelined_state_writes=cfg.job.pipelined_state_writes,
    )


def events_for_features(raw: DataStream, cfg: JobConfig) -> DataStream:
    """Parse and validate events; dead letters stay on the stream as tagged records (so the
    parser has one consumer and fuses with the first ``key_by``).

    In event-time order ``raw`` carries the watermarks already: the events source makes them
    per Kafka partition (``flink_jobs.event_time``; ``with_event_time`` for a stream from
    elsewhere). They have no idleness: the feature stages hold each event until the watermark
    passes it, and Flink lets an idle input's downstream watermark run past records still
    held upstream (measured: after a 30 s pause and a drain, a fairness window lost one
    prediction this way). A quiet partition therefore holds the features back until events
    come again, as event time means."""
    return (
        raw.process(
            ParseRecords(
                partial(parse_event, schema=cfg.schema),
                DEAD_LETTERS,
                cfg.kafka.topics.events,
                inline=True,
            ),
            output_type=RECORD,
        )
        .uid("parse-events")
        .name("parse and validate events")
    )


def with_event_time(stream: DataStream, cfg: JobConfig) -> DataStream:
    """Event-time order's watermarks on a stream of raw JSON records that did not come from
    the events source (a test's collection): the JVM timestamp assigner, no Python stage."""
    return stream.assign_timestamps_and_watermarks(json_field_watermarks(cfg))


def middle_feature_stage(
    stream: DataStream, cfg: JobConfig, entity: Entity, first: bool
) -> DataStream:
    """An entity's feature stage that is not the last: its one consumer is the next
    ``key_by``, so PyFlink fuses the two into one Python stage."""
    return (
        stream.key_by(FieldKey(entity.key), key_type=Types.STRING())
        .process(EntityFeaturesFunction(feature_stage(cfg, entity, first)), output_type=RECORD)
        .uid(f"features-{entity.name}")
        .name(f"features by {entity.key}")
    )


def keyed_by_last_entity(stream: DataStream, cfg: JobConfig) -> tuple[KeyedStream, Entity]:
    """Every entity's feature stage but the last (each fused with the next ``key_by``);
    returns the stream keyed by the last entity, and that entity."""
    entities = feature_entities(cfg)
    for i, entity in enumerate(entities[:-1]):
        stream = middle_feature_stage(stream, cfg, entity, i == 0)
    last = entities[-1]
    return stream.key_by(FieldKey(last.key), key_type=Types.STRING()), last


def add_features(stream: DataStream, cfg: JobConfig) -> tuple[DataStream, DataStream, DataStream]:
    """The feature stages alone (no scoring), as the scoring path has them: ``stream`` from
    ``events_for_features``. Returns the enriched events, the late events and the dead
    letters (malformed and resent events), split off by the last stage."""
    keyed, last = keyed_by_last_entity(stream, cfg)
    stage = feature_stage(cfg, last, len(feature_entities(cfg)) == 1)
    enriched = (
        keyed.process(
            EntityFeaturesFunction(stage, split=(DEAD_LETTERS, LATE_EVENTS)), output_type=RECORD
        )
        .uid(f"features-{last.name}")
        .name(f"features by {last.key}")
    )
    return (
        enriched,
        side_output(enriched, LATE_EVENTS),
        side_output(enriched, DEAD_LETTERS),
    )


@dataclass(frozen=True)
class Ingest:
    """How one input topic is read: its parser, dead-letter tag, time field and operator names."""

    parse: Callable[[str], dict]
    dead_letters: OutputTag
    time_field: str
    name: str  # "events" -> uids source-events, parse-events
    time_uid: str  # "event-time"


def source(
    env: StreamExecutionEnvironment,
    cfg: JobConfig,
    topic: str,
    bounded: bool,
    name: str,
    watermarks: WatermarkStrategy | None = None,
) -> DataStream:
    """A topic's Kafka source, uid ``source-<name>``; without ``watermarks``, none."""
    return env.from_source(
        kafka_io.source(cfg, topic, bounded),
        watermarks or WatermarkStrategy.no_watermarks(),
        f"{name} source",
    ).uid(f"source-{name}")


def events_source(
    env: StreamExecutionEnvironment, cfg: JobConfig, bounded: bool, name: str = "events"
) -> DataStream:
    """The events topic (source uid ``source-<name>``). In event-time order the source makes the watermarks, per partition,
    at as many subtasks as the topic has partitions (up to the job's parallelism): a subtask
    without a partition would hold the watermark back for good; the parsers after it are
    fed round-robin."""
    if not is_ordered(cfg):
        return source(env, cfg, cfg.kafka.topics.events, bounded, name)
    src = source(env, cfg, cfg.kafka.topics.events, bounded, name, json_field_watermarks(cfg))
    if cfg.kafka.partitions < cfg.job.parallelism:
        src = src.set_parallelism(cfg.kafka.partitions)
    return src


def parse_and_time(
    raw: DataStream, cfg: JobConfig, topic: str, ingest: Ingest, bounded: bool
) -> tuple[DataStream, DataStream]:
    """Parse and validate, then assign event time; returns (records, dead letters)."""
    parsed = (
        raw.process(ParseRecords(ingest.parse, ingest.dead_letters, topic), output_type=RECORD)
        .uid(f"parse-{ingest.name}")
        .name(f"parse and validate {ingest.name}")
    )
    timed = (
        parsed.assign_timestamps_and_watermarks(field_watermarks(cfg, ingest.time_field, bounded))
        .uid(ingest.time_uid)
        .name(ingest.time_uid.replace("-", " "))
    )
    return timed, side_output(parsed, ingest.dead_letters)


def parse_events(raw: DataStream, cfg: JobConfig, bounded: bool) -> tuple[DataStream, DataStream]:
    """Parse and validate events, then assign event time; returns (events, dead letters)."""
    ingest = Ingest(
        partial(parse_event, schema=cfg.schema),
        DEAD_LETTERS,
        cfg.schema.event_time,
        "events",
        "event-time",
    )
    return parse_and_time(raw, cfg, cfg.kafka.topics.events, ingest, bounded)


def scorer(cfg: JobConfig, opts: RunOptions) -> Scorer:
    return Scorer(
        cfg,
        opts.registry,
        opts.model_version,
        SCORES_JSON,
        MODEL_EVENTS,
        SHADOW,
        emit_records=opts.part == "all",
        timed_by_arrival=not is_ordered(cfg),
    )


def score_outputs(scored: DataStream) -> dict[str, DataStream]:
    """The scoring operator's side outputs, by output name (``OUTPUT_TOPICS``)."""
    return {
        "scores": side_output(scored, SCORES_JSON),
        "model-events": side_output(scored, MODEL_EVENTS),
        "shadow": side_output(scored, SHADOW),
    }


def control_source(env: StreamExecutionEnvironment, cfg: JobConfig, bounded: bool) -> DataStream:
    """The control topic, from the records that arrive after the job first starts (a restored
    job resumes at its checkpointed offsets)."""
    watermarks = WatermarkStrategy.for_monotonous_timestamps().with_idleness(
        Duration.of_seconds(IDLE_CONTROL_TIMEOUT_S)
    )
    src = kafka_io.source(cfg, cfg.kafka.topics.control, bounded, new_only=True)
    return (
        env.from_source(src, watermarks, "control source").uid("source-control").set_parallelism(1)
    )


def model_switches(control: DataStream) -> BroadcastStream:
    """Control records (JSON model switches), broadcast to every scoring subtask."""
    return control.broadcast(ACTIVE_MODEL)


def score(stream: DataStream, control: DataStream, cfg: JobConfig, opts: RunOptions) -> DataStream:
    """Score every event of an unkeyed stream (its own Python stage) with the model the
    control records last activated; ``score_outputs`` has the score records, the model
    switches and the shadow pairs, the main output the scored events (for the monitors)."""
    scored = (
        stream.connect(model_switches(control))
        .process(ScoreFunction(scorer(cfg, opts)), output_type=RECORD)
        .uid("score")
        .name("score (ONNX Runtime)")
    )
    return second_worker(scored, cfg)


def parse_scores(raw: DataStream, cfg: JobConfig, bounded: bool) -> tuple[DataStream, DataStream]:
    """Score records (JSON, as the scores topic holds them) parsed and timed by their event
    time, for the monitors of a monitoring job; returns (scored events, dead letters)."""
    ingest = Ingest(
        partial(parse_score, schema=cfg.schema),
        DEAD_LETTERS,
        cfg.schema.event_time,
        "scores",
        "score-time",
    )
    return parse_and_time(raw, cfg, cfg.kafka.topics.scores, ingest, bounded)


# every output of rtml's job graphs, by name (its sink's uid is ``sink-<name>``), and the
# [kafka.topics] entry it goes to
OUTPUT_TOPICS = {
    "scores": "scores",
    "model-events": "alerts",
    "shadow": "shadow",
    "dead-letters": "dead_letter",
    "late-events": "late",
    "score-dead-letters": "dead_letter",
    "label-dead-letters": "dead_letter",
    "fairness": "fairness",
    "drift": "drift",
    "alerts": "alerts",
}


def sink_outputs(cfg: JobConfig, outputs: dict[str, DataStream], part: str) -> None:
    """Each output (a stream of JSON strings) to its topic."""
    for name, stream in outputs.items():
        to_topic(cfg, stream, getattr(cfg.kafka.topics, OUTPUT_TOPICS[name]), name, part)


DISCARDING_SINK = "org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink"


def discard(stream: DataStream, name: str) -> None:
    """A sink that drops every record (uid ``discard-<name>``)."""
    stream.sink_to(Sink(DISCARDING_SINK)).uid(f"discard-{name}").name(f"{name} (discarded)")
