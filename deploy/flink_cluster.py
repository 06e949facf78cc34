"""A local Flink standalone session cluster, run from the pip-installed Flink.

The configuration template is ``deploy/flink/conf/config.yaml``; it is rendered into
``$RTML_HOME/flink/conf`` (FLINK_CONF_DIR) with this checkout's Python interpreter, so the
TaskManagers run Python UDFs with the project's virtual environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy import prereqs
from deploy.flink_rest import FlinkRest
from deploy.process import child_env, port_free, port_open, wait_for
from rtml.core import paths
from rtml.core.errors import ServiceError, SetupError

TEMPLATE = Path(__file__).resolve().parent / "flink" / "conf" / "config.yaml"
HOST = "127.0.0.1"


def flink_home() -> Path:
    try:
        import pyflink
    except ImportError:
        raise SetupError(
            "PyFlink is not installed in this environment", hint="run `make setup`"
        ) from None
    return Path(pyflink.__file__).resolve().parent


@dataclass(frozen=True)
class Cluster:
    rest_port: int = 8081
    rpc_port: int = 6123
    slots: int = 2
    # Flink's Prometheus reporter binds to every interface (it has no host option), so it is
    # off unless asked for; each JobManager/TaskManager takes a port from this range
    prometheus_ports: str | None = None

    @classmethod
    def on_port(cls, rest_port: int, **kw) -> Cluster:
        """A local cluster on ``rest_port``, its RPC port at the same offset from 6123, so
        clusters on different REST ports never collide."""
        return cls(rest_port=rest_port, rpc_port=rest_port - 8081 + 6123, **kw)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.rest_port}"

    @property
    def home(self) -> Path:
        return paths.home() / "flink" / str(self.rest_port)

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    def env(self) -> dict[str, str]:
        return child_env(
            FLINK_CONF_DIR=str(self.conf_dir),
            FLINK_LOG_DIR=str(self.home / "log"),
            FLINK_PID_DIR=str(self.home),
            FLINK_LIB_DIR=str(self.lib_dir),
            PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        )

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    def link_libs(self) -> None:
        """The cluster's class path: Flink's ``lib/`` and, from ``opt/``, flink-python (with
        PemJa, thread mode's embedded interpreter). A PyFlink job ships flink-python as a job
        jar, so each job's class loader loaded those classes again: the TaskManager ran out of
        metaspace after about a dozen jobs, and PemJa, whose native library loads once per JVM,
        failed in every job after the first that used thread mode (FLINK-37727; with
        ``classloader.parent-first-patterns.additional: pemja.`` in the config both now load
        once, from here)."""
        if self.lib_dir.exists():
            shutil.rmtree(self.lib_dir)
        self.lib_dir.mkdir(parents=True)
        home = flink_home()
        for jar in [*(home / "lib").glob("*.jar"), *(home / "opt").glob("flink-python*.jar")]:
            (self.lib_dir / jar.name).symlink_to(jar)

    def render_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.link_libs()
        (self.home / "log").mkdir(exist_ok=True)
        text = TEMPLATE.read_text().format(
            rpc_port=self.rpc_port,
            rest_port=self.rest_port,
            slots=self.slots,
            python=sys.executable,
            state_dir=self.home / "state",
        )
        if self.prometheus_ports:
            text += (
                "metrics.reporter.prom.factory.class: "
                "org.apache.flink.metrics.prometheus.PrometheusReporterFactory\n"
                f"metrics.reporter.prom.port: {self.prometheus_ports}\n"
            )
        (self.conf_dir / "config.yaml").write_text(text)
        src = flink_home() / "conf"
        for name in (
            "log4j.properties",
            "log4j-console.properties",
            "log4j-cli.properties",
            "log4j-session.properties",
            "logback.xml",
        ):
            if (src / name).is_file():
                shutil.copyfile(src / name, self.conf_dir / name)
        (self.conf_dir / "masters").write_text(f"{HOST}:{self.rest_port}\n")
        (self.conf_dir / "workers").write_text(f"{HOST}\n")

    @property
    def rest(self) -> FlinkRest:
        return FlinkRest(self.address)

    def overview(self) -> dict | None:
        return self.rest.overview()

    def running(self) -> bool:
        ov = self.overview()
        return ov is not None and ov.get("taskmanagers", 0) > 0

    def status(self) -> str:
        ov = self.overview()
        if ov is None:
            return f"Flink session cluster on {self.address}: stopped"
        return (
            f"Flink session cluster on {self.address}: running, {ov.get('taskmanagers')} TaskManager(s), "
            f"{ov.get('slots-available')}/{ov.get('slots-total')} slots free, {ov.get('jobs-running')} job(s) running (UI http://{self.address})"
        )

    def _script(self, name: str) -> list[str]:
        return ["bash", str(flink_home() / "bin" / name)]

    def _run(self, script: str, action: str, what: str) -> None:
        run = subprocess.run(
            self._script(script) + [action], env=self.env(), capture_output=True, text=True
        )
        if run.returncode != 0:
            raise ServiceError(
                f"{what} did not {action}: {(run.stdout + run.stderr).strip()[-300:]}",
                hint=f"read the logs in {self.home / 'log'}",
            )

    def start(self, taskmanagers: int = 1, timeout: float = 120.0) -> str:
        if self.running():
            return f"Flink session cluster already running on {self.address}"
        prereqs.java()
        for p in (self.rest_port, self.rpc_port):
            if not port_free(HOST, p):
                raise ServiceError(
                    f"port {HOST}:{p} is taken by another process",
                    hint="stop it, or pick another port: rtml cluster start --rest-port N (the RPC port follows it)",
                )
        self.render_conf()
        self._run("jobmanager.sh", "start", "the JobManager")
        for _ in range(taskmanagers):
            self._run("taskmanager.sh", "start", "a TaskManager")
        if not wait_for(
            lambda: (self.overview() or {}).get("taskmanagers", 0) >= taskmanagers, timeout, 1.0
        ):
            raise ServiceError(
                f"the Flink cluster on {self.address} did not come up with {taskmanagers} TaskManager(s) in {timeout:.0f}s",
                hint=f"read the logs in {self.home / 'log'}",
            )
        return f"Flink session cluster started on {self.address} with {taskmanagers} TaskManager(s) x {self.slots} slots (web UI http://{self.address})"

    def stop(self) -> str:
        if not port_open(HOST, self.rest_port) and not any(self.home.glob("*.pid")):
            return f"Flink session cluster on {self.address} is not running"
        subprocess.run(
            self._script("taskmanager.sh") + ["stop-all"], env=self.env(), capture_output=True
        )
        subprocess.run(
            self._script("jobmanager.sh") + ["stop-all"], env=self.env(), capture_output=True
        )
        wait_for(lambda: not port_open(HOST, self.rest_port), 30)
        return f"Flink session cluster on {self.address} stopped"

    def jobs(self) -> list[dict]:
        return self.rest.jobs()

    def prometheus_ports_range(self) -> range:
        """The ports the Prometheus reporter may listen on (empty when it is off). The reporter
        binds every interface: Flink has no bind-host option for it, so it is opt-in."""
        if not self.prometheus_ports:
            return range(0)
        lo, _, hi = self.prometheus_ports.partition("-")
        return range(int(lo), int(hi or lo) + 1)

    def taskmanager_ids(self) -> set[str]:
        return {tm["id"] for tm in self.rest.get("/taskmanagers").get("taskmanagers", [])}

    def taskmanager_processes(self) -> list:
        """This cluster's TaskManager processes (psutil), told apart from other clusters' by
        the config directory on their command line."""
        import psutil

        marker = str(self.conf_dir)
        out = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info.get("cmdline") or [])
            if "TaskManagerRunner" in cmd and marker in cmd:
                out.append(p)
        return out

    def taskmanager_process(self, taskmanager_id: str):
        """The process of the TaskManager with this id (as in the REST API): the one that
        listens on the TaskManager's data port."""
        tm = self.rest.get(f"/taskmanagers/{taskmanager_id}")
        port = int(tm["dataPort"])
        for p in self.taskmanager_processes():
            try:
                if any(c.laddr.port == port for c in p.net_connections(kind="tcp")):
                    return p
            except Exception:  # exited meanwhile
                continue
        raise ServiceError(
            f"no TaskManager process of {self.address} listens on port {port}",
            hint="is the TaskManager still running? see `rtml cluster status`",
        )

    def add_taskmanager(self, timeout: float = 120.0) -> None:
        """Start one more TaskManager and wait until it has registered."""
        before = self.taskmanager_ids()
        self._run("taskmanager.sh", "start", "a TaskManager")
        if not wait_for(lambda: self.taskmanager_ids() - before, timeout, 1.0):
            raise ServiceError(
                f"a new TaskManager did not register with {self.address} in {timeout:.0f}s",
                hint=f"read the logs in {self.home / 'log'}",
            )
