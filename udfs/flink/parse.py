"""Parse raw Kafka strings into validated records; anything bad goes to the dead letters."""

from __future__ import annotations

from pyflink.datastream import OutputTag, ProcessFunction

from rtml.config import EventSchema, LabelSettings
from rtml.errors import RecordError
from udfs.flink.records import to_json
from udfs.validation import dead_letter, parse_event, parse_label


class ParseEvents(ProcessFunction):
    def __init__(self, schema: EventSchema, dead_letters: OutputTag, source: str) -> None:
        self.schema = schema
        self.dead_letters = dead_letters
        self.source = source

    def process_element(self, value, ctx):
        try:
            yield parse_event(value, self.schema)
        except RecordError as e:
            yield self.dead_letters, to_json(dead_letter(value, e, self.source))
        except Exception as e:  # a bug must not kill the job: keep the record and the reason
            err = RecordError("internal_error", f"unexpected {type(e).__name__} while parsing: {e}")
            yield self.dead_letters, to_json(dead_letter(value, err, self.source))


class ParseLabels(ProcessFunction):
    def __init__(self, labels: LabelSettings, dead_letters: OutputTag, source: str) -> None:
        self.labels = labels
        self.dead_letters = dead_letters
        self.source = source

    def process_element(self, value, ctx):
        try:
            yield parse_label(value, self.labels)
        except RecordError as e:
            yield self.dead_letters, to_json(dead_letter(value, e, self.source))
        except Exception as e:
            err = RecordError(
                "internal_error", f"unexpected {type(e).__name__} while parsing a label: {e}"
            )
            yield self.dead_letters, to_json(dead_letter(value, err, self.source))
