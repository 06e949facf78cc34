"""Run options that are not part of the job config: where things are, how long to run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOptions:
    registry: str  # absolute path of the model registry
    workspace: str  # absolute path of the Evidently workspace
    model_version: str  # concrete version, resolved when the job is built
    bounded: bool = False  # stop at the topics' end offsets as of job start
    jars: tuple[str, ...] = ()  # file:// URLs of connector jars (embedded runs)
    checkpoint_dir: str | None = None  # file:// URL; None = in memory (embedded only)
    part: str = "all"  # "all" (one job), "scoring" or "monitoring" (two jobs)
    backfill_topic: str | None = None  # part "backfill": the topic the history was sent to

    def to_args(self) -> list[str]:
        args = [
            "--registry",
            self.registry,
            "--workspace",
            self.workspace,
            "--model-version",
            self.model_version,
        ]
        if self.bounded:
            args.append("--bounded")
        if self.checkpoint_dir:
            args += ["--checkpoint-dir", self.checkpoint_dir]
        if self.backfill_topic:
            args += ["--backfill-topic", self.backfill_topic]
        return args + ["--part", self.part]
