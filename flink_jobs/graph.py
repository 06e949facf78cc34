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

from dataclasses import replace
from functools import partial

from pyflink.common import Types
from pyflink.datastream import DataStream, StreamExecutionEnvironment

from flink_jobs.baselines import build_baseline
from flink_jobs.options import RunOptions
from flink_jobs.stages import (
    MONITORING_SLOTS,
    RECORD,
    Ingest,
    add_features,
    control_source,
    discard,
    events_for_features,
    events_source,
    feature_entities,
    feature_stage,
    field_watermarks,
    is_ordered,
    keyed_by_last_entity,
    model_switches,
    parse_and_time,
    parse_events,
    parse_scores,
    score,
    score_outputs,
    scorer,
    second_worker,
    side_output,
    sink_outputs,
    source,
    union,
)
from flink_jobs.tags import ALERTS, DEAD_LETTERS, LABEL_DEAD_LETTERS, LATE_EVENTS
from rtml.core.config import BACKFILL_PART, BASELINE_PARTS, JobConfig
from rtml.core.errors import ConfigError, JobError
from udfs.flink.monitoring import (
    DriftFunction,
    DriftReportFunction,
    FairnessFunction,
    FairnessReportFunction,
)
from udfs.flink.records import BucketKey, FieldKey
from udfs.flink.scoring import FeaturesAndScoreFunction
from udfs.serving import load_serving_model
from udfs.validation import parse_label

Outputs = dict[str, DataStream]  # output name (``stages.OUTPUT_TOPICS``) -> JSON strings


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
    benchmark baseline, "floor" or "naive": see ``flink_jobs.baselines``). The Kafka sources
    and sinks are wired here; ``scoring_outputs`` and ``monitoring_outputs`` are the rest (a
    test runs them on in-memory input: ``tests/flink/harness.py``).

    Run as two jobs, the monitors read the scores topic and can never slow scoring down (in
    one job they share its stream and CPU: measured in benchmarks/monitor_latency.py)."""
    favourable = check_model(cfg, opts) if verify_model else 0  # rtml plan builds unverified
    if opts.part in BASELINE_PARTS:
        build_baseline(env, cfg, opts)
        return
    if opts.part == BACKFILL_PART:
        build_backfill(env, cfg, opts)
        return
    t = cfg.kafka.topics
    outputs: Outputs = {}
    scored = None
    if opts.part in ("all", "scoring"):
        scored, outputs = scoring_outputs(
            cfg,
            opts,
            events_source(env, cfg, opts.bounded),
            control_source(env, cfg, opts.bounded),
        )
    if opts.part in ("all", "monitoring") and cfg.monitoring.enabled:
        if scored is None:
            cfg = replace(
                cfg, kafka=replace(cfg.kafka, group_id=cfg.kafka.group_id + "-monitoring")
            )
        labels = source(env, cfg, t.labels, opts.bounded, "labels")
        if scored is None:
            scores = source(env, cfg, t.scores, opts.bounded, "scores")
            outputs.update(monitoring_job_outputs(cfg, opts, scores, labels, favourable))
        else:
            outputs.update(monitoring_outputs(cfg, opts, scored, labels, favourable))
    sink_outputs(cfg, outputs, opts.part)


def scoring_outputs(
    cfg: JobConfig, opts: RunOptions, raw: DataStream, control: DataStream
) -> tuple[DataStream, Outputs]:
    """The scoring path from raw event records (JSON; in event-time order with their
    watermarks) and control records; returns the scored stream (read by the monitors of a
    one-job run) and the outputs: scores, model events, shadow pairs, dead letters and late
    events."""
    if not feature_entities(cfg):  # nothing keyed: parse, then score
        stream, dead = parse_events(raw, cfg, opts.bounded)
        scored = score(stream, control, cfg, opts)
        return scored, {**score_outputs(scored), "dead-letters": dead}
    events = events_for_features(raw, cfg)
    if is_ordered(cfg):
        # event-time order waits for watermarks anyway (max_out_of_orderness): its last
        # feature stage and the scoring stay two operators, as before the fusion
        enriched, late, dead = add_features(events, cfg)
        scored = score(enriched, control, cfg, opts)
        return scored, {**score_outputs(scored), "dead-letters": dead, "late-events": late}
    keyed, last = keyed_by_last_entity(events, cfg)
    stage = feature_stage(cfg, last, len(feature_entities(cfg)) == 1)
    scored = (
        keyed.connect(model_switches(control))
        .process(
            FeaturesAndScoreFunction(stage, scorer(cfg, opts), split=(DEAD_LETTERS, LATE_EVENTS)),
            output_type=RECORD,
        )
        # the uid of the last entity's feature stage: its keyed state restores from a
        # savepoint of any earlier graph (the old scoring operator's state is dropped)
        .uid(f"features-{last.name}")
        .name(f"features by {last.key} + score (ONNX Runtime)")
    )
    scored = second_worker(scored, cfg)
    return scored, {
        **score_outputs(scored),
        "dead-letters": side_output(scored, DEAD_LETTERS),
        "late-events": side_output(scored, LATE_EVENTS),
    }


def monitoring_job_outputs(
    cfg: JobConfig, opts: RunOptions, scores: DataStream, labels: DataStream, favourable: int
) -> Outputs:
    """The monitors as their own job, from score records (JSON, as the scores topic holds
    them) and label records: ``monitoring_outputs`` and the score records' dead letters."""
    scored, dead = parse_scores(scores, cfg, opts.bounded)
    return {
        "score-dead-letters": dead,
        **monitoring_outputs(cfg, opts, scored, labels, favourable, timed=True),
    }


def monitoring_outputs(
    cfg: JobConfig,
    opts: RunOptions,
    scored: DataStream,
    labels: DataStream,
    favourable: int,
    *,
    timed: bool = False,
) -> Outputs:
    """Fairness per window (late labels joined) and drift per window from the scored events
    and label records (JSON); returns the label dead letters, the fairness and drift records
    and the alerts. ``timed``: ``scored`` carries event-time watermarks already (as it does in
    event-time order, through the feature stages)."""
    if not timed and not is_ordered(cfg):
        # arrival order has no watermarks on the scoring path; the monitors' windows need
        # them (event-time order's come through the feature stages, after their events)
        scored = (
            scored.assign_timestamps_and_watermarks(
                field_watermarks(cfg, cfg.schema.event_time, opts.bounded)
            )
            .uid("scored-time")
            .name("scored event time")
            .slot_sharing_group(MONITORING_SLOTS)
        )
    ingest = Ingest(
        partial(parse_label, labels=cfg.labels),
        LABEL_DEAD_LETTERS,
        "label_time",
        "labels",
        "label-time",
    )
    labels, dead = parse_and_time(labels, cfg, cfg.kafka.topics.labels, ingest, opts.bounded)
    outputs: Outputs = {"label-dead-letters": dead}
    alerts: list[DataStream] = []
    id_field = cfg.schema.event_id
    if cfg.schema.sensitive_attribute:
        # per bucket of event ids (a prediction and its label meet), then merged per window
        partials = (
            scored.connect(labels)
            .key_by(BucketKey(id_field), BucketKey("event_id"), key_type=Types.STRING())
            .process(FairnessFunction(cfg, favourable, opts.model_version))
            .uid("fairness")
            .name("fairness per bucket of events (late labels joined)")
            .slot_sharing_group(MONITORING_SLOTS)
        )
        fairness = (
            partials.key_by(FieldKey("window_start"), key_type=Types.STRING())
            .process(
                FairnessReportFunction(
                    cfg, favourable, opts.model_version, ALERTS, opts.workspace, opts.registry
                ),
                output_type=Types.STRING(),
            )
            .uid("fairness-report")
            .name("fairness and model quality per window")
            .slot_sharing_group(MONITORING_SLOTS)
        )
        outputs["fairness"] = fairness
        alerts.append(side_output(fairness, ALERTS))

    samples = (
        scored.key_by(BucketKey(id_field), key_type=Types.STRING())
        .process(DriftFunction(cfg, opts.model_version))
        .uid("drift")
        .name("drift sample per bucket of events")
        .slot_sharing_group(MONITORING_SLOTS)
    )
    drift = (
        samples.key_by(FieldKey("window_start"), key_type=Types.STRING())
        .process(
            DriftReportFunction(cfg, opts.registry, opts.model_version, opts.workspace, ALERTS),
            output_type=Types.STRING(),
        )
        .uid("drift-report")
        .name("drift per window (Evidently)")
        .slot_sharing_group(MONITORING_SLOTS)
    )
    outputs["drift"] = drift
    alerts.append(side_output(drift, ALERTS))
    outputs["alerts"] = union(*alerts)
    return outputs


def build_backfill(env: StreamExecutionEnvironment, cfg: JobConfig, opts: RunOptions) -> None:
    """History (``opts.backfill_topic``) through the scoring path's feature stages, with their
    uids and state, so the savepoint of this job restores into the scoring job (``rtml
    backfill``); nothing is scored and nothing is written: the enriched events, the dead
    letters and the late events of the history are dropped (the operators' metrics count
    them). The history is read by a source of its own (uid ``source-backfill``, in a consumer
    group of its own), so a job restored from the savepoint reads the events topic from where
    that job's group would, not from the history's offsets."""
    if not opts.backfill_topic:
        raise JobError(
            "the backfill part needs the topic that holds the history",
            hint="run it with `rtml backfill --history FILE`",
        )
    if not feature_entities(cfg):
        raise ConfigError(
            f"{cfg.source}: no entity has features ([features] entities), so there is no state to warm up",
            hint="score without a backfill",
        )
    kafka = replace(
        cfg.kafka,
        topics=replace(cfg.kafka.topics, events=opts.backfill_topic),
        group_id=f"{cfg.kafka.group_id}-{opts.backfill_topic}",
    )
    cfg = replace(cfg, kafka=kafka)
    raw = events_source(env, cfg, opts.bounded, "backfill")
    enriched, late, dead = add_features(events_for_features(raw, cfg), cfg)
    discard(enriched, "backfill-events")
    discard(late, "backfill-late-events")
    discard(dead, "backfill-dead-letters")
