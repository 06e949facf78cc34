"""Checks for what a fresh machine must have: Java 17+ and Maven."""

from __future__ import annotations

import re
import shutil
import subprocess

from rtml.core.errors import SetupError


def java() -> str:
    path = shutil.which("java")
    if path is None:
        raise SetupError(
            "Java is not installed (no `java` on PATH)",
            hint="install OpenJDK 17, e.g. `apt-get install openjdk-17-jdk-headless`",
        )
    out = subprocess.run([path, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    if m and int(m.group(1)) < 11:
        raise SetupError(
            f"Java {m.group(1)} is too old for Kafka 4 and Flink 2", hint="install OpenJDK 17"
        )
    return path


def maven() -> str:
    path = shutil.which("mvn")
    if path is None:
        raise SetupError(
            "Maven is not installed (no `mvn` on PATH); it fetches the Kafka and connector jars",
            hint="install it, e.g. `apt-get install maven`",
        )
    return path


def javac() -> str:
    path = shutil.which("javac")
    if path is None:
        raise SetupError(
            "the Java compiler is not installed (no `javac` on PATH); it builds rtml's Flink classes",
            hint="install a JDK, e.g. `apt-get install openjdk-17-jdk-headless`",
        )
    return path
