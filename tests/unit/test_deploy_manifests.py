"""deploy/docker/Dockerfile and the FlinkDeployment manifests agree with the code: versions
(Flink, the connector, Python, rtml), paths inside the image, the job's entry point and
arguments, storage, upgrade mode and autoscaler settings."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from deploy.flink_cluster import flink_home
from deploy.jars import connector_coordinates
from flink_jobs.job import parse_args
from rtml.core.config import load_config

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
K8S = REPO / "deploy" / "k8s"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
FLINK_VERSION = importlib.metadata.version("apache-flink")
# what the job sets itself: a cluster-level value would be silently overridden
JOB_OWNED_KEYS = {
    "execution.checkpointing.interval",
    "execution.checkpointing.mode",
    "state.backend.type",
    "parallelism.default",
}


def _docker() -> dict:
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    copies = re.findall(r"^COPY (?!--from)(.+)$", text, re.M)
    workdir = re.findall(r"^WORKDIR (\S+)$", text, re.M)[-1]
    venv = re.search(r"-m venv (\S+)", text).group(1)
    env = dict(re.findall(r"^ENV (\w+)=(\S+)$", text, re.M))
    return {
        "text": text,
        "args": args,
        "copies": copies,
        "workdir": workdir,
        "venv": venv,
        "env": env,
    }


def _deployments() -> list[tuple[str, dict]]:
    out = []
    for f in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("kind") == "FlinkDeployment":
                out.append((f.name, doc))
    return out


def _claims() -> set[str]:
    return {
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all((K8S / "storage.yaml").read_text())
        if doc and doc.get("kind") == "PersistentVolumeClaim"
    }


def test_dockerfile_versions_match_the_project():
    d = _docker()
    assert d["args"]["FLINK_VERSION"] == FLINK_VERSION
    assert d["args"]["KAFKA_CONNECTOR_VERSION"] == connector_coordinates()[2]
    assert "FROM flink:${FLINK_VERSION}-java17" in d["text"]
    lo, hi = re.match(r">=(\d+\.\d+),<(\d+\.\d+)", PYPROJECT["project"]["requires-python"]).groups()
    py = d["args"]["PYTHON_VERSION"]
    assert (
        tuple(map(int, lo.split(".")))
        <= tuple(map(int, py.split(".")))
        < tuple(map(int, hi.split(".")))
    )


def test_dockerfile_copies_every_package_and_only_existing_paths():
    d = _docker()
    sources = set()
    for line in d["copies"]:
        *srcs, _dest = line.split()
        for s in srcs:
            assert (REPO / s).exists(), f"COPY {s}: no such path in the repository"
            sources.add(s.rstrip("/"))
    packages = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= sources, f"packages not copied into the image: {packages - sources}"
    assert "pyproject.toml" in sources


@pytest.mark.parametrize("name,dep", _deployments(), ids=[n for n, _ in _deployments()])
def test_flink_deployment_is_consistent_with_image_and_job(name, dep):
    d = _docker()
    spec = dep["spec"]
    conf = spec["flinkConfiguration"]
    major, minor = FLINK_VERSION.split(".")[:2]
    assert spec["image"] == f"rtml:{PYPROJECT['project']['version']}"
    assert spec["flinkVersion"] == f"v{major}_{minor}"

    job = spec["job"]
    jar = f"flink-python-{FLINK_VERSION}.jar"
    assert job["jarURI"] == f"local:///opt/flink/opt/{jar}"
    assert (flink_home() / "opt" / jar).is_file()  # the distribution ships it at that path
    assert job["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    assert job["upgradeMode"] == "savepoint"

    args = list(job["args"])
    py = f"{d['venv']}/bin/python"
    assert args[:4] == ["-pyclientexec", py, "-py", f"{d['workdir']}/flink_jobs/job.py"]
    assert conf["python.executable"] == conf["python.client.executable"] == py

    def in_repo(image_path: str) -> Path:
        assert image_path.startswith(d["workdir"] + "/"), image_path
        return REPO / image_path.removeprefix(d["workdir"] + "/")

    assert in_repo(args[3]).is_file()
    a = parse_args(args[4:])  # the job's own parser accepts the arguments
    load_config(in_repo(a.config))  # and the config it names is valid
    assert a.part in ("scoring", "monitoring")
    assert name == f"rtml-{a.part}.yaml"
    assert a.parallelism == job["parallelism"]
    assert a.state_backend == "rocksdb"

    # storage: checkpoints, savepoints and HA on a mounted volume; registry + workspace too
    container = spec["podTemplate"]["spec"]["containers"][0]
    assert container["name"] == "flink-main-container"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec["podTemplate"]["spec"]["volumes"]
    }
    assert set(mounts.values()) == set(volumes)
    assert set(volumes.values()) <= _claims()

    def mounted(path: str) -> bool:
        p = path.removeprefix("file://")
        return any(p == m or p.startswith(m + "/") for m in mounts)

    for key in (
        "execution.checkpointing.dir",
        "execution.checkpointing.savepoint-dir",
        "high-availability.storageDir",
    ):
        assert mounted(conf[key]), f"{key} = {conf[key]} is not on a mounted volume"
    assert conf["high-availability.type"] == "kubernetes"
    assert mounted(a.registry) and mounted(a.workspace)
    assert d["env"]["RTML_HOME"] in mounts

    assert not JOB_OWNED_KEYS & set(conf), "the job overrides these; set them in the rtml config"
    # metrics: the Prometheus reporter class exists in the distribution's plugin
    factory = conf["metrics.reporter.prom.factory.class"]
    plugin = next((flink_home() / "plugins" / "metrics-prometheus").glob("*.jar"))
    with zipfile.ZipFile(plugin) as z:
        assert factory.replace(".", "/") + ".class" in z.namelist()
    # autoscaler: scoring scales within the key-group limit; the monitors are single-key
    if a.part == "scoring":
        # a rescaled job must compute the same features: event-time order, not arrival order
        assert a.feature_order == "event-time"
        assert conf["job.autoscaler.enabled"] == "true"
        lo = int(conf["job.autoscaler.vertex.min-parallelism"])
        hi = int(conf["job.autoscaler.vertex.max-parallelism"])
        assert 1 <= lo <= job["parallelism"] <= hi <= int(conf["pipeline.max-parallelism"])
        assert 0 < float(conf["job.autoscaler.utilization.target"]) < 1
    else:
        assert conf["job.autoscaler.enabled"] == "false"
    for side in ("jobManager", "taskManager"):
        assert re.fullmatch(r"\d+m", spec[side]["resource"]["memory"])
