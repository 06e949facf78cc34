"""`rtml models list|show|activate|shadow|unshadow|shadow-report`."""

from __future__ import annotations

import json
from pathlib import Path

from models.store.registry import Registry
from rtml.cli.console import say
from rtml.core import paths
from rtml.core.config import JobConfig
from rtml.core.errors import ModelError


def models_list() -> None:
    reg = Registry(paths.registry_dir())
    names = reg.models()
    if not names:
        say(f"no models in {reg.root} (train and export one: rtml train && rtml export)")
        return
    say(
        f"{'model':<20} {'version':>7}  {'current':<7} {'created':<26} {'roc_auc':>8} {'parity':>9}"
    )
    for name in names:
        cur = reg.current_version(name)
        for v in reg.versions(name):
            meta = reg.resolve(name, v).metadata
            auc = meta.training.get("metrics", {}).get("roc_auc")
            say(
                f"{name:<20} {v:>7}  {'*' if v == cur else '':<7} {meta.created_at:<26} {auc if auc is None else round(auc, 4)!s:>8} {meta.parity.get('max_abs_diff', float('nan')):>9.1e}"
            )


def models_show(name: str, version: str) -> None:
    reg = Registry(paths.registry_dir())
    mv = reg.resolve(name, version)
    say(f"{mv.path}")
    say((mv.path / "model_card.md").read_text())


def _send(cfg: JobConfig, switch) -> str:
    from deploy.kafka_client import ensure_topics, produce

    topic = cfg.kafka.topics.control
    ensure_topics(cfg, [topic])
    produce(cfg, topic, [switch.to_json()])
    return topic


def models_activate(cfg: JobConfig, version: str) -> None:
    """Check ``version`` as the job will (hash, schema, a probe row), make it current in the
    registry, and tell running jobs through the control topic: each switches between two
    events, or rejects it and keeps serving (the verdict goes to the alerts topic). A shadow
    of that version stops: it has been promoted."""
    from udfs.serving import ModelSwitch, load_serving_model

    reg = Registry(paths.registry_dir())
    m = load_serving_model(reg.root, cfg.model.name, version, cfg.model_inputs)
    reg.set_current(m.name, m.version)
    topic = _send(cfg, ModelSwitch(m.name, m.version))
    say(
        f"{m.name} v{m.version} is current; running jobs switch to it ({topic}, verdicts on {cfg.kafka.topics.alerts})"
    )


def models_shadow(cfg: JobConfig, version: str) -> None:
    """Check ``version`` as the job will and make it the running jobs' shadow candidate: it
    scores every event alongside the live model, and the pairs go to the shadow topic. The
    registry's current version does not change."""
    from udfs.serving import SHADOW, ModelSwitch, load_serving_model

    reg = Registry(paths.registry_dir())
    m = load_serving_model(reg.root, cfg.model.name, version, cfg.model_inputs)
    if m.version == reg.current_version(m.name):
        raise ModelError(
            f"{m.name} v{m.version} is the current version; a shadow must be a candidate",
            hint="shadow a version that is not current (`rtml models list`)",
        )
    topic = _send(cfg, ModelSwitch(m.name, m.version, SHADOW))
    say(
        f"{m.name} v{m.version} shadows the live model in running jobs ({topic}); pairs go to "
        f"{cfg.kafka.topics.shadow}: judge it with `rtml models shadow-report`"
    )


def models_unshadow(cfg: JobConfig) -> None:
    from udfs.serving import UNSHADOW, ModelSwitch

    topic = _send(cfg, ModelSwitch(cfg.model.name, None, UNSHADOW))
    say(f"running jobs stop scoring a shadow of {cfg.model.name} ({topic})")


def shadow_report(cfg: JobConfig, out: Path | None = None) -> list[dict]:
    """Read the shadow topic and print one summary per (live, candidate) pair."""
    from deploy.kafka_client import read_topic
    from models.shadow_report import summarize

    reg = Registry(paths.registry_dir())
    favourable = 0
    cur = reg.current_version(cfg.model.name)
    if cur is not None:
        favourable = reg.resolve(cfg.model.name, cur).metadata.favourable_outcome
    records = read_topic(cfg, cfg.kafka.topics.shadow)
    m = cfg.monitoring
    pairs = summarize(
        records,
        cfg.schema.sensitive_attribute,
        favourable,
        m.min_group_count,
        m.four_fifths,
        cfg.schema.event_id,
    )
    if not pairs:
        say(
            f"no shadow records on {cfg.kafka.topics.shadow} (start one: rtml models shadow --version N)"
        )
    for p in pairs:
        _print_pair(p)
    if out is not None:
        out.write_text(json.dumps(pairs, indent=2))
        say(f"\nwritten to {out}")
    return pairs


def _print_pair(p: dict) -> None:
    q, lat = p["score_quantiles"], p["latency_us"]
    say(f"\nlive v{p['live_version']} vs candidate v{p['candidate_version']}: {p['events']} events")
    say(
        f"  decisions differ  {p['disagreement_rate']:.2%}  ({p['newly_flagged']} newly flagged, {p['no_longer_flagged']} no longer flagged)"
    )
    say(
        f"  flag rate         live {p['flag_rate']['live']:.2%}  candidate {p['flag_rate']['candidate']:.2%}"
    )
    say(
        f"  |score diff|      mean {p['mean_abs_score_diff']:.4f}  max {p['max_abs_score_diff']:.4f}"
    )
    for role in ("live", "candidate"):
        qs = "  ".join(f"{k} {v:.4f}" for k, v in q[role].items())
        say(f"  scores {role:<10} {qs}")
    say(
        f"  KS statistic      {p['ks_statistic']:.4f} (p = {p['ks_pvalue']:.3g}): how far apart the two score distributions are"
    )
    say(
        f"  latency (us)      live p50 {lat['live']['p50']:.0f} p99 {lat['live']['p99']:.0f}  candidate p50 {lat['candidate']['p50']:.0f} p99 {lat['candidate']['p99']:.0f}"
    )
    fair = p.get("fairness")
    if fair:
        for role in ("live", "candidate"):
            di = fair[role]["disparate_impact_ratio"]
            ci = fair[role]["disparate_impact_ci95"]
            ci_s = "" if ci is None else f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})"
            flag = "  ALERT" if fair[role]["alerts"] else ""
            say(
                f"  disparate impact  {role:<10} {'n/a' if di is None else f'{di:.3f}'}{ci_s}{flag}"
            )
