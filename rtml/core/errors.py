"""One error hierarchy for everything the user can run into.

Every error carries a message that says what went wrong and what to do about it; the CLI
prints ``str(error)`` on one line and exits non-zero, never a stack trace.
"""

from __future__ import annotations


class RtmlError(Exception):
    """Base of every error rtml raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} -> {hint}")


class ConfigError(RtmlError):
    """A configuration file or option is invalid."""

    exit_code = 2


class SetupError(RtmlError):
    """A prerequisite (Java, Maven, a jar, the virtual environment) is missing."""

    exit_code = 3


class ServiceError(RtmlError):
    """A local service (Kafka broker, Flink cluster, Evidently UI) failed to start or stop."""

    exit_code = 4


class ModelError(RtmlError):
    """A model cannot be trained, exported, loaded or does not match the job."""

    exit_code = 5


class ParityError(ModelError):
    """The ONNX model disagrees with the original model beyond the tolerance."""


class JobError(RtmlError):
    """A Flink job failed to build, submit or run."""

    exit_code = 6


class StateVersionError(RtmlError):
    """Saved per-key state has a layout this version cannot read."""

    exit_code = 7


class RecordError(RtmlError):
    """One input record is invalid. Never fatal: it is routed to the dead-letter output."""

    def __init__(
        self, code: str, message: str, *, field: str | None = None, record_id: str | None = None
    ) -> None:
        self.code = code
        self.field = field
        self.record_id = record_id
        super().__init__(message)
