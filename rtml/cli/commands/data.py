"""`rtml produce`, `rtml train`, `rtml export`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deploy.kafka_client import ensure_topics, produce
from models.dataset import build_dataset, read_jsonl
from models.export import DEFAULT_TOLERANCE, export
from models.store.registry import Registry
from models.train import train
from rtml.cli.console import Progress, say, step
from rtml.cli.scenarios.cards import HOUR_MS, Scenario, ScenarioOptions, generate
from rtml.core import paths
from rtml.core.config import JobConfig
from rtml.core.errors import ConfigError, ModelError


@dataclass(frozen=True)
class ProduceResult:
    events: int
    valid: int
    bad: int
    labels: int
    scenario: Scenario


def scenario_options(
    seed: int,
    events: int,
    days: float,
    drift_at_h: float | None,
    drift_size: float,
    bias: float,
    bad_fraction: float,
) -> ScenarioOptions:
    """The demo population (1000 accounts, 300 merchants, population seed 42) with ``seed``
    drawing the events; keep events per day equal between training and live data so that
    the windowed features have the same distribution."""
    base = ScenarioOptions()
    return ScenarioOptions(
        seed=seed,
        events=events,
        days=days,
        drift_at_ms=None if drift_at_h is None else base.start_ms + int(drift_at_h * HOUR_MS),
        drift_size=drift_size,
        bias=bias,
        bad_fraction=bad_fraction,
    )


def produce_scenario(
    cfg: JobConfig, opts: ScenarioOptions, out_dir: Path | None = None
) -> ProduceResult:
    step(
        f"generating {opts.events} card transactions over {opts.days:g} days (seed {opts.seed}, drift {opts.drift_size:g}, bias {opts.bias:g}, bad {opts.bad_fraction:.1%})"
    )
    sc = generate(opts)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "events.jsonl").write_text("\n".join(sc.raw_events()) + "\n")
        (out_dir / "labels.jsonl").write_text(
            "\n".join(json.dumps(lab) for lab in sc.labels) + "\n"
        )
        say(f"    wrote {out_dir}/events.jsonl and labels.jsonl")
    t = cfg.kafka.topics
    ensure_topics(cfg)
    step(f"producing to Kafka at {cfg.kafka.bootstrap_servers}: {t.events!r} and {t.labels!r}")
    total = len(sc.events) + len(sc.bad)
    prog = Progress("events sent", total)
    n = produce(cfg, t.events, sc.raw_events(), progress=prog.update)
    prog.update(n, force=True)
    nl = produce(cfg, t.labels, (json.dumps(lab) for lab in sc.labels))
    say(f"    labels sent: {nl}")
    return ProduceResult(events=n, valid=len(sc.events), bad=len(sc.bad), labels=nl, scenario=sc)


def train_model(
    cfg: JobConfig,
    opts: ScenarioOptions | None,
    history: Path | None,
    labels: Path | None,
    estimator: str = "hgb",
    reweigh: bool = False,
    label_field: str | None = None,
) -> dict:
    """Train on events (a JSON-lines or CSV history, or a generated card history for the card
    config) replayed through the job's feature code. The labels come from their own file, or
    from a field of the history's events (``label_field``, taken out before the features)."""
    if history is not None:
        from rtml.cli.commands.file_replay import read_records, split_label

        if (labels is None) == (label_field is None):
            raise ModelError(
                "--history needs its labels: --labels FILE, or --label-field F when each event holds its label",
                hint="pass exactly one of them",
            )
        raw_events = read_records(history, cfg.schema)
        if label_field is not None:
            step(f"reading history {history}, labels from its field {label_field!r}")
            split = [split_label(r, cfg, label_field, 0) for r in raw_events]
            raw_events = [r for r, _ in split]
            raw_labels = [json.dumps(lab) for _, lab in split if lab is not None]
        else:
            step(f"reading history {history} and labels {labels}")
            raw_labels = read_jsonl(labels)
        source = {
            "kind": "history",
            "history": str(history),
            "labels": f"field {label_field!r}" if label_field else str(labels),
        }
    else:
        assert opts is not None
        _card_schema_or_fail(cfg)
        step(
            f"generating a training history: {opts.events} events over {opts.days:g} days (seed {opts.seed}, bias {opts.bias:g})"
        )
        sc = generate(opts)
        raw_events, raw_labels = sc.events, sc.labels
        source = {"kind": "events", "generated": True, "seed": opts.seed}
    step(f"computing {len(cfg.features.names)} features offline with the job's feature code")
    events = list(raw_events)
    prog = Progress("events replayed", len(events))
    df = build_dataset(cfg, events, raw_labels, progress=prog.update)
    prog.update(len(events), force=True)
    say(f"    {len(df)} labelled rows")
    return _fit(cfg, df, estimator, reweigh, source)


def _card_schema_or_fail(cfg: JobConfig) -> None:
    """A generated history is card transactions: only a config of that schema can use one."""
    sample = generate(ScenarioOptions(events=1, days=0.01)).events[0]
    missing = sorted(set(sample) - cfg.schema.field_names)
    if missing or cfg.labels.label != "is_fraud":
        raise ConfigError(
            f"{cfg.source}: its events are not the card scenario's (no field {', '.join(missing) or cfg.labels.label!r}), so rtml cannot generate a history for it",
            hint="train on your own events: rtml train --history FILE --labels FILE (or --label-field F)",
        )


def train_from_log(
    cfg: JobConfig, as_of: str | None = None, estimator: str = "hgb", reweigh: bool = False
) -> dict:
    """The feedback loop: train the next version on what the live job scored (the logged
    inputs on the scores topic) and the labels known at ``as_of`` (default: now, the latest
    label time read); see ``models.feedback``."""
    from datetime import UTC, datetime

    from deploy.kafka_client import read_topic
    from models.feedback import feedback_training_set
    from models.train import model_inputs
    from rtml.cli.flags import time_flag

    cutoff = None if as_of is None else time_flag(as_of, "--as-of", ModelError)
    t = cfg.kafka.topics
    step(
        f"reading the feedback log from Kafka at {cfg.kafka.bootstrap_servers}: {t.scores!r} and {t.labels!r}"
    )
    scores = read_topic(cfg, t.scores, parse=False)
    labels = read_topic(cfg, t.labels, parse=False)
    df, stats = feedback_training_set(cfg, model_inputs(cfg), scores, labels, cutoff)
    iso = datetime.fromtimestamp(stats.as_of / 1000, UTC).isoformat(timespec="seconds")
    say(
        f"    as of {iso}: {stats.rows} labelled rows from {stats.score_records} score records "
        f"({stats.unlabelled} without a label yet, {stats.scored_after_cutoff} scored after the cut-off, "
        f"{stats.resent_scores} resent); {stats.labels_after_cutoff} labels known only after it"
    )
    out = paths.artifacts_dir() / cfg.model.name
    out.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out / "training_set.parquet", index=False)
    source = {
        "kind": "feedback-log",
        "scores_topic": t.scores,
        "labels_topic": t.labels,
        "as_of": stats.as_of,
        "as_of_iso": iso,
        "stats": stats.to_dict(),
    }
    return _fit(cfg, df, estimator, reweigh, source)


def _fit(cfg: JobConfig, df, estimator: str, reweigh: bool, source: dict) -> dict:
    out = paths.artifacts_dir() / cfg.model.name
    step(f"training a classifier ({estimator}{', reweighed' if reweigh else ''})")
    res = train(
        cfg,
        df,
        out,
        progress=lambda m: say(f"    {m}"),
        estimator=estimator,
        reweigh=reweigh,
        source=source,
    )
    m = res.metrics
    say(
        f"    held-out ROC AUC {m['roc_auc']:.4f}, average precision {m['average_precision']:.4f}; artifacts in {out}"
    )
    di = m.get("disparate_impact_holdout")
    if di is not None:
        say(
            f"    held-out disparate impact {di:.4f} (min/max favourable-decision rate over groups)"
        )
    return m


def ensure_model(cfg: JobConfig, retrain: bool, events: int, days: float, bias: float) -> None:
    """Train and register a model unless one is current (or ``retrain``): the same population
    and events per day as the live stream, no drift, no malformed records."""
    reg = Registry(paths.registry_dir())
    current = reg.current_version(cfg.model.name)
    if not retrain and current is not None:
        say(
            f"==> using registered model {cfg.model.name} v{current} (pass --retrain to train a new one)"
        )
        return
    train_model(
        cfg,
        scenario_options(
            seed=1,
            events=events,
            days=days,
            drift_at_h=None,
            drift_size=0.0,
            bias=bias,
            bad_fraction=0.0,
        ),
        None,
        None,
    )
    export_model(cfg)


def export_model(
    cfg: JobConfig,
    tolerance: float = DEFAULT_TOLERANCE,
    make_current: bool = True,
    quantize_tolerance: float | None = None,
):
    step("exporting to ONNX and checking parity on held-out rows")
    reg = Registry(paths.registry_dir())
    bars: dict[str, Progress] = {}

    def rows_done(done: int, total: int) -> None:
        bar = bars.setdefault("parity", Progress("held-out rows checked", total))
        bar.update(done, force=done >= total)

    mv = export(
        paths.artifacts_dir() / cfg.model.name,
        reg,
        tolerance=tolerance,
        make_current=make_current,
        progress=lambda m: say(f"    {m}"),
        quantize_tolerance=quantize_tolerance,
        rows_done=rows_done,
        cfg=cfg,
    )
    say(
        f"    registered {mv.metadata.name} v{mv.metadata.version} at {mv.path}{' (current)' if make_current else ''}"
    )
    return mv
