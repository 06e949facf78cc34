"""The StreamExecutionEnvironment, configured from the job config."""

from __future__ import annotations

import sys

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment

from flink_jobs.options import RunOptions
from rtml.config import JobConfig


def create_env(cfg: JobConfig, opts: RunOptions) -> StreamExecutionEnvironment:
    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("python.execution-mode", cfg.job.execution_mode)
    conf.set_string("execution.checkpointing.interval", f"{cfg.job.checkpoint_interval_ms}ms")
    conf.set_string("execution.checkpointing.mode", "EXACTLY_ONCE")
    conf.set_string("state.backend.type", cfg.job.state_backend)
    if opts.checkpoint_dir:
        conf.set_string("execution.checkpointing.dir", opts.checkpoint_dir)
        conf.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    if opts.jars:
        conf.set_string("pipeline.jars", ";".join(opts.jars))
    conf.set_string("pipeline.name", cfg.job.name)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg.job.parallelism)
    return env
