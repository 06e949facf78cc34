"""Parse raw Kafka strings into validated records; anything bad goes to the dead letters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyflink.datastream import OutputTag, ProcessFunction, RuntimeContext

from rtml.core.errors import RecordError
from udfs.flink import bundle_sampler
from udfs.flink.metrics import counters
from udfs.flink.records import tagged, to_json
from udfs.validation import dead_letter


class ParseRecords(ProcessFunction):
    """Applies ``parse`` (e.g. ``partial(parse_event, schema=...)``) to each raw record.

    A ``RecordError`` sends the raw record and its reason to ``dead_letters``; so does any
    unexpected exception (a bug must not kill the job, nor lose the record).

    With ``inline`` the dead letter is a tagged record on the main output instead (the last
    Python stage routes it to the side output), so this operator keeps a single consumer and
    PyFlink fuses it with the next Python operator (the first ``key_by``)."""

    def __init__(
        self,
        parse: Callable[[str], dict[str, Any]],
        dead_letters: OutputTag,
        source: str,
        inline: bool = False,
    ) -> None:
        self.parse = parse
        self.dead_letters = dead_letters
        self.source = source
        self.inline = inline

    def open(self, runtime_context: RuntimeContext):
        bundle_sampler.install()
        self.records_in, self.dead_lettered = counters(
            runtime_context, "records_in", "dead_lettered"
        )

    def process_element(self, value, ctx):
        self.records_in.inc()
        try:
            yield self.parse(value)
            return
        except RecordError as e:
            err = e
        except Exception as e:
            err = RecordError("internal_error", f"unexpected {type(e).__name__} while parsing: {e}")
        self.dead_lettered.inc()
        letter = to_json(dead_letter(value, err, self.source))
        if self.inline:
            yield tagged(self.dead_letters.tag_id, letter)
        else:
            yield self.dead_letters, letter
