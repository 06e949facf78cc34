"""A Flink test harness: a fragment of rtml's job graph on the embedded MiniCluster, fed from
in-memory records, with every output's records collected.

A fragment is a function ``build(inputs) -> outputs``: ``inputs`` maps an input name to a
stream of JSON strings (what a Kafka source would give), ``outputs`` maps an output name to a
stream of strings (what a Kafka sink would take). The job graph's own functions
(``flink_jobs.graph.scoring_outputs``, ``monitoring_outputs``, ...) have this shape, so a
fragment is the product's wiring minus Kafka.

Two ways to feed it:
- **At once** (``run(build, {"events": [...], "labels": [...]})``): each input is a bounded
  collection, the job runs to its end (its watermarks to the end of time, so every window
  closes) and every output's records come back.
- **In stages** (``run(build, [Stage(...), Stage(...)])``): the inputs are files a continuous
  file source watches; a stage's records are written only once the previous stage's
  ``until`` holds on what has been collected. Where two inputs race (control records and
  events), this fixes their order: the events after a model switch are written only once
  every scoring subtask has reported the switch. The job is cancelled after the last stage's
  ``until`` holds, or after ``timeout_s`` with a message naming the stage it waited for.

Run with the job's own environment (``flink_jobs.environment.create_env``: bundles, state
cache, checkpointing) and rtml's job jar, at the parallelism the test asks for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from rtml.core.config import JobConfig

Collected = dict[str, list[str]]  # output name -> its records, in the order they came
Fragment = Callable[[Mapping[str, object]], Mapping[str, object]]  # DataStreams both sides
SEPARATOR = "\x1f"  # between an output's name and its record in the collected stream


@dataclass(frozen=True)
class Stage:
    """Records to write to the inputs, and when the next stage may start."""

    inputs: Mapping[str, Sequence[str]]
    until: Callable[[Collected], bool]
    name: str = ""


class HarnessTimeout(AssertionError):
    pass


def _tag(name: str, record: str) -> str:
    return f"{name}{SEPARATOR}{record}"


def environment(cfg: JobConfig, parallelism: int, registry: str, workspace: str):
    """The job's environment at ``parallelism``, with rtml's job jar; returns (env, cfg, opts)."""
    from pyflink.common import Configuration

    from deploy import jars
    from flink_jobs.environment import create_env
    from flink_jobs.options import RunOptions

    cfg = replace(cfg, job=replace(cfg.job, parallelism=parallelism))
    opts = RunOptions(
        registry=registry,
        workspace=workspace,
        model_version="current",
        bounded=True,
        jars=(jars.job_jar().resolve().as_uri(),),
    )
    env = create_env(cfg, opts)
    no_restarts = Configuration()
    no_restarts.set_string("restart-strategy.type", "none")  # a failure fails the test
    env.configure(no_restarts)
    return env, cfg, opts


def collected_stream(outputs: Mapping[str, object]):
    """Every output's records on one stream, each tagged with its output's name."""
    from pyflink.common import Types

    tagged = [
        stream.map(partial(_tag, name), output_type=Types.STRING()).name(f"collect {name}")
        for name, stream in outputs.items()
    ]
    return tagged[0].union(*tagged[1:]) if len(tagged) > 1 else tagged[0]


def _record(line: str, got: Collected) -> None:
    name, _, record = line.partition(SEPARATOR)
    got.setdefault(name, []).append(record)


def run_at_once(env, build: Fragment, inputs: Mapping[str, Sequence[str]]) -> Collected:
    """Bounded collections in, every output's records out once the job has ended."""
    from pyflink.common import Types

    streams = {
        name: env.from_collection(list(records), type_info=Types.STRING()).name(f"{name} input")
        for name, records in inputs.items()
    }
    outputs = build(streams)
    got: Collected = {name: [] for name in outputs}
    with collected_stream(outputs).execute_and_collect() as it:
        for line in it:
            _record(line, got)
    return got


def run_in_stages(
    env, build: Fragment, stages: Sequence[Stage], folder: Path, timeout_s: float
) -> Collected:
    """Each input a watched folder; stage by stage, its records written as one file once the
    previous stage's ``until`` holds."""
    from pyflink.common import Duration, WatermarkStrategy
    from pyflink.datastream.connectors.file_system import FileSource, StreamFormat

    names = sorted({name for stage in stages for name in stage.inputs})
    streams = {}
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        src = (
            FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(folder / name))
            .monitor_continuously(Duration.of_millis(200))
            .build()
        )
        streams[name] = env.from_source(src, WatermarkStrategy.no_watermarks(), f"{name} input")
    outputs = build(streams)
    got: Collected = {name: [] for name in outputs}
    it = collected_stream(outputs).execute_and_collect()
    waiting = {"stage": "", "timed_out": False}

    def give_up() -> None:
        waiting["timed_out"] = True
        it.close()

    watchdog = threading.Timer(timeout_s, give_up)
    watchdog.start()
    try:
        for i, stage in enumerate(stages):
            waiting["stage"] = stage.name or f"stage {i + 1}"
            for name, records in stage.inputs.items():
                _write(folder / name, f"stage-{i:03d}.jsonl", records)
            while not stage.until(got):
                try:
                    line = next(it)
                except StopIteration:
                    break
                except Exception:  # the watchdog closed the iterator, or the job failed
                    if not waiting["timed_out"]:
                        raise
                    break
                _record(line, got)
            else:
                continue
            raise HarnessTimeout(
                f"{waiting['stage']}: its condition did not hold within {timeout_s} s "
                f"(collected: { {k: len(v) for k, v in got.items()} })"
            )
    finally:
        watchdog.cancel()
        if not waiting["timed_out"]:
            it.close()
    return got


def _write(folder: Path, name: str, records: Sequence[str]) -> None:
    """One file of records, one per line, renamed into place (the file source skips names
    that start with a dot, so it never reads a file half written)."""
    for r in records:
        assert "\n" not in r, f"a staged record must be one line: {r[:80]!r}"
    tmp = folder / f".{name}"
    tmp.write_text("".join(r + "\n" for r in records), encoding="utf-8")
    tmp.rename(folder / name)
