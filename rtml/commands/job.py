"""`rtml run` (embedded MiniCluster), `rtml submit` (session cluster), `rtml jobs ...`."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from deploy import jars
from deploy.flink_cluster import Cluster, flink_home
from deploy.process import child_env
from rtml import paths
from rtml.config import JobConfig
from rtml.console import say, step
from rtml.errors import JobError, ServiceError
from rtml.kafka_client import end_offsets, ensure_topics

MONITORING_NICE = 10


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
    part: str = "all"  # "all", "scoring" or "monitoring"

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
        if self.bootstrap:
            a += ["--bootstrap", self.bootstrap]
        if self.topic_prefix:
            a += ["--topic-prefix", self.topic_prefix]
        if self.bounded:
            a.append("--bounded")
        if self.parallelism:
            a += ["--parallelism", str(self.parallelism)]
        if self.checkpoint_dir:
            a += ["--checkpoint-dir", self.checkpoint_dir]
        return a + ["--part", self.part]


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


def run_embedded(cfg: JobConfig, target: JobTarget, expected_scores: int | None = None) -> float:
    """Run the job on an embedded MiniCluster in a child process; returns seconds taken."""
    conn = jars.connector_jar()
    ensure_topics(cfg)
    log = _log_path("job")
    cmd = [sys.executable, "-m", "flink_jobs.job", *target.args(), "--jar", conn.resolve().as_uri()]
    if target.part == "monitoring":
        # the monitoring job (JVM and Python workers) yields the CPU to scoring on a shared machine
        cmd = ["nice", "-n", str(MONITORING_NICE), *cmd]
    step(
        f"running job {cfg.job.name!r} on the embedded Flink MiniCluster{' until the input is consumed' if target.bounded else ''} (log {log})"
    )
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_scores, args=(cfg, stop, expected_scores), daemon=True)
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=paths.REPO_ROOT, env=child_env()
        )
        watcher.start()
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(30)
            raise
        finally:
            stop.set()
    took = time.monotonic() - t0
    if rc != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        msg = next((ln for ln in reversed(lines) if ln.startswith("rtml: error:")), None)
        if msg:
            raise JobError(msg.removeprefix("rtml: error: "))
        cause = next(
            (ln for ln in reversed(lines) if "Caused by" in ln or "Error" in ln),
            lines[-1] if lines else "no output",
        )
        raise JobError(f"the job failed (exit {rc}): {cause.strip()[:300]}", hint=f"read {log}")
    say(f"    job finished in {took:.0f}s")
    return took


def submit(cfg: JobConfig, target: JobTarget, jobmanager: str, detached: bool = True) -> str:
    conn = jars.connector_jar()
    ensure_topics(cfg)
    host, _, port = jobmanager.partition(":")
    cluster = Cluster(rest_port=int(port or 8081))
    if cluster.overview() is None:
        raise ServiceError(
            f"no Flink cluster answers at {jobmanager}",
            hint="start one with `rtml cluster start` or pass --jobmanager HOST:PORT",
        )
    flink = flink_home() / "bin" / "flink"
    ship = ",".join(
        str(paths.REPO_ROOT / d) for d in ("rtml", "udfs", "models", "flink_jobs", "deploy")
    )
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
    cmd += ["-py", str(paths.REPO_ROOT / "flink_jobs" / "job.py"), *target.args()]
    log = _log_path("submit")
    step(f"submitting job {cfg.job.name!r} to the Flink cluster at {jobmanager} (log {log})")
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


def jobs_list(jobmanager: str) -> None:
    _, _, port = jobmanager.partition(":")
    jobs = Cluster(rest_port=int(port or 8081)).jobs()
    if not jobs:
        say(f"no jobs on {jobmanager}")
    for j in jobs:
        say(
            f"{j['jid']}  {j['state']:<10} {j['name']}  started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(j['start-time'] / 1000))}"
        )


def jobs_cancel(jobmanager: str, job_id: str) -> None:
    req = urllib.request.Request(f"http://{jobmanager}/jobs/{job_id}", method="PATCH")
    try:
        urllib.request.urlopen(req, timeout=10).read()
    except OSError as e:
        raise JobError(
            f"cannot cancel job {job_id} on {jobmanager} ({e})",
            hint="list the jobs with `rtml jobs list`",
        ) from None
    say(f"cancellation of {job_id} requested")
