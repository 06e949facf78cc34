"""`rtml setup`, `rtml broker ...`, `rtml cluster ...`, `rtml ui`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deploy import jars, prereqs
from deploy.flink_cluster import Cluster
from deploy.kafka_broker import Broker
from rtml.cli.console import say, step
from rtml.core import paths
from rtml.core.config import JobConfig
from rtml.core.errors import ServiceError


def setup() -> dict[str, Path]:
    step("checking Java, its compiler and Maven")
    prereqs.java()
    prereqs.javac()
    prereqs.maven()
    step("fetching the Flink Kafka connector jar (Maven Central, once) and adding rtml's classes")
    conn = jars.job_jar()
    say(f"    {conn}")
    step("fetching the Kafka broker jars (Maven Central, once)")
    libs = jars.kafka_libs()
    say(f"    {libs} ({len(list(libs.glob('*.jar')))} jars)")
    return {"connector": conn, "kafka_libs": libs}


def broker(action: str, port: int) -> None:
    b = Broker(port=port)
    if action == "start":
        jars.kafka_libs()
        say(b.start())
    elif action == "stop":
        say(b.stop())
    else:
        say(b.status())


def cluster(
    action: str, rest_port: int, taskmanagers: int, slots: int, prometheus_ports: str | None = None
) -> None:
    c = Cluster.on_port(rest_port, slots=slots, prometheus_ports=prometheus_ports)
    if action == "start":
        say(c.start(taskmanagers=taskmanagers))
    elif action == "stop":
        say(c.stop())
    else:
        say(c.status())


def ui(cfg: JobConfig, port: int, workspace: Path | None) -> int:
    """The Evidently UI over the workspace; the config's project gets the monitoring
    dashboard first if it lacks it (a workspace written before rtml made one)."""
    from udfs.drift import ReportWorkspace

    ws = workspace or paths.workspace_dir()
    if not ws.is_dir():
        raise ServiceError(
            f"no report workspace at {ws}",
            hint="run `rtml demo` (or a job) first so there are reports to show",
        )
    m = cfg.monitoring
    if ReportWorkspace.has_project(ws, m.project):
        ReportWorkspace(ws, m.project, m.drift_share, m.four_fifths)
    exe = Path(sys.executable).parent / "evidently"
    env = dict(os.environ, DO_NOT_TRACK="1")
    say(f"Evidently UI over {ws} at http://127.0.0.1:{port} (Ctrl-C to stop)")
    # the UI server replaces this process, so a signal that stops `rtml ui` stops the server
    # (a child would outlive a SIGTERM to its parent, measured: the walkthrough test left one)
    os.execve(
        str(exe),
        [str(exe), "ui", "--workspace", str(ws), "--host", "127.0.0.1", "--port", str(port)],
        env,
    )
    return 0  # not reached
