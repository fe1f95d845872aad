"""OpenLineage events: parse, normalise and validate (pure: no database).

Lenient where Marquez is lenient, because a 4xx makes the sender drop the event: a missing
`schemaURL` or `eventType`, an `eventTime` without offset (read as UTC) or with a region after
its offset (`…Z[UTC]`, as Java writes it), a `runId` that is not a UUID (mapped as Marquez
does, to the name-based UUID of its bytes, the original kept), any spec version, unknown or
malformed custom facets (stored as given).

Refused, with every problem named by its field path: what Marquez refuses (missing
`eventTime`, `producer`, `run`, `job`, `run.runId`, a job or dataset without namespace or name,
a `parent` facet without `run.runId` or job, schema fields without a name) and malformed
*standard facets that modelgov interprets* — `schema`, `columnLineage`, `version`, `parent` and
the `modelgov_model` facet — since storing them would put wrong features, edges or models in
the graph. Other standard facets are stored as given and never interpreted. Also refused: a
namespace, name, version or field that makes a node id longer than the graph can store
(MAX_NODE_ID_BYTES).
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lineage import nodes

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
MODEL_FACET = "modelgov_model"
# The facets modelgov reads (and validates); any other is stored as given, unread.
INTERPRETED_FACETS = frozenset({"schema", "columnLineage", "version", "parent", MODEL_FACET})
FACET_KEYS = ("facets", "inputFacets", "outputFacets")
MODEL_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


# Node ids (lineage/nodes.py) are stored in indexed columns. A B-tree index entry holds at
# most 2,704 bytes and an edge's unique index holds two ids, so an id may take at most this many
# bytes of UTF-8: ids from ASCII namespaces, names, versions and fields within their lengths
# always fit, but a character of another script takes two to four bytes. A longer id would
# fail the mapping of every batch holding its event.
MAX_NODE_ID_BYTES = 1200
# And at most this many characters: the max_length of the edge's node columns (lineage.models).
MAX_NODE_ID_CHARS = 1100
# The longest version modelgov gives a dataset itself: a run's output is `run:` and its id.
_RUN_VERSION = "run:" + "0" * 36


@dataclass(frozen=True)
class Limits:
    """What an event may hold; a limit of None is not checked."""

    max_datasets: int | None = 100  # inputs and outputs, each
    max_facet_depth: int | None = 32
    max_schema_fields: int | None = 2000


# For events already accepted under the limits then in force: read, not checked again.
STORED = Limits(max_datasets=None, max_facet_depth=None, max_schema_fields=None)

Field = tuple[str, str, str]  # one schema field: (dotted name, type, description)


@dataclass
class DatasetRef:
    namespace: str
    name: str
    facets: dict[str, Any]
    version: str | None = None
    fields: tuple[Field, ...] = ()  # flattened schema
    column_lineage: list[tuple[str, str, str, str]] = field(default_factory=list)
    model: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


@dataclass
class ParsedEvent:
    kind: str  # RunEvent | DatasetEvent | JobEvent
    event_type: str | None
    event_time: datetime
    naive_time: bool
    producer: str
    schema_url: str | None
    job_namespace: str | None = None
    job_name: str | None = None
    job_facets: dict[str, Any] = field(default_factory=dict)
    run_id: uuid.UUID | None = None
    run_id_original: str | None = None
    run_facets: dict[str, Any] = field(default_factory=dict)
    parent_run_id: uuid.UUID | None = None
    parent_job: tuple[str, str] | None = None
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    dataset: DatasetRef | None = None


class EventInvalid(Exception):
    """The event breaks the contract; `errors` names each field and problem."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class _Collector:
    def __init__(self, schemas: dict | None = None) -> None:
        self.errors: list[dict[str, str]] = []
        self.schemas = schemas  # schema fields already read: raw list → flattened fields

    def add(self, path: str, message: str) -> None:
        self.errors.append({"field": path, "message": message})


def run_uuid(value: str) -> tuple[uuid.UUID, bool]:
    """A UUID for a runId; non-UUIDs map like Java's UUID.nameUUIDFromBytes (as Marquez)."""
    try:
        return uuid.UUID(value), True
    except ValueError:
        digest = bytearray(hashlib.md5(value.encode("utf-8"), usedforsecurity=False).digest())
        digest[6] = (digest[6] & 0x0F) | 0x30
        digest[8] = (digest[8] & 0x3F) | 0x80
        return uuid.UUID(bytes=bytes(digest)), False


# A region id in brackets after the offset, as Java's ZonedDateTime writes it
# (`2026-11-01T10:00Z[UTC]`, `…+01:00[Europe/Paris]`, `…+01:00[GMT+01:00]`) and Marquez's
# Jackson reads it: the offset fixes the moment, the region adds nothing to it.
_REGION_AFTER_OFFSET = re.compile(r"(.*(?:[Zz]|[+-]\d{2}(?::?\d{2})?))\[[A-Za-z0-9/_+:-]{1,64}\]")


def parse_time(value: Any) -> tuple[datetime, bool] | None:
    """(moment in UTC, whether the text gave no offset: read as UTC), or None if the value is
    not an ISO-8601 date-time within years 1 to 9999 in UTC."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    region = _REGION_AFTER_OFFSET.fullmatch(text)
    if region is not None:
        text = region.group(1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python's fromisoformat takes at most 6 fraction digits; producers send up to 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC), True
        return parsed.astimezone(UTC), False
    except (ValueError, OverflowError):  # also a moment beyond year 1 or 9999 in UTC
        return None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether some value inside `value` sits more than `limit` levels down (the items of a
    top-level object or list are one level down). Iterative: no recursion limit to hit."""
    containers = (dict, list)
    stack = [(value, 0)] if isinstance(value, containers) else []
    while stack:
        container, level = stack.pop()
        children = container.values() if isinstance(container, dict) else container
        if not children:
            continue
        if level >= limit:
            return True
        for child in children:
            if isinstance(child, containers):
                stack.append((child, level + 1))
    return False


def _text(c: _Collector, obj: dict, key: str, path: str, max_length: int) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        c.add(f"{path}.{key}" if path else key, "is required")
        return None
    if not isinstance(value, str):
        c.add(f"{path}.{key}" if path else key, "must be a string")
        return None
    if len(value) > max_length:
        c.add(f"{path}.{key}" if path else key, f"is longer than {max_length} characters")
        return None
    return value


def _node_fits(c: _Collector, path: str, node: str) -> None:
    size = len(node.encode("utf-8"))
    if size > MAX_NODE_ID_BYTES:
        c.add(
            path,
            f"makes the node id '{node[:60]}…' {size} bytes long in UTF-8; the graph stores "
            f"ids of at most {MAX_NODE_ID_BYTES} bytes",
        )
    elif len(node) > MAX_NODE_ID_CHARS:
        c.add(
            path,
            f"makes the node id '{node[:60]}…' {len(node)} characters long; the graph stores "
            f"ids of at most {MAX_NODE_ID_CHARS} characters",
        )


def _facets(c: _Collector, obj: dict, key: str, path: str, limits: Limits) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        c.add(f"{path}.{key}", "must be an object")
        return {}
    if limits.max_facet_depth is not None and _deeper_than(value, limits.max_facet_depth):
        c.add(f"{path}.{key}", f"is nested deeper than {limits.max_facet_depth} levels")
        return {}
    return value


def _given(facets: dict, name: str) -> Any:
    """The standard facet `name`, or None when it is absent, null or marked `_deleted` (the
    spec's way to delete a facet): each is read as absent, as Marquez does."""
    facet = facets.get(name)
    if isinstance(facet, dict) and facet.get("_deleted") is True:
        return None
    return facet


def _schema_fields(c: _Collector, facet: Any, path: str, limits: Limits) -> tuple[Field, ...]:
    if not isinstance(facet, dict):
        c.add(path, "must be an object")
        return ()
    raw = facet.get("fields")
    if raw is None:  # absent or null: no fields
        raw = []
    seen_before = _seen_schema(c.schemas, raw)
    if seen_before is not None:
        return seen_before
    errors = len(c.errors)
    out: list[Field] = []

    def walk(fields: Any, where: str, prefix: str) -> None:
        if not isinstance(fields, list):
            c.add(where, "must be a list")
            return
        seen: set[str] = set()
        for index, item in enumerate(fields):
            if not isinstance(item, dict):
                c.add(f"{where}.{index}", "must be an object")
                continue
            name = item.get("name")
            if not isinstance(name, str) or not name:
                c.add(f"{where}.{index}.name", "is required")
                continue
            if name in seen:
                c.add(f"{where}.{index}.name", f"duplicates the field name '{name}'")
                continue
            seen.add(name)
            dotted = prefix + name
            dtype = item.get("type")
            description = item.get("description")
            out.append(
                (
                    dotted[:255],
                    dtype[:100] if isinstance(dtype, str) else "",
                    description[:10_000] if isinstance(description, str) else "",
                )
            )
            if item.get("fields") is not None:
                walk(item["fields"], f"{where}.{index}.fields", f"{dotted}.")

    walk(raw, f"{path}.fields", "")
    cap = limits.max_schema_fields
    if cap is not None and len(out) > cap:
        c.add(f"{path}.fields", f"has more than {cap} fields")
    fields = tuple(out)
    if c.schemas is not None and len(c.errors) == errors and raw:
        c.schemas.setdefault(_schema_key(raw), []).append((raw, fields))
    return fields


def _schema_key(raw: list) -> tuple:
    first, last = raw[0], raw[-1]
    return (
        len(raw),
        first.get("name") if isinstance(first, dict) else None,
        last.get("name") if isinstance(last, dict) else None,
    )


def _seen_schema(schemas: dict | None, raw: Any) -> tuple[Field, ...] | None:
    """The fields of an equal schema read before with the same limits (a batch of events
    names the same datasets with the same schemas over and over)."""
    if schemas is None or not isinstance(raw, list) or not raw:
        return None
    for seen, fields in schemas.get(_schema_key(raw), ())[:8]:
        if seen == raw:
            return fields
    return None


def _column_lineage(c: _Collector, facet: Any, path: str) -> list[tuple[str, str, str, str]]:
    """(input namespace, input name, input field, output field) for each dependency."""
    fields = facet.get("fields") if isinstance(facet, dict) else None
    if fields is None:  # absent or null: no fields
        fields = {}
    if not isinstance(facet, dict) or not isinstance(fields, dict):
        c.add(path, "must be an object whose 'fields' is an object")
        return []
    out = []
    for out_field, spec in fields.items():
        here = f"{path}.fields.{out_field}"
        sources = spec.get("inputFields") if isinstance(spec, dict) else None
        if sources is None:  # absent or null: no input fields
            sources = []
        if not isinstance(spec, dict) or not isinstance(sources, list):
            c.add(here, "must be an object with an 'inputFields' list")
            continue
        for index, source in enumerate(sources):
            where = f"{here}.inputFields.{index}"
            if not isinstance(source, dict):
                c.add(where, "must be an object")
                continue
            parts = [source.get(k) for k in ("namespace", "name", "field")]
            if not all(isinstance(p, str) and p for p in parts):
                c.add(where, "needs namespace, name and field")
                continue
            out.append((parts[0], parts[1], parts[2], str(out_field)))
    return out


def _model_facet(c: _Collector, facet: Any, path: str) -> dict[str, Any] | None:
    if not isinstance(facet, dict):
        c.add(path, "must be an object")
        return None
    name = facet.get("name")
    if not isinstance(name, str) or not MODEL_NAME_RE.match(name):
        c.add(
            f"{path}.name",
            "must be a model name: 1–100 lowercase letters, digits, '-' or "
            "'_', starting and ending with a letter or digit",
        )
    sha = facet.get("sha256", "")
    if sha and (not isinstance(sha, str) or not SHA256_RE.match(sha)):
        c.add(f"{path}.sha256", "must be 64 lowercase hexadecimal characters")
    for key, limit in (("artifactUri", 1000), ("framework", 100)):
        value = facet.get(key, "")
        if value and (not isinstance(value, str) or len(value) > limit):
            c.add(f"{path}.{key}", f"must be a string of at most {limit} characters")
    metrics = facet.get("metrics", {})
    if not isinstance(metrics, dict):
        c.add(f"{path}.metrics", "must be an object of metric name → number")
    else:
        for key, value in metrics.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (isinstance(value, float) and not math.isfinite(value))
            ):
                c.add(f"{path}.metrics.{key}", "must be a finite number")
    return facet


def _dataset(
    c: _Collector, item: Any, path: str, limits: Limits, output: bool
) -> DatasetRef | None:
    if not isinstance(item, dict):
        c.add(path, "must be an object")
        return None
    before = len(c.errors)
    namespace = _text(c, item, "namespace", path, 255)
    name = _text(c, item, "name", path, 500)
    facets = _facets(c, item, "facets", path, limits)
    extra_key = "outputFacets" if output else "inputFacets"
    extra = _facets(c, item, extra_key, path, limits)
    if len(c.errors) > before:
        return None
    ref = DatasetRef(namespace=namespace, name=name, facets={**facets, **extra})
    version = _given(facets, "version")
    if version is not None:
        if (
            not isinstance(version, dict)
            or not isinstance(version.get("datasetVersion"), str)
            or not version["datasetVersion"]
        ):
            c.add(f"{path}.facets.version.datasetVersion", "is required and must be a string")
        else:
            ref.version = version["datasetVersion"][:255]
    schema = _given(facets, "schema")
    if schema is not None:
        ref.fields = _schema_fields(c, schema, f"{path}.facets.schema", limits)
    lineage = _given(facets, "columnLineage")
    if lineage is not None:
        ref.column_lineage = _column_lineage(c, lineage, f"{path}.facets.columnLineage")
    model = _given(facets, MODEL_FACET) or _given(extra, MODEL_FACET)
    if model is not None:
        if not output:
            c.add(f"{path}.facets.{MODEL_FACET}", "is only allowed on outputs")
        else:
            ref.model = _model_facet(c, model, f"{path}.facets.{MODEL_FACET}")
    # the longest id the dataset takes: with its own version, or a run's (an unversioned
    # input reads `external` or a version another event wrote, whose id was checked there)
    _node_fits(c, f"{path}.name", nodes.dataset_id(namespace, name, ref.version or _RUN_VERSION))
    lineage_path = f"{path}.facets.columnLineage.fields"
    for in_ns, in_name, in_field, out_field in ref.column_lineage:
        _node_fits(c, f"{lineage_path}.{out_field}", nodes.field_id(in_ns, in_name, in_field))
    for out_field in dict.fromkeys(out for *_, out in ref.column_lineage):
        _node_fits(c, f"{lineage_path}.{out_field}", nodes.field_id(namespace, name, out_field))
    return ref


def _datasets(c: _Collector, data: dict, key: str, limits: Limits) -> list[DatasetRef]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        c.add(key, "must be a list")
        return []
    if limits.max_datasets is not None and len(value) > limits.max_datasets:
        c.add(key, f"has {len(value)} entries; at most {limits.max_datasets} are accepted")
        return []
    refs = [
        _dataset(c, item, f"{key}.{i}", limits, key == "outputs") for i, item in enumerate(value)
    ]
    return [r for r in refs if r is not None]


def _kind(data: dict) -> str:
    url = data.get("schemaURL")
    if isinstance(url, str):
        for kind in ("RunEvent", "DatasetEvent", "JobEvent"):
            if url.endswith("/" + kind):
                return kind
    if "run" in data or "eventType" in data:
        return "RunEvent"
    if "dataset" in data:
        return "DatasetEvent"
    if "job" in data:
        return "JobEvent"
    return "RunEvent"


def parse_event(
    data: Any,
    limits: Limits = Limits(),  # noqa: B008
    schemas: dict | None = None,
) -> ParsedEvent:
    """Validate and normalise one event, or raise EventInvalid naming every problem. Events
    parsed with the same `schemas` dict (and the same limits) read each distinct schema once."""
    if not isinstance(data, dict):
        raise EventInvalid([{"field": None, "message": "an event must be a JSON object"}])
    c = _Collector(schemas)
    time = None
    if data.get("eventTime") is None:
        c.add("eventTime", "is required")
    else:
        time = parse_time(data["eventTime"])
        if time is None:
            c.add("eventTime", "must be an ISO-8601 date-time within years 1 to 9999 in UTC")
    producer = data.get("producer")
    if not isinstance(producer, str) or not producer:
        c.add("producer", "is required")
    schema_url = data.get("schemaURL")
    if schema_url is not None and not isinstance(schema_url, str):
        c.add("schemaURL", "must be a string")
    event_type = data.get("eventType")
    if event_type is not None and event_type not in EVENT_TYPES:
        c.add("eventType", f"must be one of {', '.join(EVENT_TYPES)}")
    kind = _kind(data)
    event = ParsedEvent(
        kind=kind,
        event_type=event_type if event_type in EVENT_TYPES else None,
        event_time=time[0] if time else datetime.now(UTC),
        naive_time=bool(time and time[1]),
        producer=producer if isinstance(producer, str) else "",
        schema_url=schema_url if isinstance(schema_url, str) else None,
    )
    if kind in ("RunEvent", "JobEvent"):
        job = data.get("job")
        if not isinstance(job, dict):
            c.add("job", "is required" if job is None else "must be an object")
        else:
            event.job_namespace = _text(c, job, "namespace", "job", 255)
            event.job_name = _text(c, job, "name", "job", 500)
            if event.job_namespace and event.job_name:
                _node_fits(c, "job.name", nodes.job_id(event.job_namespace, event.job_name))
            event.job_facets = _facets(c, job, "facets", "job", limits)
        event.inputs = _datasets(c, data, "inputs", limits)
        event.outputs = _datasets(c, data, "outputs", limits)
    if kind == "RunEvent":
        run = data.get("run")
        if not isinstance(run, dict):
            c.add("run", "is required" if run is None else "must be an object")
        else:
            run_id = run.get("runId")
            if not isinstance(run_id, str) or not run_id:
                c.add("run.runId", "is required")
            else:
                event.run_id, is_uuid = run_uuid(run_id)
                event.run_id_original = None if is_uuid else run_id[:255]
            event.run_facets = _facets(c, run, "facets", "run", limits)
            parent = _given(event.run_facets, "parent")
            if parent is not None:
                _parent(c, event, parent)
    if kind == "DatasetEvent":
        event.dataset = (
            _dataset(c, data.get("dataset"), "dataset", limits, output=False)
            if data.get("dataset") is not None
            else None
        )
        if data.get("dataset") is None:
            c.add("dataset", "is required")
    if c.errors:
        raise EventInvalid(c.errors)
    return event


def _parent(c: _Collector, event: ParsedEvent, parent: Any) -> None:
    path = "run.facets.parent"
    if not isinstance(parent, dict):
        c.add(path, "must be an object")
        return
    run, job = parent.get("run"), parent.get("job")
    if not isinstance(run, dict) or not isinstance(run.get("runId"), str) or not run["runId"]:
        c.add(f"{path}.run.runId", "is required")
    else:
        event.parent_run_id, _ = run_uuid(run["runId"])
    if not isinstance(job, dict):
        c.add(f"{path}.job", "is required")
    else:
        namespace = _text(c, job, "namespace", f"{path}.job", 255)
        name = _text(c, job, "name", f"{path}.job", 500)
        if namespace and name:
            _node_fits(c, f"{path}.job.name", nodes.job_id(namespace, name))
            event.parent_job = (namespace, name)
