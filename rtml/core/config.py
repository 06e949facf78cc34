"""Typed, frozen job configuration, parsed once at the edge from a TOML file.

Nothing downstream reads raw dictionaries: the CLI loads a ``JobConfig`` and passes it (or the
parts it needs) to the job graph, the feature engine, training and monitoring.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

from rtml.core.errors import ConfigError
from rtml.core.featurespec import AGGREGATIONS, FeatureSet, FeatureSpec

PYTHON_WORKERS = (1, 2)  # [job] python_workers: the scoring pipeline in one or two processes

# The allowed values of the settings that take one of a few, declared once: the config parser,
# the CLI and the job entry point all take them from here.
Delivery = Literal["exactly-once", "at-least-once"]
StateBackend = Literal["hashmap", "rocksdb"]
FeatureOrder = Literal["arrival", "event-time"]
ExecutionMode = Literal["process", "thread"]
JobPart = Literal["all", "scoring", "monitoring"]  # what `rtml run` / `rtml submit` deploy
BaselinePart = Literal["floor", "naive"]  # the bench's baseline graphs
Estimator = Literal["hgb", "lightgbm", "xgboost", "mlp"]
TimeUnit = Literal["ms", "s"]
TIME_UNITS: tuple[TimeUnit, ...] = get_args(TimeUnit)
UNIT_MS = {"ms": 1, "s": 1000}
DELIVERIES: tuple[Delivery, ...] = get_args(Delivery)
STATE_BACKENDS: tuple[StateBackend, ...] = get_args(StateBackend)
FEATURE_ORDERS: tuple[FeatureOrder, ...] = get_args(FeatureOrder)
EXECUTION_MODES: tuple[ExecutionMode, ...] = get_args(ExecutionMode)
JOB_PARTS: tuple[JobPart, ...] = get_args(JobPart)
BASELINE_PARTS: tuple[BaselinePart, ...] = get_args(BaselinePart)
# what `rtml run` / `rtml submit --part` take: "both" (the default) = scoring and the
# monitors as two jobs, the monitors reading the scores topic; or one of the parts
BOTH_PARTS = "both"
DEPLOY_PARTS: tuple[str, ...] = (BOTH_PARTS, *JOB_PARTS)
BACKFILL_PART = "backfill"  # `rtml backfill`: history through the feature stages, no output
GRAPH_PARTS: tuple[str, ...] = (*JOB_PARTS, *BASELINE_PARTS, BACKFILL_PART)  # what a graph builds
ESTIMATORS: tuple[Estimator, ...] = get_args(Estimator)

FIELD_TYPES = ("string", "float", "int", "category", "timestamp", "bool")
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(value: Any, where: str) -> int:
    """'5m' -> 300000 ms. Integers are taken as milliseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _DURATION.match(str(value))
    if not m:
        raise ConfigError(
            f"{where}: {value!r} is not a duration",
            hint="write it like '500ms', '30s', '5m', '1h' or '7d'",
        )
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool = True
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()  # allowed values of a category; empty = any
    max_length: int = 256
    # a timestamp's numbers: epoch milliseconds ("ms") or seconds ("s"); ISO-8601 either way
    unit: TimeUnit = "ms"


@dataclass(frozen=True)
class Entity:
    name: str  # "account"
    key: str  # the field holding the key, "account_id"


@dataclass(frozen=True)
class EventSchema:
    fields: tuple[FieldSpec, ...]
    event_id: str
    event_time: str
    sensitive_attribute: str | None  # the first (or only) sensitive field
    entities: tuple[Entity, ...]
    max_out_of_orderness_ms: int = 5_000
    max_future_ms: int = 86_400_000  # events further ahead of the newest seen are rejected
    min_time_ms: int = 946_684_800_000  # 2000-01-01: earlier timestamps are rejected
    unknown_fields: str = "reject"  # or "ignore": fields the schema does not declare
    # further sensitive fields (sensitive_attribute = a list): fairness is then reported per
    # field and for the intersection of all of them
    more_sensitive: tuple[str, ...] = ()

    @property
    def sensitive_attributes(self) -> tuple[str, ...]:
        first = () if self.sensitive_attribute is None else (self.sensitive_attribute,)
        return first + self.more_sensitive

    @cached_property
    def field_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True)
class Topics:
    events: str
    labels: str
    scores: str
    dead_letter: str
    late: str
    fairness: str
    drift: str
    alerts: str
    control: str  # model switches for the running job (`rtml models activate`)
    shadow: (
        str  # live vs candidate score per event while a candidate shadows (`rtml models shadow`)
    )

    def all(self) -> tuple[str, ...]:
        return (
            self.events,
            self.labels,
            self.scores,
            self.dead_letter,
            self.late,
            self.fairness,
            self.drift,
            self.alerts,
            self.control,
            self.shadow,
        )


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    group_id: str
    topics: Topics
    partitions: int = 1
    # passed to every client (security settings); kept out of repr, since they hold secrets
    properties: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class LabelSettings:
    event_id: str
    label: str
    label_time: str
    timeout_ms: int
    positive: int = 1


@dataclass(frozen=True)
class ModelSettings:
    name: str
    version: str = "current"
    threshold: float = 0.5
    raw_inputs: tuple[str, ...] = ()  # event fields the model takes besides the features
    intra_op_threads: int = 1
    favourable_outcome: int = 0  # the prediction that is good for the subject (0 = not flagged)


# the calibrated drift threshold is a quantile of a tail fitted to the clean windows' top
# 10% (udfs.drift_calibration.TAIL_SHARE): a stated rate must lie inside that tail
MAX_FALSE_ALARM_RATE = 0.1


@dataclass(frozen=True)
class MonitoringSettings:
    window_ms: int
    slide_ms: int = 0  # fairness windows start every slide (0 or = window: tumbling)
    enabled: bool = True  # false: score only (no fairness, drift or alerts operators)
    min_group_count: int = 30
    four_fifths: float = 0.8
    drift_min_rows: int = 100
    drift_sample_cap: int = 2000
    drift_share: float = 0.5
    # the calibrated drift verdict's false alarms per clean window (udfs.drift_calibration),
    # calibrated at export where the training history is long enough
    drift_false_alarm_rate: float = 0.01
    project: str = "rtml"
    # model quality per window from the joined labels (udfs/quality.py): labelled predictions
    # kept per window (a uniform sample above it), and the AUC alert's margin under held-out
    quality_sample_cap: int = 10_000
    quality_auc_margin: float = 0.05


@dataclass(frozen=True)
class JobSettings:
    name: str
    parallelism: int = 1
    execution_mode: ExecutionMode = "process"
    # exactly-once output becomes visible at checkpoints: the interval bounds its latency
    checkpoint_interval_ms: int = 1_000
    delivery: Delivery = "exactly-once"
    transaction_timeout_ms: int = 600_000
    state_backend: StateBackend = "hashmap"
    state_cache_size: int = 100_000  # Python-side state cache entries per worker
    bundle_size: int = 1000  # records per Python bundle (changed state is written back at its end)
    # a Python stage holds its records until the bundle closes: latency ~ stages x bundle time
    # at light load; under full load bundles fill by size first (docs/latency.md)
    bundle_time_ms: int = 10
    buffer_timeout_ms: int = 5  # a network buffer is sent when full or after this long
    watermark_interval_ms: int = 50  # periodic watermarks (monitors, event-time order)
    # Python worker processes per parallel instance of the scoring pipeline: 2 puts the
    # stages after the first keyed one in their own slot sharing group (own slot, own worker)
    python_workers: int = 1
    # "arrival": features on arrival (lowest latency; exact when each key's events arrive in
    # event-time order, i.e. parallelism 1). "event-time": each keyed stage buffers an event
    # until the watermark passes it, then applies events in (time, id) order: identical
    # features at any parallelism and through catch-ups, at the cost of the watermark delay.
    feature_order: FeatureOrder = "arrival"
    # rtml's bundle-end state writes (udfs/flink/state_writes.py: every key's write sent before
    # any is awaited); false keeps PyFlink's own commit, one round trip per key
    pipelined_state_writes: bool = True


@dataclass(frozen=True)
class JobConfig:
    job: JobSettings
    kafka: KafkaSettings
    schema: EventSchema
    labels: LabelSettings
    features: FeatureSet
    model: ModelSettings
    monitoring: MonitoringSettings
    source: str = field(default="", compare=False)  # the file it came from

    def with_bootstrap(self, servers: str) -> JobConfig:
        return replace(self, kafka=replace(self.kafka, bootstrap_servers=servers))

    def with_connection(self, bootstrap: str | None, topic_prefix: str = "") -> JobConfig:
        """The config as a run's command line overrides it (either may be unset)."""
        cfg = self.with_bootstrap(bootstrap) if bootstrap else self
        return cfg.with_topic_prefix(topic_prefix) if topic_prefix else cfg

    def with_topic_prefix(self, prefix: str) -> JobConfig:
        t = self.kafka.topics
        topics = Topics(*(prefix + name for name in t.all()))
        return replace(
            self, kafka=replace(self.kafka, topics=topics, group_id=prefix + self.kafka.group_id)
        )

    @property
    def model_inputs(self) -> tuple[str, ...]:
        """Columns the job can offer the model: raw inputs then features, in order."""
        return self.model.raw_inputs + self.features.names


# ---------------------------------------------------------------------------------------
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _client_properties(raw: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """[kafka.properties], with ``${NAME}`` replaced by the environment variable NAME, so
    that passwords need not be written into the config file."""

    def expand(key: str, value: str) -> str:
        def var(m: re.Match) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise ConfigError(
                    f"[kafka.properties] {key} refers to ${{{name}}}, which is not set",
                    hint=f"export {name} before running rtml",
                )
            return os.environ[name]

        return _ENV_REF.sub(var, value)

    return tuple(sorted((str(k), expand(str(k), str(v))) for k, v in raw.items()))


def _default_topic(events: str, name: str) -> str:
    """``cards.events`` -> ``cards.<name>``; a topic without a dot gets ``-<name>``."""
    head, dot, _ = events.rpartition(".")
    return f"{head}.{name}" if dot else f"{events}-{name}"


def load_config(path: str | Path) -> JobConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"job config {p} does not exist",
            hint="pass --config with the path of a TOML job config, e.g. deploy/configs/cards.toml",
        )
    try:
        raw = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"{p}: invalid TOML: {e}", hint="fix the syntax at the line named"
        ) from None
    return parse_config(raw, source=str(p))


def _section(raw: dict, name: str, src: str) -> dict:
    sec = raw.get(name)
    if not isinstance(sec, dict):
        raise ConfigError(
            f"{src}: missing section [{name}]",
            hint=f"add a [{name}] table; see deploy/configs/cards.toml",
        )
    return sec


def _sensitive(s: dict) -> tuple[str, ...]:
    """``[schema] sensitive_attribute``: a field name, or a list of distinct field names."""
    v = s.get("sensitive_attribute")
    if v is None:
        return ()
    if isinstance(v, str):
        return (_text(s, "sensitive_attribute", "[schema]"),)
    if (
        not isinstance(v, list)
        or not v
        or not all(isinstance(x, str) and x for x in v)
        or len(set(v)) != len(v)
    ):
        raise ConfigError(
            f"[schema] sensitive_attribute = {v!r} is not a field name or a list of distinct "
            "field names",
            hint='e.g. sensitive_attribute = "age_band" or ["age_band", "country"]',
        )
    return tuple(v)


def _int(sec: dict, key: str, default: int) -> int:
    """An integer setting; anything else is a one-line error naming the key."""
    v = sec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(
            f"{key} = {v!r} is not an integer",
            hint=f"write {key} as a whole number, e.g. {default}",
        )
    return v


# what each choice means, for the error that names the allowed values
CHOICE_NOTES = {
    "arrival": "lowest latency",
    "event-time": "same features at any parallelism",
    "thread": "embedded Python, PyFlink's thread mode",
}


def _choice(sec: dict, key: str, allowed: tuple[str, ...], where: str) -> Any:
    """One of ``allowed`` (the first is the default); anything else is a one-line error
    naming the key and the values it takes."""
    v = sec.get(key, allowed[0])
    if v not in allowed:
        values = " or ".join(
            f"'{a}'" + (f" ({CHOICE_NOTES[a]})" if a in CHOICE_NOTES else "") for a in allowed
        )
        raise ConfigError(f"{where} {key} = {v!r} is not supported", hint=f"use {values}")
    return v


def _req(sec: dict, key: str, where: str) -> Any:
    if key not in sec:
        raise ConfigError(f"{where}: missing key '{key}'", hint=f"add {key} = ... under {where}")
    return sec[key]


def _kind(v: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(v),
        "a list" if isinstance(v, list) else "a table" if isinstance(v, dict) else "a value",
    )


def _table(sec: dict, key: str, where: str, required: bool = True) -> dict:
    """A sub-table; anything else is a one-line error naming the key."""
    v = _req(sec, key, where) if required else sec.get(key, {})
    if not isinstance(v, dict):
        raise ConfigError(
            f"{where} {key} is {_kind(v)}, not a table",
            hint=f"write it as a table: [{key}] with key = value lines, or {key} = {{ ... }}",
        )
    return v


def _text(sec: dict, key: str, where: str, default: str | None = None) -> str:
    """A string setting (required when there is no default)."""
    v = _req(sec, key, where) if default is None else sec.get(key, default)
    if not isinstance(v, str):
        raise ConfigError(
            f"{where} {key} = {v!r} is {_kind(v)}, not a string",
            hint=f'write {key} = "..." (in quotes)',
        )
    return v


def _texts(sec: dict, key: str, where: str) -> tuple[str, ...]:
    """A list of strings (empty when absent)."""
    v = sec.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(
            f"{where} {key} = {v!r} is not a list of strings",
            hint=f'write {key} = ["a", "b"]',
        )
    return tuple(v)


def _number(sec: dict, key: str, where: str, default: float | None = None) -> float | None:
    """A number setting (int or float, not a boolean), or ``default`` when absent."""
    v = sec.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(
            f"{where} {key} = {v!r} is {_kind(v)}, not a number",
            hint=f"write {key} as a number, e.g. {default if default is not None else 0}",
        )
    return v


def _flag(sec: dict, key: str, where: str, default: bool) -> bool:
    v = sec.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(
            f"{where} {key} = {v!r} is not true or false",
            hint=f"write {key} = {str(default).lower()} (a TOML boolean, no quotes)",
        )
    return v


def parse_config(raw: dict, source: str = "<config>") -> JobConfig:
    """The typed config of a parsed TOML document. A wrong value anywhere is a one-line
    ``ConfigError`` naming the key; a shape no check foresaw still is one, naming the file."""
    try:
        return _parse_config(raw, source)
    except ConfigError:
        raise
    except (TypeError, AttributeError, ValueError, KeyError) as e:
        raise ConfigError(
            f"{source}: a value has a type or shape rtml cannot read ({type(e).__name__}: {e})",
            hint="compare the sections with deploy/configs/cards.toml (tables, lists, strings, numbers)",
        ) from None


def _parse_config(raw: dict, source: str) -> JobConfig:
    src = source
    j = _section(raw, "job", src)
    job = JobSettings(
        name=_text(j, "name", "[job]"),
        parallelism=_int(j, "parallelism", 1),
        execution_mode=_choice(j, "execution_mode", EXECUTION_MODES, "[job]"),
        checkpoint_interval_ms=parse_duration(
            j.get("checkpoint_interval", "1s"), "[job] checkpoint_interval"
        ),
        delivery=_choice(j, "delivery", DELIVERIES, "[job]"),
        transaction_timeout_ms=parse_duration(
            j.get("transaction_timeout", "10m"), "[job] transaction_timeout"
        ),
        state_backend=_choice(j, "state_backend", STATE_BACKENDS, "[job]"),
        state_cache_size=_int(j, "state_cache_size", 100_000),
        bundle_size=_int(j, "bundle_size", 1000),
        bundle_time_ms=parse_duration(j.get("bundle_time", "10ms"), "[job] bundle_time"),
        buffer_timeout_ms=parse_duration(j.get("buffer_timeout", "5ms"), "[job] buffer_timeout"),
        watermark_interval_ms=parse_duration(
            j.get("watermark_interval", "50ms"), "[job] watermark_interval"
        ),
        python_workers=_int(j, "python_workers", 1),
        feature_order=_choice(j, "feature_order", FEATURE_ORDERS, "[job]"),
        pipelined_state_writes=_flag(j, "pipelined_state_writes", "[job]", True),
    )
    if job.python_workers not in PYTHON_WORKERS:
        raise ConfigError(
            f"[job] python_workers = {job.python_workers} is not supported",
            hint="use 1 (one Python process per parallel instance) or 2 (the scoring pipeline split in two: twice the slots, two cores busy)",
        )

    k = _section(raw, "kafka", src)
    t = _table(k, "topics", "[kafka]")
    events = _text(t, "events", "[kafka.topics]")
    t = {name: _default_topic(events, name) for name in ("control", "shadow")} | t
    try:
        topics = Topics(**{name: str(t[name]) for name in Topics.__dataclass_fields__})
    except KeyError as e:
        raise ConfigError(
            f"[kafka.topics]: missing topic {e}",
            hint="name all of events, labels, scores, dead_letter, late, fairness, drift, alerts",
        ) from None
    kafka = KafkaSettings(
        bootstrap_servers=_text(k, "bootstrap_servers", "[kafka]", "127.0.0.1:9092"),
        group_id=_text(k, "group_id", "[kafka]", job.name),
        topics=topics,
        partitions=_int(k, "partitions", 1),
        properties=_client_properties(_table(k, "properties", "[kafka]", required=False)),
    )

    s = _section(raw, "schema", src)
    fields_raw = _table(s, "fields", "[schema]")
    fields: list[FieldSpec] = []
    for name, spec in fields_raw.items():
        spec = _table(fields_raw, name, "[schema.fields]")
        where = f"[schema.fields.{name}]"
        ftype = spec.get("type")
        if ftype not in FIELD_TYPES:
            raise ConfigError(
                f"[schema.fields] {name}: type {ftype!r} is unknown",
                hint=f"use one of {', '.join(FIELD_TYPES)}",
            )
        fields.append(
            FieldSpec(
                name=name,
                type=ftype,
                required=_flag(spec, "required", where, True),
                min=_number(spec, "min", where),
                max=_number(spec, "max", where),
                values=_texts(spec, "values", where),
                unit=_choice(spec, "unit", TIME_UNITS, where),
                max_length=_int(spec, "max_length", 256),
            )
        )
    names = {f.name for f in fields}
    ents = _table(s, "entities", "[schema]")
    entities = tuple(Entity(name=str(n), key=_text(ents, n, "[schema.entities]")) for n in ents)
    sensitive = _sensitive(s)
    schema = EventSchema(
        fields=tuple(fields),
        event_id=_text(s, "event_id", "[schema]"),
        event_time=_text(s, "event_time", "[schema]"),
        sensitive_attribute=sensitive[0] if sensitive else None,
        more_sensitive=sensitive[1:],
        entities=entities,
        max_out_of_orderness_ms=parse_duration(
            s.get("max_out_of_orderness", "5s"), "[schema] max_out_of_orderness"
        ),
        max_future_ms=parse_duration(s.get("max_future", "1d"), "[schema] max_future"),
        unknown_fields=_text(s, "unknown_fields", "[schema]", "reject"),
    )
    if schema.unknown_fields not in ("reject", "ignore"):
        raise ConfigError(
            f"[schema] unknown_fields = {schema.unknown_fields!r} is not supported",
            hint="use 'reject' (dead-letter records with undeclared fields) or 'ignore'",
        )
    for ref, what in [
        (schema.event_id, "event_id"),
        (schema.event_time, "event_time"),
        *((e.key, f"entities.{e.name}") for e in entities),
    ]:
        if ref not in names:
            raise ConfigError(
                f"[schema] {what} names field {ref!r}, which [schema.fields] does not declare",
                hint="declare the field or fix the name",
            )
    if schema.field(schema.event_time).type != "timestamp":
        raise ConfigError(
            f"[schema] event_time field {schema.event_time!r} must have type 'timestamp'",
            hint="set its type to 'timestamp'",
        )
    for name in schema.sensitive_attributes:
        if name not in names:
            raise ConfigError(
                f"[schema] sensitive_attribute {name!r} is not a declared field",
                hint="declare it in [schema.fields]",
            )

    lab = _section(raw, "labels", src)
    labels = LabelSettings(
        event_id=_text(lab, "event_id", "[labels]", "event_id"),
        label=_text(lab, "label", "[labels]", "label"),
        label_time=_text(lab, "label_time", "[labels]", "label_time"),
        timeout_ms=parse_duration(lab.get("timeout", "7d"), "[labels] timeout"),
        positive=_int(lab, "positive", 1),
    )

    features = _parse_features(raw, schema)

    m = _section(raw, "model", src)
    model = ModelSettings(
        name=_text(m, "name", "[model]"),
        version=str(m.get("version", "current")),
        threshold=float(_number(m, "threshold", "[model]", 0.5)),
        raw_inputs=_texts(m, "raw_inputs", "[model]"),
        intra_op_threads=_int(m, "intra_op_threads", 1),
        favourable_outcome=_int(m, "favourable_outcome", 0),
    )
    if model.favourable_outcome not in (0, 1):
        raise ConfigError(
            f"[model] favourable_outcome = {model.favourable_outcome} is not 0 or 1",
            hint="set the prediction that is good for the subject: 0 (not flagged) or 1",
        )
    for r in model.raw_inputs:
        if r not in names:
            raise ConfigError(
                f"[model] raw_inputs names {r!r}, which is not a declared field",
                hint="declare it in [schema.fields] or remove it",
            )

    mo = _section(raw, "monitoring", src)
    monitoring = MonitoringSettings(
        window_ms=parse_duration(mo.get("window", "1h"), "[monitoring] window"),
        slide_ms=parse_duration(mo.get("slide", mo.get("window", "1h")), "[monitoring] slide"),
        enabled=_flag(mo, "enabled", "[monitoring]", True),
        min_group_count=_int(mo, "min_group_count", 30),
        four_fifths=float(_number(mo, "four_fifths", "[monitoring]", 0.8)),
        drift_min_rows=_int(mo, "drift_min_rows", 100),
        drift_sample_cap=_int(mo, "drift_sample_cap", 2000),
        drift_share=float(_number(mo, "drift_share", "[monitoring]", 0.5)),
        drift_false_alarm_rate=float(_number(mo, "drift_false_alarm_rate", "[monitoring]", 0.01)),
        project=_text(mo, "project", "[monitoring]", job.name),
        quality_sample_cap=_int(mo, "quality_sample_cap", 10_000),
        quality_auc_margin=float(_number(mo, "quality_auc_margin", "[monitoring]", 0.05)),
    )
    if monitoring.quality_sample_cap < 100:
        raise ConfigError(
            f"[monitoring] quality_sample_cap = {monitoring.quality_sample_cap} is too small "
            "for a window's quality figures",
            hint="use 100 or more (default 10000)",
        )
    if not 0 <= monitoring.quality_auc_margin < 1:
        raise ConfigError(
            f"[monitoring] quality_auc_margin = {monitoring.quality_auc_margin} is not in [0, 1)",
            hint="the AUC drop under the held-out AUC that raises an alert, e.g. 0.05",
        )
    if not 0 < monitoring.drift_false_alarm_rate < MAX_FALSE_ALARM_RATE:
        raise ConfigError(
            f"[monitoring] drift_false_alarm_rate = {monitoring.drift_false_alarm_rate} is not "
            f"in (0, {MAX_FALSE_ALARM_RATE})",
            hint="the share of clean windows the drift verdict may flag, e.g. 0.01 (the default)",
        )
    if monitoring.slide_ms <= 0 or monitoring.window_ms % monitoring.slide_ms:
        raise ConfigError(
            f"[monitoring] slide ({monitoring.slide_ms} ms) must divide window ({monitoring.window_ms} ms)",
            hint='e.g. window = "6h" with slide = "1h" (sliding) or slide = window (tumbling)',
        )
    return JobConfig(job, kafka, schema, labels, features, model, monitoring, source=source)


def _parse_features(raw: dict, schema: EventSchema) -> FeatureSet:
    opts = _table(raw, "feature_options", "the config", required=False)
    blocks = raw.get("features", [])
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise ConfigError(
            "features is not a list of tables",
            hint="declare each feature block as [[features]] with entity, aggregations, windows",
        )
    if not blocks:
        raise ConfigError(
            "no [[features]] declared",
            hint="declare at least one [[features]] block; see deploy/configs/cards.toml",
        )
    entity_names = {e.name for e in schema.entities}
    specs: list[FeatureSpec] = []
    numeric: set[str] = set()
    for i, b in enumerate(blocks):
        where = f"[[features]] #{i + 1}"
        entity = _text(b, "entity", where)
        if entity not in entity_names:
            raise ConfigError(
                f"{where}: entity {entity!r} is not declared",
                hint=f"use one of {sorted(entity_names)} or add it to [schema.entities]",
            )
        fld = None if b.get("field") is None else _text(b, "field", where)
        raw_windows = b.get("windows", [])
        if not isinstance(raw_windows, list):
            raise ConfigError(
                f"{where} windows = {raw_windows!r} is not a list",
                hint='write windows = ["1h", "24h"]',
            )
        windows = [parse_duration(w, f"{where} windows") for w in raw_windows]
        for agg in _texts(b, "aggregations", where):
            if agg not in AGGREGATIONS:
                raise ConfigError(
                    f"{where}: aggregation {agg!r} is unknown",
                    hint=f"use one of {', '.join(AGGREGATIONS)}",
                )
            needs_field, needs_window = AGGREGATIONS[agg]
            if needs_field:
                if fld is None:
                    raise ConfigError(
                        f"{where}: aggregation {agg!r} needs a field",
                        hint='add field = "..." to the block',
                    )
                try:
                    ftype = schema.field(fld).type
                except KeyError:
                    raise ConfigError(
                        f"{where}: field {fld!r} is not declared",
                        hint="declare it in [schema.fields]",
                    ) from None
                if agg != "distinct":
                    if ftype not in ("float", "int"):
                        raise ConfigError(
                            f"{where}: {agg!r} needs a numeric field, {fld!r} is {ftype}",
                            hint="use 'distinct' for non-numeric fields",
                        )
                    numeric.add(fld)
            if needs_window:
                if not windows:
                    raise ConfigError(
                        f"{where}: aggregation {agg!r} needs windows",
                        hint='add windows = ["1h", "24h"]',
                    )
                for w in windows:
                    specs.append(FeatureSpec(entity, agg, fld if needs_field else None, w))
            else:
                specs.append(FeatureSpec(entity, agg, fld if needs_field else None, None))
    names = [s.name for s in specs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(
            f"features declared twice: {sorted(dupes)}",
            hint="remove the duplicate aggregations or windows",
        )
    return FeatureSet(
        specs=tuple(specs),
        tiles_per_window=_int(opts, "tiles_per_window", 12),
        distinct_capacity=_int(opts, "distinct_capacity", 64),
        allowed_lateness_ms=parse_duration(
            opts.get("allowed_lateness", "1h"), "[feature_options] allowed_lateness"
        ),
        ttl_ms=parse_duration(opts.get("ttl", "30d"), "[feature_options] ttl"),
        numeric_fields=frozenset(numeric),
    )
