"""Security basics on the real components.

- SASL settings pass through configuration: a broker that requires SASL/PLAIN refuses a client
  without credentials, and the whole path (rtml's producer, the Flink job's Kafka source and
  exactly-once sink, reading the scores back) works with the credentials given only in
  ``[kafka.properties]``, the password from an environment variable.
- Secrets never appear in logs: after that run, the password is in no file under RTML_HOME
  except the broker's own server.properties (mode 0600).
- Services bind to 127.0.0.1: every listening socket of the broker and of the JobManager, and
  the TaskManagers' RPC and data ports, are on the loopback interface.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import psutil
import pytest

from deploy.kafka_broker import Broker
from deploy.kafka_client import read_topic
from rtml.cli.commands.data import produce_scenario, scenario_options
from rtml.cli.commands.job import JobTarget, run_embedded
from rtml.core import paths
from rtml.core.config import load_config
from tests.conftest import DEMO_CONFIG

pytestmark = pytest.mark.integration

SASL_PORT = 19492
PASSWORD_VAR = "RTML_TEST_KAFKA_PASSWORD"


@pytest.fixture(scope="module")
def sasl_broker(rtml_home):
    password = "pw-" + secrets.token_hex(12)
    b = Broker(port=SASL_PORT, sasl_users=(("rtml", password),))
    b.start()
    yield b, password
    b.stop()


def _sasl_config(tmp_path: Path, bootstrap: str) -> Path:
    text = DEMO_CONFIG.read_text()
    props = (
        "[kafka.properties]\n"
        '"security.protocol" = "SASL_PLAINTEXT"\n'
        '"sasl.mechanism" = "PLAIN"\n'
        '"sasl.jaas.config" = "org.apache.kafka.common.security.plain.PlainLoginModule required '
        f'username=\\"rtml\\" password=\\"${{{PASSWORD_VAR}}}\\";"\n'
    )
    assert "[kafka.properties]\n" in text
    text = text.replace("[kafka.properties]\n", props, 1)
    text = text.replace(
        'bootstrap_servers = "127.0.0.1:9092"', f'bootstrap_servers = "{bootstrap}"'
    )
    path = tmp_path / "cards-sasl.toml"
    path.write_text(text)
    return path


def test_sasl_settings_pass_through_and_the_password_stays_out_of_logs(
    sasl_broker, model, tmp_path, monkeypatch
):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    broker, password = sasl_broker
    with pytest.raises((KafkaError, OSError)):  # no credentials: refused
        KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=5000).list_topics()

    monkeypatch.setenv(PASSWORD_VAR, password)
    path = _sasl_config(tmp_path, broker.bootstrap)
    assert password not in path.read_text()
    c = load_config(path)
    assert password not in repr(c)
    produced = produce_scenario(
        c,
        scenario_options(
            seed=61,
            events=800,
            days=0.5,
            drift_at_h=None,
            drift_size=0.0,
            bias=0.2,
            bad_fraction=0.02,
        ),
    )
    run_embedded(c, JobTarget(path, bounded=True, part="scoring"))
    scores = read_topic(c, c.kafka.topics.scores)
    assert len(scores) == produced.valid
    assert len(read_topic(c, c.kafka.topics.dead_letter)) == produced.bad

    leaks = []
    for f in paths.home().rglob("*"):
        if not f.is_file() or f == broker.home / "server.properties":
            continue
        if f.stat().st_size > 50_000_000:
            continue
        if password.encode() in f.read_bytes():
            leaks.append(str(f))
    assert leaks == [], f"the SASL password is written in {leaks}"
    mode = stat.S_IMODE((broker.home / "server.properties").stat().st_mode)
    assert mode == 0o600


def _listening(pid: int) -> list[tuple[str, int]]:
    return [
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]


def _loopback(ip: str) -> bool:
    return ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1")


def test_services_listen_on_loopback_only(broker, cluster):
    kafka = _listening(broker.pid())
    assert {p for _, p in kafka} >= {broker.port, broker.cport}
    assert all(_loopback(ip) for ip, _ in kafka), kafka

    jm = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if "StandaloneSessionClusterEntrypoint" in " ".join(p.info["cmdline"] or [])
        and str(cluster.conf_dir) in " ".join(p.info["cmdline"] or [])
    )
    prometheus = cluster.prometheus_ports_range()
    jm_ports = [(ip, port) for ip, port in _listening(jm.pid) if port not in prometheus]
    assert cluster.rest_port in {p for _, p in jm_ports}
    assert all(_loopback(ip) for ip, _ in jm_ports), jm_ports

    for tm in cluster.rest.get("/taskmanagers")["taskmanagers"]:
        proc = cluster.taskmanager_process(tm["id"])
        ports = dict((port, ip) for ip, port in _listening(proc.pid))
        rpc_port = int(tm["id"].split(":")[1].split("-")[0])
        for port in (int(tm["dataPort"]), rpc_port):
            assert _loopback(ports[port]), (tm["id"], port, ports[port])


def test_a_missing_password_variable_is_named_not_guessed(tmp_path, monkeypatch):
    from rtml.core.errors import ConfigError

    monkeypatch.delenv(PASSWORD_VAR, raising=False)
    path = _sasl_config(tmp_path, "127.0.0.1:1")
    with pytest.raises(ConfigError, match=f"{PASSWORD_VAR}.*not set"):
        load_config(path)
    assert os.environ.get(PASSWORD_VAR) is None
