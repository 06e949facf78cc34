"""`rtml run` (embedded MiniCluster), `rtml submit` (session cluster), `rtml jobs ...`."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deploy import jars
from deploy.flink_cluster import Cluster, flink_home
from deploy.flink_rest import FlinkRest
from deploy.kafka_client import end_offsets, ensure_topics
from deploy.process import child_env
from rtml.cli.console import say, step
from rtml.core import paths
from rtml.core.config import JOB_PARTS, JobConfig
from rtml.core.errors import JobError, ServiceError

MONITORING_NICE = 10
METRICS_RETRIES = 6
METRICS_RETRY_S = 2.5
CONSUMER_LAG = ".pendingRecords"  # a source's records not yet read (FLIP-33)


@dataclass(frozen=True)
class JobTarget:
    """What a launch needs besides the config file: overrides and run options."""

    config_path: Path
    bootstrap: str | None = None
    topic_prefix: str = ""
    bounded: bool = False
    model_version: str = "current"
    parallelism: int | None = None
    checkpoint_dir: str | None = None
    part: str = "all"  # "all", "scoring", "monitoring" (or the bench's "floor", "naive")
    state_backend: str | None = None  # None: the config's [job] state_backend
    feature_order: str | None = None  # None: the config's [job] feature_order
    delivery: str | None = None  # None: the config's [job] delivery
    bundle_time_ms: int | None = None  # None: the config's [job] bundle_time
    python_workers: int | None = None  # None: the config's [job] python_workers
    execution_mode: str | None = None  # None: the config's [job] execution_mode
    checkpoint_interval_ms: int | None = None  # None: the config's [job] checkpoint_interval
    backfill_topic: str | None = None  # part "backfill": the topic holding the history

    def args(self) -> list[str]:
        a = [
            "--config",
            str(self.config_path.resolve()),
            "--registry",
            str(paths.registry_dir()),
            "--workspace",
            str(paths.workspace_dir()),
            "--model-version",
            self.model_version,
        ]
        for name in _OPTIONAL_ARGS:
            value = getattr(self, name)
            if value:
                a += [f"--{name.replace('_', '-')}", str(value)]
        if self.bounded:
            a.append("--bounded")
        return a + ["--part", self.part]


# JobTarget fields passed to the job entry point as `--<name>` when set
_OPTIONAL_ARGS = (
    "bootstrap",
    "topic_prefix",
    "parallelism",
    "checkpoint_dir",
    "state_backend",
    "feature_order",
    "delivery",
    "bundle_time_ms",
    "python_workers",
    "execution_mode",
    "checkpoint_interval_ms",
    "backfill_topic",
)


def _log_path(kind: str) -> Path:
    d = paths.home() / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.log"


def _watch_scores(cfg: JobConfig, stop: threading.Event, expected: int | None) -> None:
    """Print how many scores are visible (committed) while the job runs."""
    start = time.monotonic()
    while not stop.wait(10):
        try:
            n = end_offsets(cfg, [cfg.kafka.topics.scores])[cfg.kafka.topics.scores]
        except Exception:  # progress is best effort; the job's own result decides
            continue
        total = f" (expecting {expected} scores)" if expected else ""
        say(f"    {time.monotonic() - start:5.0f}s: scores topic at offset {n}{total}")


@dataclass
class EmbeddedRun:
    """One job on its own embedded MiniCluster (a child process), and its log."""

    part: str
    proc: subprocess.Popen
    log: Path
    out: Any  # the log file, open while the job runs

    def failure(self, rc: int) -> JobError:
        self.out.close()
        lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        msg = next((ln for ln in reversed(lines) if ln.startswith("rtml: error:")), None)
        if msg:
            return JobError(msg.removeprefix("rtml: error: "))
        cause = next(
            (ln for ln in reversed(lines) if "Caused by" in ln or "Error" in ln),
            lines[-1] if lines else "no output",
        )
        return JobError(
            f"the {self.part} job failed (exit {rc}): {cause.strip()[:300]}",
            hint=f"read {self.log}",
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.out.close()


def start_embedded(cfg: JobConfig, target: JobTarget) -> EmbeddedRun:
    conn = jars.job_jar()
    ensure_topics(cfg)
    # a log per part: two jobs started in the same second must not share a file
    log = _log_path("job" if target.part == "all" else f"job-{target.part}")
    cmd = [sys.executable, "-m", "flink_jobs.job", *target.args(), "--jar", conn.resolve().as_uri()]
    if target.part == "monitoring":
        # the monitoring job (JVM and Python workers) yields the CPU to scoring on a shared machine
        cmd = ["nice", "-n", str(MONITORING_NICE), *cmd]
    part = "" if target.part == "all" else f" ({target.part})"
    step(
        f"running job {cfg.job.name!r}{part} on the embedded Flink MiniCluster{' until the input is consumed' if target.bounded else ''} (log {log})"
    )
    out = log.open("w")
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, cwd=paths.REPO_ROOT, env=child_env()
    )
    return EmbeddedRun(target.part, proc, log, out)


def run_embedded(cfg: JobConfig, target: JobTarget, expected_scores: int | None = None) -> float:
    """Run the job on an embedded MiniCluster in a child process; returns seconds taken."""
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_scores, args=(cfg, stop, expected_scores), daemon=True)
    t0 = time.monotonic()
    job = start_embedded(cfg, target)
    watcher.start()
    try:
        rc = job.proc.wait()
    except KeyboardInterrupt:
        job.stop()
        raise
    finally:
        stop.set()
    took = time.monotonic() - t0
    if rc != 0:
        raise job.failure(rc)
    job.out.close()
    say(f"    job finished in {took:.0f}s")
    return took


def run_scoring_and_monitoring(cfg: JobConfig, target: JobTarget) -> float:
    """Scoring and the monitors as two jobs (``--part both``), the monitors reading the scores
    topic, so they never slow scoring down. Bounded: one after the other (the monitors read
    what scoring wrote); unbounded: side by side until both end, one fails or Ctrl-C."""
    if target.bounded:
        took = run_embedded(cfg, replace(target, part="scoring"))
        return took + run_embedded(cfg, replace(target, part="monitoring"))
    t0 = time.monotonic()
    jobs = [start_embedded(cfg, replace(target, part=p)) for p in ("scoring", "monitoring")]
    try:
        while any(j.proc.poll() is None for j in jobs):
            failed = next((j for j in jobs if j.proc.poll() not in (None, 0)), None)
            if failed is not None:
                for j in jobs:
                    if j is not failed:
                        j.stop()
                raise failed.failure(failed.proc.returncode)
            time.sleep(1)
    except KeyboardInterrupt:
        for j in jobs:
            j.stop()
        raise
    for j in jobs:
        if j.proc.returncode != 0:
            raise j.failure(j.proc.returncode)
        j.out.close()
    took = time.monotonic() - t0
    say(f"    both jobs finished in {took:.0f}s")
    return took


# what the Flink workers import: the layers below the CLI (rtml's own package only its core)
SHIPPED = ("udfs", "models", "flink_jobs", "deploy")


def shipped_packages() -> list[Path]:
    """The packages `flink run -pyfs` ships: ``SHIPPED`` and a copy of ``rtml`` that holds
    only its core (the workers never import the CLI)."""
    src = paths.REPO_ROOT / "rtml"
    core = sorted((src / "core").glob("*.py"))
    digest = hashlib.sha256()
    for f in [src / "__init__.py", *core]:
        digest.update(f.name.encode() + f.read_bytes())
    staged = paths.cache_dir() / "ship" / digest.hexdigest()[:16]
    if not (staged / "rtml" / "core" / "__init__.py").is_file():
        tmp = staged.with_name(staged.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "rtml" / "core").mkdir(parents=True)
        shutil.copy2(src / "__init__.py", tmp / "rtml" / "__init__.py")
        for f in core:
            shutil.copy2(f, tmp / "rtml" / "core" / f.name)
        shutil.rmtree(staged, ignore_errors=True)
        tmp.rename(staged)
    return [staged / "rtml", *(paths.REPO_ROOT / d for d in SHIPPED)]


def submit(
    cfg: JobConfig,
    target: JobTarget,
    jobmanager: str,
    detached: bool = True,
    from_savepoint: str | None = None,
    allow_non_restored_state: bool = False,
) -> str:
    """Submit the job with `flink run` (the Python code shipped with -pyfs, the connector
    with --jarfile); optionally restore a savepoint, also at another parallelism."""
    conn = jars.job_jar()
    ensure_topics(cfg)
    host, _, port = jobmanager.partition(":")
    cluster = Cluster(rest_port=int(port or 8081))
    if FlinkRest(jobmanager).overview() is None:
        raise ServiceError(
            f"no Flink cluster answers at {jobmanager}",
            hint="start one with `rtml cluster start` or pass --jobmanager HOST:PORT",
        )
    flink = flink_home() / "bin" / "flink"
    ship = ",".join(str(d) for d in shipped_packages())
    cmd = [
        "bash",
        str(flink),
        "run",
        "-m",
        jobmanager,
        "--jarfile",
        str(conn),
        "-pyexec",
        sys.executable,
        "-pyclientexec",
        sys.executable,
        "-pyfs",
        ship,
    ]
    if detached:
        cmd.append("-d")
    if from_savepoint:
        cmd += ["--fromSavepoint", from_savepoint]
        if allow_non_restored_state:
            cmd.append("--allowNonRestoredState")
    cmd += ["-py", str(paths.REPO_ROOT / "flink_jobs" / "job.py"), *target.args()]
    log = _log_path("submit")
    restore = f", restoring {from_savepoint}" if from_savepoint else ""
    step(
        f"submitting job {cfg.job.name!r} to the Flink cluster at {jobmanager}{restore} (log {log})"
    )
    env = cluster.env() if cluster.conf_dir.is_dir() else child_env()
    with log.open("w") as out:
        rc = subprocess.call(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=paths.REPO_ROOT, env=env
        )
    text = log.read_text(errors="replace")
    if rc != 0:
        err = next(
            (
                ln
                for ln in reversed(text.splitlines())
                if ln.startswith("rtml: error:") or "Caused by" in ln
            ),
            "see the log",
        )
        raise JobError(f"submission failed (exit {rc}): {err.strip()[:300]}", hint=f"read {log}")
    job_id = next(
        (ln.split()[-1] for ln in text.splitlines() if "JobID" in ln or "submitted job id" in ln),
        "?",
    )
    say(f"    submitted: job id {job_id} (web UI http://{jobmanager})")
    return job_id


def submit_scoring_and_monitoring(
    cfg: JobConfig, target: JobTarget, jobmanager: str, wait: bool = False
) -> list[str]:
    """Scoring and the monitors as two jobs (``--part both``), the monitors reading the scores
    topic. With ``wait`` (bounded input only) one after the other, each to its end."""
    if wait and not target.bounded:
        raise JobError(
            "--wait with --part both waits for two unbounded jobs that never end",
            hint="add --bounded, drop --wait, or pass --part all for one job",
        )
    return [
        submit(cfg, replace(target, part=part), jobmanager, detached=not wait)
        for part in ("scoring", "monitoring")
    ]


# a job in any other state may have failed and be failing again (a restart loop runs through
# RESTARTING, CREATED and RUNNING)
DONE_STATES = ("FINISHED", "CANCELED", "CANCELLING")


def jobs_list(jobmanager: str) -> None:
    """One line per job; a job that fails or restarts because of an error rtml raised on
    purpose (an incompatible savepoint, say) gets the error's message, with what to do."""
    rest = FlinkRest(jobmanager)
    jobs = rest.jobs()
    if not jobs:
        say(f"no jobs on {jobmanager}")
    for j in jobs:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j["start-time"] / 1000))
        say(f"{j['jid']}  {j['state']:<10} {j['name']}  started {started}")
        failure = rest.rtml_failure(j["jid"]) if j["state"] not in DONE_STATES else None
        if failure:
            say(f"    last failure: {failure}")


def jobs_cancel(jobmanager: str, job_id: str) -> None:
    FlinkRest(jobmanager).cancel(job_id)
    say(f"cancellation of {job_id} requested")


def jobs_stop(jobmanager: str, job_id: str, directory: str | None, drain: bool = False) -> str:
    """Stop with a savepoint; prints the path to give `rtml submit --from-savepoint`. With
    ``drain`` the stream ends first: every open window and buffered event is emitted."""
    step(f"stopping job {job_id} with a savepoint{', draining it first' if drain else ''}")
    rest = FlinkRest(jobmanager)
    part = job_part(rest.job(job_id).get("name", ""))
    path = rest.stop_with_savepoint(job_id, directory, drain=drain)
    say(f"    savepoint: {path}")
    if drain:
        say("    the job was drained: its windows are closed, so resume it only to start over")
    else:
        say(f"    resume with: rtml submit --part {part} --from-savepoint {path} [--parallelism N]")
    return path


def job_part(job_name: str) -> str:
    """The part of a job rtml submitted, from its name (``<job> (<part>)``); "all" otherwise."""
    name = job_name.strip()
    for part in JOB_PARTS:
        if name.endswith(f"({part})"):
            return part
    return "all"


def jobs_savepoint(jobmanager: str, job_id: str, directory: str | None) -> str:
    step(f"taking a savepoint of job {job_id} (the job keeps running)")
    path = FlinkRest(jobmanager).savepoint(job_id, directory)
    say(f"    savepoint: {path}")
    return path


def jobs_metrics(jobmanager: str, job_id: str) -> dict[str, dict[str, float]]:
    """rtml's own metrics per operator (counters summed over subtasks, gauges at their max)."""
    rest = FlinkRest(jobmanager)
    metrics = rest.operator_metrics(job_id, prefix=".rtml.")
    # the JobManager fetches metrics from the TaskManagers lazily: the first query starts it
    for _ in range(METRICS_RETRIES):
        if metrics:
            break
        time.sleep(METRICS_RETRY_S)
        metrics = rest.operator_metrics(job_id, prefix=".rtml.")
    if not metrics:
        say(f"no rtml metrics reported for job {job_id} yet (they appear after the first bundle)")
    # the Kafka sources' consumer lag (records behind the partitions' ends), Flink's own metric
    for vertex, values in rest.operator_metrics(job_id, prefix=CONSUMER_LAG).items():
        metrics.setdefault(vertex, {}).update(values)
    for vertex, values in metrics.items():
        say(vertex)
        for name, v in sorted(values.items()):
            say(f"    {name:<60} {v:>14,.0f}")
    return metrics
