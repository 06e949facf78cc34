"""The StreamExecutionEnvironment, configured from the job config."""

from __future__ import annotations

import os
import sys
import sysconfig

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment

from flink_jobs.options import RunOptions
from rtml.core.config import JobConfig


def create_env(cfg: JobConfig, opts: RunOptions) -> StreamExecutionEnvironment:
    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("python.execution-mode", cfg.job.execution_mode)
    if cfg.job.execution_mode == "thread":
        # the embedded interpreter (pemja) starts with the system's sys.path: give it this
        # environment's packages (pemja itself, numpy, ONNX Runtime, rtml's editable install)
        conf.set_string("python.pythonpath", sysconfig.get_paths()["purelib"])
    conf.set_string("execution.checkpointing.interval", f"{cfg.job.checkpoint_interval_ms}ms")
    conf.set_string("execution.checkpointing.mode", "EXACTLY_ONCE")
    conf.set_string("state.backend.type", cfg.job.state_backend)
    if opts.checkpoint_dir:
        conf.set_string("execution.checkpointing.dir", opts.checkpoint_dir)
        conf.set_string(
            "execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION"
        )
    if opts.jars:
        conf.set_string("pipeline.jars", ";".join(opts.jars))
    conf.set_string("pipeline.name", cfg.job.name)
    # Python state reads that miss the worker's cache block on a round trip to the JVM; the
    # default cache (1000 entries) thrashes across accounts and merchants. The cache outlives
    # bundles (measured: one miss per key over 40k events).
    conf.set_string("python.state.cache-size", str(cfg.job.state_cache_size))
    conf.set_string("python.map-state.read-cache-size", str(cfg.job.state_cache_size))
    conf.set_string("python.map-state.write-cache-size", str(cfg.job.state_cache_size))
    # At every bundle end the changed state of each key the bundle touched is written back to
    # the JVM (a round trip per key): larger bundles, fewer writes per event.
    conf.set_string("python.fn-execution.bundle.size", str(cfg.job.bundle_size))
    conf.set_string("python.fn-execution.bundle.time", f"{cfg.job.bundle_time_ms}")
    # per network hop: a partly filled buffer waits at most this long (Flink's default 100 ms)
    conf.set_string("execution.buffer-timeout.interval", f"{cfg.job.buffer_timeout_ms}ms")
    conf.set_string("pipeline.auto-watermark-interval", f"{cfg.job.watermark_interval_ms}ms")
    if os.environ.get(
        "RTML_PYTHON_PROFILE"
    ):  # cProfile stats of the Python workers, in the TaskManager log
        conf.set_string("python.profile.enabled", "true")
    # embedded runs: a slot per Python worker of the scoring pipeline, one for the monitors
    slots = (cfg.job.python_workers + 1) * cfg.job.parallelism
    conf.set_string("taskmanager.numberOfTaskSlots", str(slots))
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg.job.parallelism)
    return env
