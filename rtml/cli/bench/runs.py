"""The bench's two kinds of run, for a Flink job on the local cluster or the peer process:

- bounded over a preloaded backlog (throughput);
- unbounded under a paced load, a live read_committed reader polling the scores topic from
  offset 0 since before the load began (latency as a reader sees it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from deploy.flink_cluster import Cluster
from deploy.flink_rest import FlinkRest
from deploy.kafka_client import ensure_topics
from deploy.process import child_env
from rtml.cli.bench import peer
from rtml.cli.bench.load import produce_paced
from rtml.cli.bench.measure import (
    Latency,
    LiveReader,
    ProcessSampler,
    append_times,
    first_seen,
    latency,
)
from rtml.cli.commands.job import JobTarget, submit
from rtml.cli.console import say, step
from rtml.core import paths
from rtml.core.config import JobConfig
from rtml.core.errors import JobError

WARMUP_TIMEOUT_S = 120  # a job not through its warm-up by then is measured as it is
WORKER_START_S = 10  # after RUNNING: the Python workers start, the source gets its partitions
PEER_READY_S = 120
CHECKPOINT_WAIT_S = 60
BOUNDED_TIMEOUT_S = 900  # a bounded run of the bench's backlog takes a minute or two


class FlinkJob:
    """One of the bench's Flink jobs (``target.part``) on the local session cluster."""

    sample_interval_s = 1.0

    def __init__(self, cfg: JobConfig, target: JobTarget, cluster: Cluster) -> None:
        self.cfg = cfg
        self.target = target
        self.cluster = cluster
        self.rest = FlinkRest(cluster.address)
        self.job_id: str | None = None

    def processes(self) -> list:
        return self.cluster.taskmanager_processes()

    def run_bounded(self, timeout_s: float = BOUNDED_TIMEOUT_S) -> None:
        """Submit bounded and wait for the end; a job that has not finished by ``timeout_s``
        (a stall) is cancelled and reported."""
        job_id = submit(self.cfg, replace(self.target, bounded=True), self.cluster.address)
        try:
            state = self.rest.wait_for_state(job_id, {"FINISHED", "FAILED", "CANCELED"}, timeout_s)
        except JobError:
            self.rest.cancel(job_id)
            raise
        if state != "FINISHED":
            raise JobError(f"bounded job {job_id} ended {state}", hint="read the TaskManager logs")

    def start(self) -> None:
        self.job_id = submit(self.cfg, self.target, self.cluster.address, detached=True)
        self.rest.wait_for_state(self.job_id, {"RUNNING"}, 120)
        time.sleep(WORKER_START_S)

    def stop(self, want_state: bool) -> dict[str, int]:
        """Cancel the job; with ``want_state``, first its state by vertex in a checkpoint
        triggered from now on."""
        assert self.job_id is not None
        try:
            return state_after(self.rest, self.job_id, time.time() * 1000) if want_state else {}
        finally:
            self.rest.cancel(self.job_id)
            self.rest.wait_for_state(self.job_id, {"CANCELED", "FAILED", "FINISHED"}, 60)


def state_after(rest: FlinkRest, job_id: str, after_ms: float) -> dict[str, int]:
    """State by vertex in the first checkpoint triggered after ``after_ms``; an overloaded job
    may complete none in time (its barriers wait behind the backlog): then the latest one,
    or nothing."""
    deadline = time.monotonic() + CHECKPOINT_WAIT_S
    cp = None
    while time.monotonic() < deadline:
        cp = rest.latest_checkpoint(job_id)
        if cp and cp.get("trigger_timestamp", 0) > after_ms:
            break
        time.sleep(1)
    if not cp:
        say(f"    no checkpoint of job {job_id} completed: state per key not measured")
        return {}
    return rest.checkpoint_state_by_vertex(job_id, cp["id"])


class PeerJob:
    """The peer (``rtml.cli.bench.peer``) as its own process, so that its CPU and memory are its
    own."""

    sample_interval_s = 0.25  # it may finish a bounded run in seconds

    def __init__(self, cfg: JobConfig, config_path: Path, topic_prefix: str) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.topic_prefix = topic_prefix
        stamp = time.strftime("%Y%m%d-%H%M%S")
        logs = paths.home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"peer-{topic_prefix.strip('.')}-{stamp}.log"
        self.stats_file = self.log.with_suffix(".json")
        self.proc: subprocess.Popen | None = None
        self._ps = None

    def command(self, bounded: bool) -> list[str]:
        cmd = [sys.executable, "-m", "rtml.cli.bench.peer", "--config", str(self.config_path)]
        cmd += ["--bootstrap", self.cfg.kafka.bootstrap_servers]
        cmd += ["--topic-prefix", self.topic_prefix, "--registry", str(paths.registry_dir())]
        cmd += ["--stats", str(self.stats_file)]
        return cmd + (["--bounded"] if bounded else [])

    def processes(self) -> list:
        return [] if self._ps is None else [self._ps]

    def _spawn(self, bounded: bool) -> None:
        import psutil

        step(f"starting the peer{' (bounded)' if bounded else ''} (log {self.log})")
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                self.command(bounded),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=paths.REPO_ROOT,
                env=child_env(),
            )
        self._ps = psutil.Process(self.proc.pid)

    def _failed(self, what: str) -> JobError:
        lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("rtml: error:")), None)
        cause = last or (lines[-1] if lines else "no output")
        return JobError(f"the peer {what}: {cause.strip()[:300]}", hint=f"read {self.log}")

    def run_bounded(self, timeout_s: float = 3600.0) -> dict:
        """Run over the backlog to the end offsets as of its start; returns its stats."""
        self._spawn(bounded=True)
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise self._failed(f"did not finish within {timeout_s:.0f}s") from None
        if rc != 0:
            raise self._failed(f"failed (exit {rc})")
        return self.stats()

    def start(self) -> None:
        self._spawn(bounded=False)
        assert self.proc is not None
        deadline = time.monotonic() + PEER_READY_S
        while peer.READY not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise self._failed(f"exited before it was ready (exit {self.proc.returncode})")
            if time.monotonic() > deadline:
                self.stop(False)
                raise self._failed(f"was not ready after {PEER_READY_S}s")
            time.sleep(0.2)

    def stop(self, want_state: bool) -> dict[str, int]:
        """SIGTERM (it finishes its batch and commits), then its feature state's bytes."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not want_state or not self.stats_file.is_file():
            return {}
        return {peer.STATE_NAME: int(self.stats()["state_bytes"])}

    def stats(self) -> dict:
        return json.loads(self.stats_file.read_text())


Job = FlinkJob | PeerJob


@dataclass(frozen=True)
class LoadRun:
    """What one run under a paced load measured."""

    polled: Latency  # when the live reader polled each score, minus the event's append time
    appended: Latency  # the score's append time minus the event's
    cpu_cores: float
    rss_mb: float
    state: dict[str, int]  # state bytes by vertex (Flink) or the peer's


def bounded_run(job: Job) -> ProcessSampler:
    """The job over the preloaded backlog; returns the sampler of its processes."""
    sampler = ProcessSampler(job.processes, job.sample_interval_s).start()
    try:
        job.run_bounded()
    finally:
        sampler.stop()
    return sampler


@dataclass(frozen=True)
class Warmup:
    """The first ``records`` of a paced run, and the outputs that show the job is through
    them: the measured load starts only then, so a job still starting (Python workers,
    model sessions, first state reads) leaves no backlog for the measured events to queue
    behind (measured before this: seconds of p99 at a quarter of the pipeline's throughput)."""

    records: int
    outputs: int


def _warm_up(reader: LiveReader, cfg: JobConfig, records: list[str], w: Warmup, rate: float):
    produce_paced(cfg, cfg.kafka.topics.events, records[: w.records], rate)
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while reader.count < w.outputs and time.monotonic() < deadline:
        time.sleep(0.2)


def paced_run(
    job: Job,
    cfg: JobConfig,
    records: list[str],
    measured: set[str],
    expected: int,
    rate: float,
    want_state: bool,
    warmup: Warmup | None = None,
) -> LoadRun:
    """One unbounded run at a fixed offered load. The live reader is assigned before the job
    starts; the load is sent once the job is ready, and after ``warmup``'s records once the
    job is through them. ``measured``: the event ids timed (the valid ones after the
    warm-up); ``expected``: the outputs that mean the job caught up (a job that cannot keep
    up is given a while, then measured as it is)."""
    t = cfg.kafka.topics
    ensure_topics(cfg)
    reader = LiveReader(cfg, t.scores).start()
    try:
        job.start()
        sampler = ProcessSampler(job.processes, job.sample_interval_s).start()
        finished = False
        try:
            if warmup is not None:
                _warm_up(reader, cfg, records, warmup, rate)
                records = records[warmup.records :]
            produce_paced(cfg, t.events, records, rate)
            deadline = time.monotonic() + max(60.0, len(records) / rate)
            while reader.count < expected and time.monotonic() < deadline:
                time.sleep(0.5)
            finished = True
        finally:
            sampler.stop()
            state = job.stop(want_state and finished)
    finally:
        polled = reader.stop()
    ins = append_times(cfg, t.events, cfg.schema.event_id)
    timed = {e: ts for e, ts in ins.items() if e in measured}
    polls, appends = first_seen(polled, cfg.schema.event_id)
    return LoadRun(
        polled=latency(timed, polls),
        appended=latency(timed, appends),
        cpu_cores=sampler.cpu_cores,
        rss_mb=sampler.peak_rss / 2**20,
        state=state,
    )
