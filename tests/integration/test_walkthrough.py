"""The walkthrough of docs/walkthrough.md, command for command: a data set that is not the
card demo, from a sample file to a scored, monitored stream with rtml's commands alone.

The commands are read from the doc's second code block and run in order (`rtml broker
start` is this session's test broker, already up; every command that talks to Kafka gets
its address). `rtml ui` is started, answers on its port, and is stopped."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.kafka_client import read_topic
from deploy.process import child_env
from rtml.cli import main
from rtml.core.config import load_config
from tests.integration.trips.generator import trips

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "walkthrough.md"
KAFKA_COMMANDS = ("produce", "run", "reports")


def _commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)
    return [shlex.split(line)[1:] for line in blocks[1].splitlines() if line.startswith("rtml ")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_walkthrough_runs_as_written(broker, rtml_home, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    events, labels, n_valid = trips(11, 3000, hours=24.0, bad=30)
    (tmp_path / "trips.jsonl").write_text("\n".join(events) + "\n")
    (tmp_path / "complaints.jsonl").write_text("\n".join(labels) + "\n")
    commands = _commands()
    assert [c[0] for c in commands] == [
        "init",
        "train",
        "export",
        "broker",
        "produce",
        "run",  # scoring, then the monitors: two jobs, one after the other (--bounded)
        "reports",
        "ui",
    ]
    for args in commands:
        if args[0] == "broker":
            continue  # the session's broker
        if args[0] in KAFKA_COMMANDS:
            args = [*args, "--bootstrap", broker.bootstrap]
        if args[0] == "ui":
            port = _free_port()
            ui = subprocess.Popen(
                [sys.executable, "-m", "rtml.cli", *args, "--port", str(port)],
                env=child_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with socket.socket() as s:
                        if s.connect_ex(("127.0.0.1", port)) == 0:
                            break
                    time.sleep(1)
                else:
                    raise AssertionError("rtml ui did not answer in 120 s")
            finally:
                ui.terminate()
                ui.wait(30)
            with socket.socket() as s:  # stopped with it: no server left behind
                assert s.connect_ex(("127.0.0.1", port)) != 0, "the UI outlived rtml ui"
            continue
        assert main(args) == 0, args

    cfg = load_config(tmp_path / "trips.toml").with_bootstrap(broker.bootstrap)
    t = cfg.kafka.topics
    scores = read_topic(cfg, t.scores)
    ids = [s["trip_id"] for s in scores]
    assert len(ids) == len(set(ids)) == n_valid  # every valid event scored once
    dead = read_topic(cfg, t.dead_letter)
    assert len(dead) == 30 and all(d["reason"] for d in dead)  # every malformed one
    fairness = [f for f in read_topic(cfg, t.fairness) if f["status"] == "final"]
    drift = read_topic(cfg, t.drift)
    assert fairness and drift  # both monitors judged windows
    out = capsys.readouterr().out
    assert "guessed event id: trip_id" in out


def _sensor_csv(path: Path, n: int = 2000, bad: int = 20) -> int:
    """A third schema, unlike the cards and the trips: CSV, epoch seconds, one entity, the
    label in each row. Returns the number of valid rows."""
    import csv
    import random

    rng = random.Random(5)
    t0 = 1_767_225_600  # 2026-01-01, in seconds
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["reading_id", "sensor", "temp", "status", "ts", "alarm"])
        for i in range(n):
            temp = round(rng.gauss(20, 3), 2)
            w.writerow(
                [
                    f"rd{i}",
                    f"s{rng.randint(1, 30)}",
                    temp,
                    rng.choice(["ok", "warn"]),
                    t0 + i * 30,
                    int(temp > 24 or rng.random() < 0.03),
                ]
            )
        for j in range(bad):  # a temperature that is not a number: dead-lettered
            w.writerow([f"bad{j}", "s1", "hot", "ok", t0 + j, 0])
    return n


def test_init_on_a_csv_of_epoch_seconds_with_one_entity_and_the_job_runs_on_it(
    broker, rtml_home, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    n_valid = _sensor_csv(tmp_path / "sensors.csv")
    for args in (
        ["init", "--sample", "sensors.csv", "--label", "alarm", "--out", "sensors.toml"],
        ["train", "--config", "sensors.toml", "--history", "sensors.csv", "--label-field", "alarm"],
        ["export", "--config", "sensors.toml"],
        ["produce", "--config", "sensors.toml", "--file", "sensors.csv", "--label-field", "alarm"],
        ["run", "--config", "sensors.toml", "--bounded", "--part", "scoring"],
    ):
        if args[0] in KAFKA_COMMANDS:
            args = [*args, "--bootstrap", broker.bootstrap]
        assert main(args) == 0, args
    cfg = load_config(tmp_path / "sensors.toml").with_bootstrap(broker.bootstrap)
    assert cfg.schema.field("ts").unit == "s" and [e.key for e in cfg.schema.entities] == ["sensor"]
    scores = read_topic(cfg, cfg.kafka.topics.scores)
    assert len({s["reading_id"] for s in scores}) == len(scores) == n_valid
    # event times in milliseconds on the way out, read from seconds
    assert min(s["ts"] for s in scores) == 1_767_225_600_000
    dead = read_topic(cfg, cfg.kafka.topics.dead_letter)
    assert len(dead) == 20
