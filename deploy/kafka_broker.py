"""Start, stop and inspect a single-node KRaft Apache Kafka broker on 127.0.0.1.

The broker runs from the Maven jars (``deploy/kafka/pom.xml``); its configuration, data, log
and pid file live under ``$RTML_HOME/kafka/<port>/``.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from deploy import jars, prereqs
from deploy.process import child_env, port_free, port_open, read_pid, terminate, wait_for
from rtml.core import paths
from rtml.core.errors import ServiceError

HERE = Path(__file__).resolve().parent / "kafka"
HOST = "127.0.0.1"
DEFAULT_PORT = 9092
HEAP = "-Xmx768m"


@dataclass(frozen=True)
class Broker:
    port: int = DEFAULT_PORT
    controller_port: int | None = None
    host: str = HOST
    # (user, password) pairs: the client listener then requires SASL/PLAIN (SASL_PLAINTEXT)
    sasl_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def _sasl_properties(self) -> str:
        """Overrides appended to server.properties for a SASL/PLAIN client listener; the
        broker authenticates to itself as the first user."""
        if not self.sasl_users:
            return ""
        (user, password), users = self.sasl_users[0], self.sasl_users
        accounts = " ".join(f'user_{u}="{p}"' for u, p in users)
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{user}" password="{password}" {accounts};'
        )
        return (
            f"\nlisteners=SASL_PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.cport}\n"
            f"advertised.listeners=SASL_PLAINTEXT://{self.host}:{self.port}\n"
            "inter.broker.listener.name=SASL_PLAINTEXT\n"
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT\n"
            "sasl.enabled.mechanisms=PLAIN\n"
            "sasl.mechanism.inter.broker.protocol=PLAIN\n"
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}\n"
        )

    def _client(self) -> dict:
        if not self.sasl_users:
            return {}
        user, password = self.sasl_users[0]
        return {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": user,
            "sasl_plain_password": password,
        }

    @property
    def cport(self) -> int:
        return self.controller_port or self.port + 1

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def home(self) -> Path:
        return paths.home() / "kafka" / str(self.port)

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def running(self) -> bool:
        return self.pid() is not None and port_open(self.host, self.port)

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"Kafka broker on {self.bootstrap}: stopped"
        state = "running" if port_open(self.host, self.port) else "starting (port not open yet)"
        return f"Kafka broker on {self.bootstrap}: {state} (pid {pid}, data {self.home})"

    def start(self, timeout: float = 90.0) -> str:
        if self.running():
            return f"Kafka broker already running on {self.bootstrap} (pid {self.pid()})"
        java = prereqs.java()
        for p in (self.port, self.cport):
            if not port_free(self.host, p):
                raise ServiceError(
                    f"port {self.host}:{p} is taken by another process",
                    hint=f"stop that process or pick another port: rtml broker start --port {p + 10}",
                )
        libs = jars.kafka_libs()
        self.home.mkdir(parents=True, exist_ok=True)
        data = self.home / "data"
        props = self.home / "server.properties"
        props.write_text(
            (HERE / "server.properties.template")
            .read_text()
            .format(host=self.host, port=self.port, controller_port=self.cport, log_dirs=data)
            + self._sasl_properties()
        )
        props.chmod(0o600)  # may hold the SASL passwords
        cp = f"{libs}/*"
        log4j = f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}"
        if not (data / "meta.properties").is_file():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            fmt = subprocess.run(
                [
                    java,
                    HEAP,
                    log4j,
                    "-cp",
                    cp,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(props),
                    "--standalone",
                ],
                capture_output=True,
                text=True,
            )
            if fmt.returncode != 0:
                raise ServiceError(
                    f"formatting the broker storage failed: {(fmt.stdout + fmt.stderr).strip()[-300:]}",
                    hint=f"remove {data} and retry",
                )
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                [java, HEAP, "-XX:+UseG1GC", log4j, "-cp", cp, "kafka.Kafka", str(props)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
                env=child_env(),
            )
        self.pid_file.write_text(str(proc.pid))
        if not wait_for(
            lambda: proc.poll() is not None or port_open(self.host, self.port), timeout
        ):
            terminate(proc.pid)
            raise ServiceError(
                f"Kafka broker did not open {self.bootstrap} within {timeout:.0f}s",
                hint=f"read {self.log_file}",
            )
        if proc.poll() is not None:
            raise ServiceError(
                f"Kafka broker exited with code {proc.returncode} during start-up",
                hint=f"read the end of {self.log_file}",
            )
        if not wait_for(self._ready, 60):
            raise ServiceError(
                f"Kafka broker on {self.bootstrap} does not answer metadata requests",
                hint=f"read {self.log_file}",
            )
        return f"Kafka broker started on {self.bootstrap} (pid {proc.pid}, KRaft, data {data})"

    def _ready(self) -> bool:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=5000, **self._client()
            )
        except (KafkaError, OSError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (for failure tests); ``start`` recovers its
        data and carries on."""
        import os
        import signal

        pid = self.pid()
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            wait_for(lambda: port_free(self.host, self.port), 30)
        self.pid_file.unlink(missing_ok=True)

    def stop(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"Kafka broker on {self.bootstrap} is not running"
        terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return f"Kafka broker on {self.bootstrap} stopped"
