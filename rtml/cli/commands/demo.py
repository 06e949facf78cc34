"""`rtml demo`: the whole product end to end on a real broker, with a summary."""

from __future__ import annotations

import collections
import time
from dataclasses import replace
from pathlib import Path

from deploy.kafka_broker import Broker
from deploy.kafka_client import read_topic
from rtml.cli.commands import services
from rtml.cli.commands.data import ensure_model, produce_scenario, scenario_options
from rtml.cli.commands.job import JobTarget, run_embedded
from rtml.cli.commands.review import collect, print_table, remember_run
from rtml.cli.console import say, step
from rtml.core import paths
from rtml.core.config import load_config
from rtml.core.errors import JobError

DEMO_DAYS = 3.0
DRIFT_AT_H = 48.0


def run_demo(
    config: Path,
    port: int,
    events: int,
    retrain: bool,
    drift_size: float,
    bias: float,
    bad_fraction: float,
) -> int:
    t0 = time.monotonic()
    services.setup()
    broker = Broker(port=port)
    step("starting the Kafka broker (KRaft, 127.0.0.1)")
    say("    " + broker.start())
    prefix = f"demo-{time.strftime('%Y%m%d%H%M%S')}."
    cfg = load_config(config).with_bootstrap(broker.bootstrap).with_topic_prefix(prefix)
    # same population and events per day as the live stream, twice as long
    ensure_model(cfg, retrain, 2 * events, 2 * DEMO_DAYS, bias)
    opts = scenario_options(
        seed=7,
        events=events,
        days=DEMO_DAYS,
        drift_at_h=DRIFT_AT_H,
        drift_size=drift_size,
        bias=bias,
        bad_fraction=bad_fraction,
    )
    produced = produce_scenario(cfg, opts)
    remember_run(str(config.resolve()), broker.bootstrap, prefix)
    # scoring and monitoring as two jobs: the monitors read the scores topic and never slow scoring
    target = JobTarget(config, bootstrap=broker.bootstrap, topic_prefix=prefix, bounded=True)
    took = run_embedded(cfg, replace(target, part="scoring"), expected_scores=produced.valid)
    took += run_embedded(cfg, replace(target, part="monitoring"))

    step("reading every output topic")
    t = cfg.kafka.topics
    scores = read_topic(cfg, t.scores)
    dead = read_topic(cfg, t.dead_letter)
    late = read_topic(cfg, t.late)
    verdicts = collect(cfg)
    ids = [s["event_id"] for s in scores]
    versions = collections.Counter(s["model_version"] for s in scores)
    reasons = collections.Counter(d["error"] for d in dead)
    say("")
    say("=" * 78)
    say(f"rtml demo summary  (topics prefixed {prefix!r} on {broker.bootstrap})")
    say("=" * 78)
    say(
        f"events read        {produced.events}  ({produced.valid} valid, {produced.bad} malformed), labels {produced.labels}"
    )
    say(
        f"scored             {len(scores)}  (unique event ids {len(set(ids))}; flagged {sum(s['flagged'] for s in scores)}; model versions {dict(versions)})"
    )
    say(f"dead-lettered      {len(dead)}  {dict(reasons.most_common())}")
    say(f"late events        {len(late)}")
    say(
        f"job run time       {took:.0f}s on the embedded MiniCluster, scoring then monitoring ({produced.events / took:,.0f} events/s end to end incl. start-up)"
    )
    say("")
    say("monitoring per 6h event-time window (drift: Evidently vs the model's reference sample;")
    say(
        "DI = disparate impact ratio, EO = equal opportunity ratio, both on the favourable outcome 'not flagged'):"
    )
    print_table(verdicts)
    flagged = [d["window"] for d in verdicts.drift if d.get("dataset_drift")]
    fair_alerts = [f["window"] for f in verdicts.fairness if f.get("alerts")]
    fair_watch = [f["window"] for f in verdicts.fairness if f.get("watch") and not f.get("alerts")]
    say("")
    say(
        f"windows flagged for drift:     {len(flagged)} of {len(verdicts.drift)} (drift injected from {DRIFT_AT_H:g}h, i.e. 2026-01-03T00:00Z)"
    )
    say(
        f"windows with fairness alerts:  {len(fair_alerts)} of {len(verdicts.fairness)} breach the four-fifths rule with 95% confidence, "
        f"{len(fair_watch)} more on the point estimate only (bias injected: {bias:g} of the 18-25 band's legitimate events labelled fraud)"
    )
    say(
        f"drift reports (Evidently):     {paths.workspace_dir()}  -> open them with `rtml ui` (http://127.0.0.1:8000)"
    )
    say("review again later with:       rtml reports")
    say(f"total demo time:               {time.monotonic() - t0:.0f}s")
    ok = len(scores) == produced.valid == len(set(ids)) and len(dead) == produced.bad
    if not ok:
        raise JobError(
            f"output check failed: {len(scores)} scores for {produced.valid} valid events, {len(dead)} dead letters for {produced.bad} malformed records",
            hint="read the job log under .rtml/logs",
        )
    say(
        "check:                         every valid event scored exactly once, every malformed record dead-lettered"
    )
    return 0
