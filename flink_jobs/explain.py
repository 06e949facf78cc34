"""Build the job's graph without running it and return Flink's execution plan of it.

The plan is ``env.get_execution_plan()``'s: PyFlink generates the stream graph the way
``execute()`` does (``_generate_stream_graph``: ``PythonConfigUtil.configPythonOperator``, then
``PythonOperatorChainingOptimizer.apply``), so fused Python operators appear as one node.
Flink's JSON does not say which nodes run Python: each node gets a ``stream_node`` entry read
from the operator of the same stream graph (see ``flink_jobs.plan``).
"""

from __future__ import annotations

import json
from typing import Any

from py4j.java_gateway import JavaObject
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.java_gateway import get_gateway

from flink_jobs import graph
from flink_jobs.environment import create_env
from flink_jobs.options import RunOptions
from flink_jobs.plan import ANNOTATION
from rtml.core.config import JobConfig

PYTHON_OPERATOR = "org.apache.flink.streaming.api.operators.python.AbstractPythonFunctionOperator"
DATASTREAM_PYTHON_OPERATOR = (
    "org.apache.flink.streaming.api.operators.python.DataStreamPythonFunctionOperator"
)
FUNCTION_INFO = "org.apache.flink.streaming.api.functions.python.DataStreamPythonFunctionInfo"
SIMPLE_FACTORY = "org.apache.flink.streaming.api.operators.SimpleOperatorFactory"


def build_graph(
    env: StreamExecutionEnvironment, cfg: JobConfig, opts: RunOptions, *, model_registered: bool
) -> None:
    """``graph.build`` as ``flink_jobs.job.main`` calls it; without a registered model, the same
    graph without the model check."""
    graph.build(env, cfg, opts, verify_model=model_registered)


def _is(obj: JavaObject, class_name: str) -> bool:
    jvm = get_gateway().jvm
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    return jvm.java.lang.Class.forName(class_name, False, loader).isInstance(obj)


def _chain_length(info: JavaObject) -> int:
    """A fused operator's function info holds its upstream function's info as its one input."""
    n = 1
    while True:
        inputs = info.getInputs()
        if len(inputs) != 1 or not _is(inputs[0], FUNCTION_INFO):
            return n
        info, n = inputs[0], n + 1


def _stream_node(node: JavaObject) -> dict[str, Any]:
    factory = node.getOperatorFactory()
    op = factory.getOperator() if _is(factory, SIMPLE_FACTORY) else None
    python = op is not None and _is(op, PYTHON_OPERATOR)
    functions = 0
    if python:
        datastream = _is(op, DATASTREAM_PYTHON_OPERATOR)
        functions = _chain_length(op.getPythonFunctionInfo()) if datastream else 1
    return {
        "class": (op if op is not None else factory).getClass().getName(),
        "python": python,
        "python_functions": functions,
    }


def annotated_plan(env: StreamExecutionEnvironment) -> dict[str, Any]:
    """``env.get_execution_plan()`` as JSON data, each node with its ``stream_node``.

    The body of PyFlink's ``get_execution_plan``, keeping the stream graph to read its
    operators: a second graph would not do, as each one numbers the sinks' operators anew."""
    stream_graph = env._generate_stream_graph(clear_transformations=False)
    nodes = {n.getId(): n for n in stream_graph.getStreamNodes().toArray()}
    doc = json.loads(stream_graph.getStreamingPlanAsJSON())
    for node in doc["nodes"]:
        node[ANNOTATION] = _stream_node(nodes[node["id"]])
    return doc


def job_plan(cfg: JobConfig, opts: RunOptions, *, model_registered: bool) -> dict[str, Any]:
    """The annotated execution plan of the job ``flink_jobs.job`` would run (not executed)."""
    env = create_env(cfg, opts)
    build_graph(env, cfg, opts, model_registered=model_registered)
    return annotated_plan(env)
