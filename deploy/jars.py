"""Fetch the jars rtml runs on from Maven Central (idempotent, into $RTML_HOME)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tomllib
from pathlib import Path

from deploy import prereqs
from rtml import paths
from rtml.errors import SetupError

HERE = Path(__file__).resolve().parent
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def _mvn(args: list[str], what: str) -> None:
    cmd = [prereqs.maven(), "-B", "-q", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise SetupError(
            f"Maven could not fetch {what}: {' | '.join(tail)[:400]}",
            hint="check that Maven Central is reachable (proxy settings in ~/.m2/settings.xml)",
        )


def connector_coordinates() -> tuple[str, str, str]:
    c = tomllib.loads((HERE / "connectors" / "versions.toml").read_text())["kafka_connector"]
    return c["group"], c["artifact"], c["version"]


def connector_jar() -> Path:
    """The Flink Kafka connector fat jar, fetched once."""
    g, a, v = connector_coordinates()
    target = paths.jars_dir() / f"{a}-{v}.jar"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _mvn(
        [
            f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={g}:{a}:{v}",
            f"-DoutputDirectory={target.parent}",
        ],
        f"{g}:{a}:{v}",
    )
    if not target.is_file():
        raise SetupError(
            f"{target.name} was not written by Maven",
            hint="run `rtml setup` again and read Maven's output",
        )
    return target


def kafka_libs() -> Path:
    """The Kafka broker's runtime jars (from deploy/kafka/pom.xml), fetched once per pom."""
    pom = HERE / "kafka" / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    libs = paths.cache_dir() / "kafka-libs"
    marker = libs / f".complete-{digest}"
    if marker.is_file():
        return libs
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    _mvn(
        [
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ],
        "the Kafka broker jars",
    )
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise SetupError(
            "the Kafka broker jar is missing after the Maven copy", hint="run `rtml setup` again"
        )
    marker.touch()
    return libs
