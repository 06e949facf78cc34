"""Security basics that need no running service: nothing read from a stream is unpickled or
evaluated; every service's configuration binds 127.0.0.1 by default; Kafka security settings
reach both kinds of client; secrets stay out of repr and config files."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from deploy.kafka_client import client_settings
from rtml.core import paths

PRODUCT = ("rtml", "udfs", "flink_jobs", "models", "deploy")
# (module, call) pairs that deserialize code or objects; the one allowed use is the trained
# sklearn pipeline read back from rtml's own artifacts folder at export time.
DANGEROUS = {
    ("pickle", "load"),
    ("pickle", "loads"),
    ("cloudpickle", "loads"),
    ("marshal", "loads"),
    ("yaml", "load"),
    ("joblib", "load"),
    ("dill", "loads"),
}
BUILTINS = {"eval", "exec", "compile", "__import__"}
ALLOWED = {("models/export.py", "joblib.load")}


def _calls(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in BUILTINS:
            yield f.id
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            if (f.value.id, f.attr) in DANGEROUS:
                yield f"{f.value.id}.{f.attr}"


def test_nothing_is_unpickled_or_evaluated():
    found = []
    for pkg in PRODUCT:
        for path in sorted((paths.REPO_ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(paths.REPO_ROOT).as_posix()
            found += [(rel, call) for call in _calls(path) if (rel, call) not in ALLOWED]
    assert found == []


def test_stream_records_are_decoded_with_json_only(cfg):
    # a pickle payload is just invalid JSON to the parser
    import pickle

    from rtml.cli.scenarios.hostile import KINDS  # noqa: F401  (the hostile kinds cover the parser)
    from udfs.validation import parse_event

    with pytest.raises(Exception, match="not valid"):
        parse_event(pickle.dumps({"event_id": "x"}), cfg.schema)


def test_service_configs_bind_loopback():
    kafka = (paths.DEPLOY_DIR / "kafka" / "server.properties.template").read_text()
    rendered = kafka.format(host="127.0.0.1", port=9092, controller_port=9093, log_dirs="/d")
    for line in rendered.splitlines():
        if line.startswith(("listeners=", "advertised.listeners=", "controller.quorum")):
            for addr in line.split("=", 1)[1].split(","):
                assert "127.0.0.1" in addr, line
    from deploy.kafka_broker import HOST as KAFKA_HOST

    assert KAFKA_HOST == "127.0.0.1"
    flink = (paths.DEPLOY_DIR / "flink" / "conf" / "config.yaml").read_text()
    for key in ("bind-host", "bind-address", "address", "host"):
        for line in flink.splitlines():
            if line.strip().startswith(f"{key}:"):
                assert line.split(":", 1)[1].strip() == "127.0.0.1", line
    ui = (paths.REPO_ROOT / "rtml" / "cli" / "commands" / "services.py").read_text()
    assert '"--host", "127.0.0.1"' in ui


SASL = (
    ("security.protocol", "SASL_SSL"),
    ("sasl.mechanism", "SCRAM-SHA-512"),
    (
        "sasl.jaas.config",
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="svc" password="s3cr\\"t";',
    ),
    ("ssl.truststore.type", "PEM"),
    ("ssl.truststore.location", "/etc/kafka/ca.pem"),
    ("ssl.endpoint.identification.algorithm", ""),
    ("client.dns.lookup", "use_all_dns_ips"),
)


def test_security_settings_reach_the_python_clients(cfg):
    c = replace(cfg, kafka=replace(cfg.kafka, properties=SASL))
    assert client_settings(c) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": 's3cr"t',
        "ssl_cafile": "/etc/kafka/ca.pem",
        "ssl_check_hostname": False,
    }
    assert "s3cr" not in repr(c) and "s3cr" not in repr(c.kafka)


def test_environment_variables_fill_in_secrets(tmp_path, monkeypatch):
    from rtml.core.config import load_config
    from tests.conftest import DEMO_CONFIG

    text = DEMO_CONFIG.read_text().replace(
        "[kafka.properties]\n", '[kafka.properties]\n"sasl.password.x" = "a-${RTML_T_PW}-b"\n'
    )
    p = tmp_path / "c.toml"
    p.write_text(text)
    monkeypatch.setenv("RTML_T_PW", "hunter2")
    assert dict(load_config(p).kafka.properties)["sasl.password.x"] == "a-hunter2-b"


def test_class_names_in_kafka_properties_follow_the_connectors_relocation(cfg):
    from flink_jobs.kafka_io import SHADED_KAFKA_PACKAGE, client_properties

    jaas = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u";'
    c = replace(cfg, kafka=replace(cfg.kafka, properties=(("sasl.jaas.config", jaas),)))
    ((_, v),) = client_properties(c)
    assert v == SHADED_KAFKA_PACKAGE + jaas.removeprefix("org.apache.kafka.")
    c = replace(cfg, kafka=replace(cfg.kafka, properties=(("sasl.jaas.config", v),)))
    assert client_properties(c) == [("sasl.jaas.config", v)]  # already relocated: unchanged
