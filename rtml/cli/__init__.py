"""The `rtml` console script: the user's one entry point."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtml.cli.console import fail
from rtml.core import paths
from rtml.core.config import (
    ESTIMATORS,
    FEATURE_ORDERS,
    GRAPH_PARTS,
    JOB_PARTS,
    PYTHON_WORKERS,
    STATE_BACKENDS,
)
from rtml.core.errors import ConfigError, RtmlError

DEFAULT_CONFIG = paths.DEPLOY_DIR / "configs" / "cards.toml"


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="job config (TOML); default: the card-fraud demo",
    )
    p.add_argument(
        "--bootstrap", default=None, help="Kafka bootstrap servers (overrides the config)"
    )
    p.add_argument("--topic-prefix", default="", help="prefix every topic name and the group id")


def _scenario_args(p: argparse.ArgumentParser, events: int, days: float, seed: int) -> None:
    p.add_argument("--events", type=int, default=events)
    p.add_argument("--days", type=float, default=days)
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument(
        "--bias",
        type=float,
        default=0.25,
        help="share of the protected group's legitimate events labelled fraud",
    )


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="rtml",
        description="Real-time ML on Apache Flink: per-key features, ONNX scoring, fairness and drift monitoring.",
    )
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    sub.add_parser(
        "setup", help="check Java/Maven and fetch the Kafka and Flink connector jars (idempotent)"
    )

    p = sub.add_parser(
        "demo", help="set up, start Kafka, train+export, produce, run the job, print a summary"
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--port", type=int, default=9092, help="Kafka broker port on 127.0.0.1")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument(
        "--retrain", action="store_true", help="train a new model version even if one is registered"
    )
    p.add_argument("--drift-size", type=float, default=0.8)
    p.add_argument("--bias", type=float, default=0.25)
    p.add_argument("--bad-fraction", type=float, default=0.01)

    p = sub.add_parser(
        "bench",
        help="throughput, the latency-load curve, CPU, memory and state per key of the pipeline "
        "vs the engine floor, a naive design and a plain Python peer, on the local broker and "
        "cluster",
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--events", type=int, default=20_000, help="preloaded backlog per job")
    p.add_argument(
        "--naive-events",
        type=int,
        default=5_000,
        help="preloaded backlog of the naive design (quadratic in each key's history)",
    )
    p.add_argument("--seconds", type=float, default=30.0, help="paced load per latency run")
    p.add_argument(
        "--max-rate",
        type=float,
        default=None,
        help="the latency runs' 100%% load in events/s (default: the pipeline's measured "
        "throughput); they run at 25%%, 50%% and 75%% of it",
    )
    p.add_argument(
        "--one-entity-config",
        type=Path,
        default=paths.DEPLOY_DIR / "configs" / "cards-one-entity.toml",
        help="config of the one-entity runs (c1, a1)",
    )
    p.add_argument(
        "--eo-checkpoint-ms",
        type=int,
        default=1_000,
        help="checkpoint interval of the pipeline's exactly-once latency run",
    )
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="JSON and PNG go here")
    p.add_argument("--port", type=int, default=9092, help="Kafka broker port on 127.0.0.1")
    p.add_argument("--rest-port", type=int, default=8081, help="local Flink cluster REST port")
    p.add_argument(
        "--bundle-time-ms",
        type=int,
        default=None,
        help="Python bundle time for every job (default: the config's [job] bundle_time)",
    )
    p.add_argument(
        "--python-workers",
        type=int,
        choices=PYTHON_WORKERS,
        default=2,
        help="Python worker processes of the pipeline (c, c1): 2 uses both slots of the "
        "TaskManager (default), 1 the config's single worker",
    )
    p.add_argument(
        "--jobs",
        default=None,
        metavar="KEYS",
        help="run only these jobs, comma-separated, side by side as ever (floor, naive, "
        "scoring, peer, scoring-one-entity, floor-one-entity, scoring-event-time, "
        "scoring-thread; default: all)",
    )

    for name, helptext in (
        ("broker", "the local Kafka broker (KRaft) on 127.0.0.1"),
        ("cluster", "the local Flink standalone session cluster"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("action", choices=["start", "stop", "status"])
        if name == "broker":
            p.add_argument("--port", type=int, default=9092)
        else:
            p.add_argument("--rest-port", type=int, default=8081)
            p.add_argument("--taskmanagers", type=int, default=1)
            p.add_argument("--slots", type=int, default=2)
            p.add_argument(
                "--prometheus-ports",
                default=None,
                metavar="RANGE",
                help="expose metrics to Prometheus on these ports, e.g. 9249-9259 (Flink's reporter binds to all interfaces)",
            )

    p = sub.add_parser(
        "produce",
        help="write a generated card-transaction scenario (events + late labels) to Kafka",
    )
    _config_arg(p)
    _scenario_args(p, events=20_000, days=3.0, seed=7)
    p.add_argument(
        "--drift-at", type=float, default=None, help="hours after the start when drift begins"
    )
    p.add_argument("--drift-size", type=float, default=0.8)
    p.add_argument("--bad-fraction", type=float, default=0.01)
    p.add_argument(
        "--out", type=Path, default=None, help="also write events.jsonl and labels.jsonl here"
    )

    p = sub.add_parser(
        "train", help="train a classifier on offline features (the job's own feature code)"
    )
    _config_arg(p)
    _scenario_args(p, events=40_000, days=6.0, seed=1)
    p.add_argument(
        "--history",
        type=Path,
        default=None,
        help="JSON-lines events to train on instead of a generated history",
    )
    p.add_argument("--labels", type=Path, default=None, help="JSON-lines labels for --history")
    p.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default="hgb",
        help="the classifier: scikit-learn HistGradientBoosting, LightGBM, XGBoost or an MLP (mlp: quantizable)",
    )
    p.add_argument(
        "--from-log",
        action="store_true",
        help="the feedback loop: train on the live job's scores topic (the logged inputs) joined "
        "with the labels topic, point-in-time correct",
    )
    p.add_argument(
        "--as-of",
        default=None,
        help="with --from-log: only labels known by then (epoch ms or ISO-8601; default: now)",
    )
    p.add_argument(
        "--reweigh",
        action="store_true",
        help="bias mitigation: weight rows by sensitive group and label (Kamiran-Calders reweighing)",
    )

    p = sub.add_parser("export", help="export the trained model to ONNX, check parity, register it")
    _config_arg(p)
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="max |p_original - p_onnx| allowed on held-out rows",
    )
    p.add_argument(
        "--no-current", action="store_true", help="register without making it the current version"
    )
    p.add_argument(
        "--quantize",
        action="store_true",
        help="register the int8-quantized graph (ONNX Runtime dynamic quantization; helps graphs "
        "with matrix products, e.g. --estimator mlp, not tree ensembles); size, latency and parity are measured",
    )
    p.add_argument(
        "--quantize-tolerance",
        type=float,
        default=0.1,
        help="with --quantize: max |p_original - p_int8| allowed on held-out rows",
    )

    p = sub.add_parser(
        "models",
        help="list or show registered models; activate a version (running jobs switch to it); "
        "shadow a candidate (it scores alongside the live model), unshadow it, judge it with shadow-report",
    )
    p.add_argument("action", choices=MODEL_ACTIONS)
    p.add_argument("name", nargs="?", default=None, help="model name (default: the config's)")
    p.add_argument("--version", default="current")
    p.add_argument(
        "--out", type=Path, default=None, help="shadow-report: also write the summary as JSON"
    )
    _config_arg(p)

    p = sub.add_parser(
        "plan",
        help="print the job's operator graph as Flink plans it (fused Python operators, Python "
        "stages), without running it",
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument(
        "--part",
        choices=GRAPH_PARTS,
        default="scoring",
        help="the job graph to plan: scoring, monitoring, both in one job (all), or a "
        "`rtml bench` baseline (floor, naive)",
    )
    p.add_argument(
        "--feature-order",
        choices=FEATURE_ORDERS,
        default=None,
        help="plan with this feature order instead of the config's [job] feature_order",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")

    for name, helptext in (
        ("run", "run the job on the embedded Flink MiniCluster"),
        ("submit", "submit the job to a Flink session cluster"),
    ):
        p = sub.add_parser(name, help=helptext)
        _config_arg(p)
        p.add_argument(
            "--bounded",
            action="store_true",
            help="stop once the topics' current contents are consumed",
        )
        p.add_argument(
            "--part",
            choices=JOB_PARTS,
            default="all",
            help="one job, or scoring / monitoring alone (run both: the monitors then read the scores topic and never slow scoring)",
        )
        p.add_argument("--model-version", default="current")
        p.add_argument("--parallelism", type=int, default=None)
        p.add_argument(
            "--state-backend",
            choices=STATE_BACKENDS,
            default=None,
            help="override [job] state_backend: rocksdb keeps keyed state on disk (state larger than memory)",
        )
        if name == "submit":
            p.add_argument("--jobmanager", default="127.0.0.1:8081")
            p.add_argument(
                "--wait",
                action="store_true",
                help="wait for the job to finish instead of detaching",
            )
            p.add_argument(
                "--from-savepoint",
                default=None,
                metavar="PATH",
                help="restore the job's state from a savepoint (see `rtml jobs stop`); --parallelism may differ",
            )
            p.add_argument(
                "--allow-non-restored-state",
                action="store_true",
                help="restore even if the savepoint holds state of operators the job no longer has",
            )

    p = sub.add_parser(
        "jobs",
        help="list, cancel, stop (with a savepoint), savepoint or show metrics of jobs on a Flink cluster",
    )
    p.add_argument("action", choices=["list", "cancel", "stop", "savepoint", "metrics"])
    p.add_argument("job_id", nargs="?")
    p.add_argument("--jobmanager", default="127.0.0.1:8081")
    p.add_argument(
        "--savepoint-dir",
        default=None,
        metavar="DIR",
        help="where `stop`/`savepoint` write (default: the cluster's execution.checkpointing.savepoint-dir)",
    )
    p.add_argument(
        "--drain",
        action="store_true",
        help="`stop` only: end the stream first (every event-time window and pending event "
        "fires, as at the end of a bounded run); for a job you retire, not one you resume",
    )

    p = sub.add_parser(
        "reports", help="drift and fairness verdicts per window (from the last demo run by default)"
    )
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--bootstrap", default=None)
    p.add_argument("--topic-prefix", default=None)
    p.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the Evidently reports as HTML, a fairness-over-time plot and an index to DIR",
    )

    p = sub.add_parser("ui", help="serve the Evidently UI over the report workspace on 127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workspace", type=Path, default=None)
    return ap


def _load(a: argparse.Namespace):
    from rtml.core.config import load_config

    cfg = load_config(a.config)
    if a.bootstrap:
        cfg = cfg.with_bootstrap(a.bootstrap)
    if a.topic_prefix:
        cfg = cfg.with_topic_prefix(a.topic_prefix)
    return cfg


MODEL_ACTIONS = ("list", "show", "activate", "shadow", "unshadow", "shadow-report")


def _models(a: argparse.Namespace) -> None:
    from rtml.cli.commands import models

    if a.action == "list":
        models.models_list()
        return
    if a.action == "show":
        models.models_show(a.name or _load(a).model.name, a.version)
        return
    cfg = _load(a)
    if a.name not in (None, cfg.model.name):
        raise ConfigError(
            f"the config's job serves {cfg.model.name!r}, not {a.name!r}",
            hint="pass the config of the job that serves this model",
        )
    if a.action == "unshadow":
        models.models_unshadow(cfg)
        return
    if a.action == "shadow-report":
        models.shadow_report(cfg, a.out)
        return
    if not a.version.isdigit():
        raise ConfigError(
            f"--version {a.version!r} is not a version number",
            hint="pick one from `rtml models list`",
        )
    if a.action == "activate":
        models.models_activate(cfg, a.version)
    else:
        models.models_shadow(cfg, a.version)


def dispatch(a: argparse.Namespace) -> int:
    if a.cmd == "setup":
        from rtml.cli.commands.services import setup

        setup()
    elif a.cmd == "demo":
        from rtml.cli.commands.demo import run_demo

        return run_demo(a.config, a.port, a.events, a.retrain, a.drift_size, a.bias, a.bad_fraction)
    elif a.cmd == "bench":
        from rtml.cli.commands.bench import BenchOptions, job_keys, run_bench

        jobs = None if a.jobs is None else job_keys(a.jobs, a.max_rate)
        run_bench(
            BenchOptions(
                config=a.config,
                out=a.out,
                events=a.events,
                naive_events=a.naive_events,
                seconds=a.seconds,
                max_rate=a.max_rate,
                one_entity_config=a.one_entity_config,
                eo_checkpoint_ms=a.eo_checkpoint_ms,
                broker_port=a.port,
                rest_port=a.rest_port,
                bundle_time_ms=a.bundle_time_ms,
                python_workers=a.python_workers,
                jobs=jobs,
            )
        )
    elif a.cmd == "broker":
        from rtml.cli.commands.services import broker

        broker(a.action, a.port)
    elif a.cmd == "cluster":
        from rtml.cli.commands.services import cluster

        cluster(a.action, a.rest_port, a.taskmanagers, a.slots, a.prometheus_ports)
    elif a.cmd == "produce":
        from rtml.cli.commands.data import produce_scenario, scenario_options

        cfg = _load(a)
        r = produce_scenario(
            cfg,
            scenario_options(
                a.seed, a.events, a.days, a.drift_at, a.drift_size, a.bias, a.bad_fraction
            ),
            a.out,
        )
        print(
            f"produced {r.events} events ({r.valid} valid, {r.bad} malformed) and {r.labels} labels"
        )
    elif a.cmd == "train":
        from rtml.cli.commands.data import scenario_options, train_from_log, train_model

        cfg = _load(a)
        if a.from_log:
            if a.history is not None:
                raise ConfigError(
                    "--from-log and --history are two different sources",
                    hint="pass one of them",
                )
            train_from_log(cfg, a.as_of, a.estimator, a.reweigh)
        else:
            if a.as_of is not None:
                raise ConfigError(
                    "--as-of goes with --from-log", hint="add --from-log or drop --as-of"
                )
            train_model(
                cfg,
                scenario_options(a.seed, a.events, a.days, None, 0.0, a.bias, 0.0),
                a.history,
                a.labels,
                a.estimator,
                a.reweigh,
            )
    elif a.cmd == "export":
        from rtml.cli.commands.data import export_model

        export_model(
            _load(a), a.tolerance, not a.no_current, a.quantize_tolerance if a.quantize else None
        )
    elif a.cmd == "models":
        _models(a)
    elif a.cmd == "plan":
        from rtml.cli.commands.plan import plan

        plan(a.config, a.part, a.json, a.feature_order)
    elif a.cmd in ("run", "submit"):
        from rtml.cli.commands.job import JobTarget, run_embedded, submit

        cfg = _load(a)
        target = JobTarget(
            a.config,
            a.bootstrap,
            a.topic_prefix,
            a.bounded,
            a.model_version,
            a.parallelism,
            part=a.part,
            state_backend=a.state_backend,
        )
        if a.cmd == "run":
            run_embedded(cfg, target)
        else:
            submit(
                cfg,
                target,
                a.jobmanager,
                detached=not a.wait,
                from_savepoint=a.from_savepoint,
                allow_non_restored_state=a.allow_non_restored_state,
            )
    elif a.cmd == "jobs":
        from rtml.cli.commands import job

        if a.action == "list":
            job.jobs_list(a.jobmanager)
            return 0
        if not a.job_id:
            raise RtmlError(f"`rtml jobs {a.action}` needs a job id", hint="see `rtml jobs list`")
        if a.action == "cancel":
            job.jobs_cancel(a.jobmanager, a.job_id)
        elif a.action == "stop":
            job.jobs_stop(a.jobmanager, a.job_id, a.savepoint_dir, drain=a.drain)
        elif a.action == "savepoint":
            job.jobs_savepoint(a.jobmanager, a.job_id, a.savepoint_dir)
        else:
            job.jobs_metrics(a.jobmanager, a.job_id)
    elif a.cmd == "reports":
        from rtml.cli.commands.review import collect, last_run, print_table
        from rtml.core.config import load_config

        last = last_run() or {}
        config = a.config or Path(last.get("config", DEFAULT_CONFIG))
        cfg = load_config(config)
        bootstrap = a.bootstrap or last.get("bootstrap")
        if bootstrap:
            cfg = cfg.with_bootstrap(bootstrap)
        prefix = a.topic_prefix if a.topic_prefix is not None else last.get("topic_prefix", "")
        if prefix:
            cfg = cfg.with_topic_prefix(prefix)
        verdicts = collect(cfg)
        print_table(verdicts)
        print(f"\nEvidently snapshots: {paths.workspace_dir()} (serve them with `rtml ui`)")
        if a.export:
            from rtml.cli.commands.report_export import export

            export(verdicts, a.export)
    elif a.cmd == "ui":
        from rtml.cli.commands.services import ui

        return ui(a.port, a.workspace)
    return 0


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        return dispatch(a)
    except RtmlError as e:
        fail(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        fail("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
