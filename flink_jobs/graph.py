"""The rtml job graph.

The scoring path, in as few Python stages as the entities allow (a Python stage holds its
records for up to a bundle, so latency grows with the stage count: ``rtml plan`` shows it):

    events topic -> [parse/validate + key by entity 1]                      (Python stage 1)
                 -> [entity 1 features (keyed state) + key by entity 2]     (Python stage 2)
                 -> [entity 2 features + score (ONNX Runtime)]              (Python stage 3)
                        ^-- control topic (broadcast state: switch model version, start or
                            stop a shadow candidate)
                 the last stage's side outputs -> scores, dead-letter, late-events, alerts
                                                  (model switches), shadow topics

PyFlink fuses a Python operator into the next one only when it has a single consumer, so
dead letters and late events travel as tagged records on the main stream and only the last
stage has side outputs. With ``feature_order = "arrival"`` (the default) nothing on the
scoring path needs watermarks: event time is read from the record's field, idle keys expire
on processing-time timers, and the record's timestamp stays the Kafka append time (the
end-to-end latency metric). ``"event-time"`` reads the event time in the Kafka source (a JVM
timestamp assigner, a watermark per partition: ``flink_jobs.event_time``) and keeps the last
feature stage and the scoring apart.

The monitors (fairness per window with late labels joined; drift per window with Evidently)
read the scored stream in a one-job deployment or the scores topic as their own job, in
their own slot-sharing group (their own slot and Python worker).

Every stateful operator has a stable uid (savepoints map state by uid) and a name: the
feature stages keep ``features-<entity>`` whatever is fused into them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from pyflink.common import Duration, Types, WatermarkStrategy
from pyflink.datastream import DataStream, KeyedStream, OutputTag, StreamExecutionEnvironment

from flink_jobs import kafka_io
from flink_jobs.event_time import json_field_watermarks
from flink_jobs.options import RunOptions
from flink_jobs.tags import (
    ALERTS,
    DEAD_LETTERS,
    LABEL_DEAD_LETTERS,
    LATE_EVENTS,
    MODEL_EVENTS,
    SCORES_JSON,
    SHADOW,
)
from rtml.config import Entity, JobConfig
from udfs.flink.features import EntityFeaturesFunction, FeatureStage
from udfs.flink.monitoring import DriftFunction, FairnessFunction
from udfs.flink.parse import ParseRecords
from udfs.flink.records import ConstantKey, FieldKey, FieldTimestamp
from udfs.flink.scoring import ACTIVE_MODEL, FeaturesAndScoreFunction, ScoreFunction, Scorer
from udfs.serving import load_serving_model
from udfs.validation import parse_event, parse_label, parse_score

RECORD = Types.PICKLED_BYTE_ARRAY()  # in-cluster records between Python operators
IDLE_SOURCE_TIMEOUT_S = 30
# The control topic is quiet almost always: idle after a second, so that it never holds the
# scoring operator's watermark back (its records are timed by their Kafka timestamps).
IDLE_CONTROL_TIMEOUT_S = 1
# Monitors get their own slot, hence their own Python worker (Evidently's imports and memory
# stay out of the scoring worker). They still slow scoring down through the shared stream and
# CPU: measured in benchmarks/monitor_latency.py, see README "Limits".
MONITORING_SLOTS = "monitoring"
# With [job] python_workers = 2, the stages after the first keyed one (further entities'
# features, scoring) run in this slot sharing group: their own slot, so their own Python
# worker process. In process mode all Python operators of a slot share one worker, and one
# worker is one core: measured, that worker was the scoring pipeline's bottleneck.
SCORING_SLOTS = "scoring"


def _second_worker(stream: DataStream, cfg: JobConfig) -> DataStream:
    return stream.slot_sharing_group(SCORING_SLOTS) if cfg.job.python_workers == 2 else stream


def _watermarks(
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


def _union(first: DataStream, *rest: DataStream) -> DataStream:
    return first.union(*rest) if rest else first


def _to_topic(cfg: JobConfig, stream: DataStream, topic: str, uid: str, part: str) -> None:
    """Sink a stream of JSON strings, produced directly by the Python function upstream (a side
    output or its main output: no extra Python map operator in front of a sink)."""
    owner = cfg.job.name if part == "all" else f"{cfg.job.name}-{part}"
    stream.sink_to(kafka_io.sink(cfg, topic, f"{owner}-{uid}-{topic}")).uid(f"sink-{uid}").name(
        f"{uid} -> {topic}"
    )


def _feature_entities(cfg: JobConfig) -> list[Entity]:
    return [e for e in cfg.schema.entities if e.name in cfg.features.entities]


def _ordered(cfg: JobConfig) -> bool:
    return cfg.job.feature_order == "event-time"


def feature_stage(cfg: JobConfig, entity: Entity, first: bool) -> FeatureStage:
    """One entity's feature logic; the first entity's also dead-letters resent events."""
    return FeatureStage(
        entity,
        cfg.features.for_entity(entity.name),
        LATE_EVENTS,
        DEAD_LETTERS,
        ordered=_ordered(cfg),
        dedupe=first,
        id_field=cfg.schema.event_id,
        time_field=cfg.schema.event_time,
        out_of_orderness_ms=cfg.schema.max_out_of_orderness_ms,
        source=cfg.kafka.topics.events,
    )


def events_for_features(raw: DataStream, cfg: JobConfig, bounded: bool) -> DataStream:
    """Parse and validate events; dead letters stay on the stream as tagged records (so the
    parser has one consumer and fuses with the first ``key_by``).

    In event-time order ``raw`` carries the watermarks already: the events source makes them
    per Kafka partition (``flink_jobs.event_time``; ``with_event_time`` for a stream from
    elsewhere). They have no idleness: the feature stages hold each event until the watermark
    passes it, and Flink lets an idle input's downstream watermark run past records still
    held upstream (measured: after a 30 s pause and a drain, a fairness window lost one
    prediction this way). A quiet partition therefore holds the features back until events
    come again, as event time means."""
    del bounded  # the parser is the same for a bounded replay
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
    entities = _feature_entities(cfg)
    for i, entity in enumerate(entities[:-1]):
        stream = middle_feature_stage(stream, cfg, entity, i == 0)
    last = entities[-1]
    return stream.key_by(FieldKey(last.key), key_type=Types.STRING()), last


def add_features(stream: DataStream, cfg: JobConfig) -> tuple[DataStream, DataStream, DataStream]:
    """The feature stages alone (no scoring), as the scoring path has them: ``stream`` from
    ``events_for_features``. Returns the enriched events, the late events and the dead
    letters (malformed and resent events), split off by the last stage."""
    keyed, last = keyed_by_last_entity(stream, cfg)
    stage = feature_stage(cfg, last, len(_feature_entities(cfg)) == 1)
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


def _source(
    env: StreamExecutionEnvironment, cfg: JobConfig, topic: str, bounded: bool, name: str
) -> DataStream:
    return env.from_source(
        kafka_io.source(cfg, topic, bounded), WatermarkStrategy.no_watermarks(), f"{name} source"
    ).uid(f"source-{name}")


def _events_source(env: StreamExecutionEnvironment, cfg: JobConfig, bounded: bool) -> DataStream:
    """The events topic. In event-time order the source makes the watermarks, per partition,
    at as many subtasks as the topic has partitions (up to the job's parallelism): a subtask
    without a partition would hold the watermark back for good; the parsers after it are
    fed round-robin."""
    if not _ordered(cfg):
        return _source(env, cfg, cfg.kafka.topics.events, bounded, "events")
    src = env.from_source(
        kafka_io.source(cfg, cfg.kafka.topics.events, bounded),
        json_field_watermarks(cfg),
        "events source",
    ).uid("source-events")
    if cfg.kafka.partitions < cfg.job.parallelism:
        src = src.set_parallelism(cfg.kafka.partitions)
    return src


def _parse_and_time(
    raw: DataStream, cfg: JobConfig, topic: str, ingest: Ingest, bounded: bool
) -> tuple[DataStream, DataStream]:
    """Parse and validate, then assign event time; returns (records, dead letters)."""
    parsed = (
        raw.process(ParseRecords(ingest.parse, ingest.dead_letters, topic), output_type=RECORD)
        .uid(f"parse-{ingest.name}")
        .name(f"parse and validate {ingest.name}")
    )
    timed = (
        parsed.assign_timestamps_and_watermarks(_watermarks(cfg, ingest.time_field, bounded))
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
    return _parse_and_time(raw, cfg, cfg.kafka.topics.events, ingest, bounded)


def check_model(cfg: JobConfig, opts: RunOptions) -> int:
    """Refuse to build a job whose model does not fit it; returns the favourable outcome."""
    m = load_serving_model(opts.registry, cfg.model.name, opts.model_version, cfg.model_inputs)
    return m.metadata.favourable_outcome


def build(
    env: StreamExecutionEnvironment,
    cfg: JobConfig,
    opts: RunOptions,
    *,
    verify_model: bool = True,
) -> None:
    """The job's graph: ``opts.part`` is "all" (one job), "scoring" or "monitoring" (or a
    benchmark baseline, "floor" or "naive": see ``flink_jobs.baselines``).

    Run as two jobs, the monitors read the scores topic and can never slow scoring down (in
    one job they share its stream and CPU: measured in benchmarks/monitor_latency.py)."""
    favourable = check_model(cfg, opts) if verify_model else 0  # rtml plan builds unverified
    if opts.part in ("floor", "naive"):
        from flink_jobs.baselines import build_baseline

        build_baseline(env, cfg, opts)
        return
    scored = None
    if opts.part in ("all", "scoring"):
        scored = _scoring(env, cfg, opts)
    if opts.part in ("all", "monitoring") and cfg.monitoring.enabled:
        if scored is not None and not _ordered(cfg):
            # arrival order has no watermarks on the scoring path; the monitors' windows need
            # them (event-time order's come through the feature stages, after their events)
            scored = (
                scored.assign_timestamps_and_watermarks(
                    _watermarks(cfg, cfg.schema.event_time, opts.bounded)
                )
                .uid("scored-time")
                .name("scored event time")
                .slot_sharing_group(MONITORING_SLOTS)
            )
        elif scored is None:
            cfg = replace(
                cfg, kafka=replace(cfg.kafka, group_id=cfg.kafka.group_id + "-monitoring")
            )
            scored = _scores_from_topic(env, cfg, opts)
        _monitoring(env, cfg, opts, scored, favourable)


def _scoring(env: StreamExecutionEnvironment, cfg: JobConfig, opts: RunOptions) -> DataStream:
    """The scoring path; returns the scored stream (read by the monitors of a one-job run)."""
    t = cfg.kafka.topics
    raw = _events_source(env, cfg, opts.bounded)
    if not _feature_entities(cfg):  # nothing keyed: parse, then score
        stream, dead = parse_events(raw, cfg, opts.bounded)
        _to_topic(cfg, dead, t.dead_letter, "dead-letters", opts.part)
        return score_to_topic(env, stream, cfg, opts)
    events = events_for_features(raw, cfg, opts.bounded)
    if _ordered(cfg):
        # event-time order waits for watermarks anyway (max_out_of_orderness): its last
        # feature stage and the scoring stay two operators, as before the fusion
        enriched, late, dead = add_features(events, cfg)
        _to_topic(cfg, dead, t.dead_letter, "dead-letters", opts.part)
        _to_topic(cfg, late, t.late, "late-events", opts.part)
        return score_to_topic(env, enriched, cfg, opts)
    keyed, last = keyed_by_last_entity(events, cfg)
    stage = feature_stage(cfg, last, len(_feature_entities(cfg)) == 1)
    scored = (
        keyed.connect(_model_switches(env, cfg, opts.bounded))
        .process(
            FeaturesAndScoreFunction(stage, _scorer(cfg, opts), split=(DEAD_LETTERS, LATE_EVENTS)),
            output_type=RECORD,
        )
        # the uid of the last entity's feature stage: its keyed state restores from a
        # savepoint of any earlier graph (the old scoring operator's state is dropped)
        .uid(f"features-{last.name}")
        .name(f"features by {last.key} + score (ONNX Runtime)")
    )
    scored = _second_worker(scored, cfg)
    _score_sinks(cfg, scored, opts.part)
    _to_topic(cfg, side_output(scored, DEAD_LETTERS), t.dead_letter, "dead-letters", opts.part)
    _to_topic(cfg, side_output(scored, LATE_EVENTS), t.late, "late-events", opts.part)
    return scored


def _scorer(cfg: JobConfig, opts: RunOptions) -> Scorer:
    return Scorer(
        cfg,
        opts.registry,
        opts.model_version,
        SCORES_JSON,
        MODEL_EVENTS,
        SHADOW,
        emit_records=opts.part == "all",
        timed_by_arrival=not _ordered(cfg),
    )


def _score_sinks(cfg: JobConfig, scored: DataStream, part: str) -> None:
    t = cfg.kafka.topics
    _to_topic(cfg, side_output(scored, SCORES_JSON), t.scores, "scores", part)
    _to_topic(cfg, side_output(scored, MODEL_EVENTS), t.alerts, "model-events", part)
    _to_topic(cfg, side_output(scored, SHADOW), t.shadow, "shadow", part)


def _model_switches(env: StreamExecutionEnvironment, cfg: JobConfig, bounded: bool) -> DataStream:
    """The control topic, from the records that arrive after the job first starts (a restored
    job resumes at its checkpointed offsets), broadcast to every scoring subtask."""
    watermarks = WatermarkStrategy.for_monotonous_timestamps().with_idleness(
        Duration.of_seconds(IDLE_CONTROL_TIMEOUT_S)
    )
    src = kafka_io.source(cfg, cfg.kafka.topics.control, bounded, new_only=True)
    return (
        env.from_source(src, watermarks, "control source")
        .uid("source-control")
        .set_parallelism(1)
        .broadcast(ACTIVE_MODEL)
    )


def score_to_topic(
    env: StreamExecutionEnvironment, stream: DataStream, cfg: JobConfig, opts: RunOptions
) -> DataStream:
    """Score every event of an unkeyed stream (its own Python stage) with the model the
    control topic last activated and sink the score records to the scores topic, model
    switches to the alerts topic; returns the scored stream (for the monitors)."""
    scored = (
        stream.connect(_model_switches(env, cfg, opts.bounded))
        .process(ScoreFunction(_scorer(cfg, opts)), output_type=RECORD)
        .uid("score")
        .name("score (ONNX Runtime)")
    )
    scored = _second_worker(scored, cfg)
    _score_sinks(cfg, scored, opts.part)
    return scored


def _scores_from_topic(
    env: StreamExecutionEnvironment, cfg: JobConfig, opts: RunOptions
) -> DataStream:
    t = cfg.kafka.topics
    ingest = Ingest(
        partial(parse_score, schema=cfg.schema),
        DEAD_LETTERS,
        cfg.schema.event_time,
        "scores",
        "score-time",
    )
    scored, dead = _parse_and_time(
        _source(env, cfg, t.scores, opts.bounded, "scores"), cfg, t.scores, ingest, opts.bounded
    )
    _to_topic(cfg, dead, t.dead_letter, "score-dead-letters", opts.part)
    return scored


def _monitoring(
    env: StreamExecutionEnvironment,
    cfg: JobConfig,
    opts: RunOptions,
    scored: DataStream,
    favourable: int,
) -> None:
    s = cfg.schema
    t = cfg.kafka.topics
    ingest = Ingest(
        partial(parse_label, labels=cfg.labels),
        LABEL_DEAD_LETTERS,
        "label_time",
        "labels",
        "label-time",
    )
    labels, dead = _parse_and_time(
        _source(env, cfg, t.labels, opts.bounded, "labels"), cfg, t.labels, ingest, opts.bounded
    )
    _to_topic(cfg, dead, t.dead_letter, "label-dead-letters", opts.part)

    alerts: list[DataStream] = []
    if s.sensitive_attribute:
        fairness = (
            scored.connect(labels)
            .key_by(ConstantKey(), ConstantKey(), key_type=Types.STRING())
            .process(
                FairnessFunction(cfg, favourable, opts.model_version, ALERTS),
                output_type=Types.STRING(),
            )
            .uid("fairness")
            .name("fairness per window (late labels joined)")
            .slot_sharing_group(MONITORING_SLOTS)
        )
        _to_topic(cfg, fairness, t.fairness, "fairness", opts.part)
        alerts.append(side_output(fairness, ALERTS))

    drift = (
        scored.key_by(ConstantKey(), key_type=Types.STRING())
        .process(
            DriftFunction(cfg, opts.registry, opts.model_version, opts.workspace, ALERTS),
            output_type=Types.STRING(),
        )
        .uid("drift")
        .name("drift per window (Evidently)")
        .slot_sharing_group(MONITORING_SLOTS)
    )
    _to_topic(cfg, drift, t.drift, "drift", opts.part)
    alerts.append(side_output(drift, ALERTS))
    _to_topic(cfg, _union(*alerts), t.alerts, "alerts", opts.part)
