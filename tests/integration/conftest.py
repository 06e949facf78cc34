"""Integration tier: a real Kafka broker (KRaft, from the Maven jars) started for the session,
a model trained and exported into a temporary RTML_HOME, jobs on real Flink."""

from __future__ import annotations

import os

import pytest

from deploy.flink_rest import FlinkRest
from deploy.kafka_broker import Broker

ENDED = {"FINISHED", "CANCELED", "FAILED"}


@pytest.fixture(scope="session")
def rtml_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("rtml-home")
    old = os.environ.get("RTML_HOME")
    os.environ["RTML_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("RTML_HOME", None)
    else:
        os.environ["RTML_HOME"] = old


@pytest.fixture(scope="session")
def broker(rtml_home):
    b = Broker(port=int(os.environ.get("RTML_TEST_KAFKA_PORT", "19392")))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def model(cfg, rtml_home):
    from rtml.cli.commands.data import export_model, scenario_options, train_model

    train_model(
        cfg,
        scenario_options(
            seed=1,
            events=12_000,
            days=3.0,
            drift_at_h=None,
            drift_size=0.0,
            bias=0.25,
            bad_fraction=0.0,
        ),
        None,
        None,
    )
    return export_model(cfg)


@pytest.fixture(scope="session")
def cluster(rtml_home):
    """A local standalone session cluster: two TaskManagers x 2 slots (the job at parallelism
    2 runs on both), the Prometheus reporter on a test port range."""
    from deploy.flink_cluster import Cluster

    c = Cluster(rest_port=18081, rpc_port=16123, slots=2, prometheus_ports="19249-19259")
    c.start(taskmanagers=2)
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test(request):
    """A test that fails half-way must not leave its job holding the shared cluster's slots:
    the next test's job would wait for slots it never gets. Cancel what is still running."""
    yield
    if "cluster" not in request.fixturenames:
        return
    rest = FlinkRest(request.getfixturevalue("cluster").address)
    left = [j["jid"] for j in rest.jobs() if j.get("state") not in ENDED]
    for jid in left:
        rest.cancel(jid)
    for jid in left:
        rest.wait_for_state(jid, ENDED, 120)
