"""Fetch the jars rtml runs on from Maven Central (idempotent, into $RTML_HOME)."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import tempfile
import tomllib
import zipfile
from pathlib import Path

from deploy import prereqs
from rtml.core import paths
from rtml.core.errors import SetupError

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


JAVA_SOURCES = HERE / "flink" / "java"
# the oldest Java that Flink 2 runs on: the classes load on any cluster's JVM
JAVA_RELEASE = "11"


def job_jar() -> Path:
    """The jar every rtml job ships: the Kafka connector fat jar plus rtml's own Flink classes
    (``deploy/flink/java``, compiled against the pip-installed Flink), built once per source
    and connector version. One jar, because ``flink run`` takes one ``--jarfile``."""
    conn = connector_jar()
    sources = sorted(JAVA_SOURCES.rglob("*.java"))
    digest = hashlib.sha256(conn.name.encode())
    for src in sources:
        digest.update(src.relative_to(JAVA_SOURCES).as_posix().encode() + src.read_bytes())
    target = paths.jars_dir() / f"rtml-flink-{digest.hexdigest()[:16]}.jar"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        classes = Path(tmp) / "classes"
        cmd = [prereqs.javac(), "--release", JAVA_RELEASE, "-nowarn", "-d", str(classes)]
        cmd += ["-cp", f"{flink_lib()}/*", *map(str, sources)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SetupError(
                f"javac could not build rtml's Flink classes: {proc.stderr.strip()[:400]}",
                hint="check that apache-flink is installed in this environment (make setup)",
            )
        partial = Path(tmp) / target.name
        shutil.copyfile(conn, partial)
        with zipfile.ZipFile(partial, "a", zipfile.ZIP_DEFLATED) as jar:
            for cls in sorted(classes.rglob("*.class")):
                jar.write(cls, cls.relative_to(classes).as_posix())
        partial.replace(target)
    return target


def flink_lib() -> Path:
    """The pip-installed Flink's jars (pyflink/lib)."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError("apache-flink is not installed here", hint="run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


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
