"""What a Python function's runtime context says about its task, in either execution mode."""

from __future__ import annotations

from pyflink.datastream import RuntimeContext


def subtask_index(runtime_context: RuntimeContext) -> int:
    """This parallel subtask's index (from 0).

    In thread mode, PyFlink 2.2.1's runtime context asks the Java ``RuntimeContext`` for
    ``getIndexOfThisSubtask``, which Flink 2 moved to ``getTaskInfo()``: the call raises
    AttributeError, so the task info is asked directly."""
    try:
        return runtime_context.get_index_of_this_subtask()
    except AttributeError:
        java_context = getattr(runtime_context, "_runtime_context", None)
        if java_context is None:
            raise
        return int(java_context.getTaskInfo().getIndexOfThisSubtask())


def is_thread_mode(runtime_context: RuntimeContext) -> bool:
    """Whether the function runs in the TaskManager's embedded interpreter (thread mode)."""
    return type(runtime_context).__module__.startswith("pyflink.fn_execution.datastream.embedded")
