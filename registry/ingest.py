"""Set-based upserts of catalogue entities for lineage ingestion.

The lineage mapper folds a whole batch of events into the catalogue with a fixed number of
statements: each function reads every key it is given with one query, inserts what is
missing with INSERT … ON CONFLICT DO NOTHING RETURNING (`core.db.insert_new`: no error, so no
savepoint, and it says which rows this transaction created — a concurrent writer's rows are
read back), and audits only the rows it created or changed, one event each, with one multi-row
audit insert. Rows are inserted in key order, so concurrent mappers take locks in one order.

Runs and dataset versions come one or more per event: given a `Ledger`, the functions that
write them note what they created or changed in it instead, for the caller to audit as one
event for the whole batch (the lineage mapper does). Catalogue entities — jobs, datasets,
features — are audited one event each, always.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Func, IntegerField

from audit.services import audit_record_many
from core.canonical import canonical_json
from core.db import insert_new
from core.errors import Conflict
from registry.models import Dataset, DatasetVersion, Feature, Job, Run, RunState
from registry.permissions import require_global
from registry.services import TERMINAL_RUN_STATES, _plain, feature_update

DATASET_AUDITED = ("namespace", "name", "description", "contains_pii")
FEATURE_AUDITED = ("dataset", "name", "dtype", "description", "pii")
VERSION_AUDITED = ("dataset", "version", "schema", "produced_by")
RUN_AUDITED = ("run_id", "job", "state", "started_at", "ended_at", "parent")

Key = tuple[str, str]  # (namespace, name)


class FieldSpec(NamedTuple):
    """One schema field of a dataset (nested fields flattened to dotted names)."""

    name: str
    type: str = ""
    description: str = ""


@dataclass(frozen=True)
class VersionSpec:
    """A dataset version an event names; `produced_by` is the run that wrote it, if any."""

    dataset: Key
    version: str
    schema: tuple[FieldSpec, ...] = ()
    produced_by: uuid.UUID | None = None
    at: datetime | None = None  # the naming event's time


@dataclass(frozen=True)
class RunEventSpec:
    """What one lineage event says about its run."""

    run_id: uuid.UUID
    job: Key
    state: str
    event_time: datetime
    facets: Mapping[str, Any] = field(default_factory=dict)
    parent: uuid.UUID | None = None
    parent_job: Key | None = None
    external_id: str = ""


@dataclass
class Ledger:
    """The runs and dataset versions a batch created or changed, to be audited as one event."""

    runs_created: list[str] = field(default_factory=list)
    runs_updated: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions_created: list[str] = field(default_factory=list)

    def changes(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.runs_created:
            out["runs_created"] = self.runs_created
        if self.runs_updated:
            out["runs_updated"] = self.runs_updated
        if self.versions_created:
            out["dataset_versions_created"] = self.versions_created
        return out


def _with_keys(
    queryset: models.QuerySet, keys: Iterable[tuple], names: tuple[str, str]
) -> list[models.Model]:
    """The rows whose (names) pair is one of `keys`: read by each column's IN list (one plain
    statement on the unique index, however many keys), the pairs then matched here."""
    keys = set(keys)
    if not keys:
        return []
    first, second = names
    rows = queryset.filter(
        **{
            f"{first}__in": sorted({k[0] for k in keys}),
            f"{second}__in": sorted({k[1] for k in keys}),
        }
    )
    attnames = [queryset.model._meta.get_field(name).attname for name in names]
    return [row for row in rows if tuple(getattr(row, a) for a in attnames) in keys]


def _created_many(
    actor: Any, action: str, instances: list[models.Model], fields: Iterable[str]
) -> None:
    """One "created" audit event per instance, recorded with one insert."""
    audit_record_many(
        actor=actor,
        records=[
            {
                "action": action,
                "target": instance,
                "changes": {f: [None, _plain(getattr(instance, f))] for f in fields},
            }
            for instance in instances
        ],
    )


def _insert(objs: list[models.Model], *, fields: tuple[str, ...], unique: tuple[str, ...]):
    """Insert the objects, skipping stored keys: (those inserted, now with their primary key;
    those a concurrent writer inserted first)."""
    attnames = [objs[0]._meta.get_field(name).attname for name in unique]
    returned = insert_new(objs, fields=fields, unique_fields=unique, returning=("id", *unique))
    ids = {tuple(row[1:]): row[0] for row in returned}
    inserted, lost = [], []
    for obj in objs:
        pk = ids.get(tuple(getattr(obj, name) for name in attnames))
        if pk is None:
            lost.append(obj)
        else:
            obj.pk = pk
            inserted.append(obj)
    return inserted, lost


# --- jobs ------------------------------------------------------------------------------------


@transaction.atomic(savepoint=False)
def jobs_ensure(*, actor: AbstractBaseUser, keys: Iterable[Key]) -> dict[Key, Job]:
    """The jobs with these (namespace, name) keys, each catalogued (and audited) on first
    sight."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = {
        (j.namespace, j.name): j for j in _with_keys(Job.objects, wanted, ("namespace", "name"))
    }
    missing = [key for key in wanted if key not in found]
    if missing:
        require_global(actor, "registry.add_job")
        new = [Job(namespace=ns, name=name) for ns, name in missing]
        for job in new:
            job.full_clean(validate_unique=False, validate_constraints=False)
        inserted, lost = _insert(
            new,
            fields=("namespace", "name", "description", "archived", "created_at"),
            unique=("namespace", "name"),
        )
        found.update({(j.namespace, j.name): j for j in inserted})
        if lost:
            keys_lost = [(j.namespace, j.name) for j in lost]
            for job in _with_keys(Job.objects, keys_lost, ("namespace", "name")):
                found[(job.namespace, job.name)] = job
        _created_many(actor, "registry.job.created", inserted, ("namespace", "name", "description"))
    return found


# --- datasets and features -------------------------------------------------------------------


@transaction.atomic(savepoint=False)
def datasets_sync(
    *, actor: AbstractBaseUser, schemas: Iterable[tuple[Key, Iterable[FieldSpec]]]
) -> dict[Key, Dataset]:
    """The datasets with these keys, catalogued (owned by the actor, audited) on first sight,
    and their features made to match the schemas given: missing ones created, changed types
    and descriptions updated (a feature named twice takes the later non-empty values)."""
    schemas = [(key, list(fields)) for key, fields in schemas]
    wanted = sorted({key for key, _ in schemas})
    if not wanted:
        return {}
    found = {
        (d.namespace, d.name): d for d in _with_keys(Dataset.objects, wanted, ("namespace", "name"))
    }
    missing = [key for key in wanted if key not in found]
    if missing:
        _datasets_create(actor, missing, found)
    # each distinct schema once: a batch names the same datasets with the same schemas often
    distinct = dict.fromkeys((key, tuple(fields)) for key, fields in schemas if fields)
    with_fields = [(found[key], list(fields)) for key, fields in distinct]
    if with_fields:
        _features_sync(actor, with_fields)
    return found


def datasets_lock(keys: Iterable[Key]) -> None:
    """Hold the rows of the catalogued datasets with these keys until the transaction ends
    (`FOR NO KEY UPDATE`, taken in primary key order: two transactions that each lock all
    they need at once, before other writes, cannot each hold what the other waits for).
    Transactions that lock the same dataset run one after the other; versions and features
    may still be inserted beside it (their foreign keys take a weaker lock). SQLite runs
    writing transactions one at a time anyway and ignores it. (Read by each column's IN list,
    as `_with_keys`: a dataset pairing one key's namespace with another's name is locked too,
    which only makes a batch wait a little more often.)"""
    locked = Dataset.objects.select_for_update(no_key=True).only("namespace", "name").order_by("pk")
    _with_keys(locked, keys, ("namespace", "name"))


# The columns a dataset first seen in an event is inserted with (all but its id).
DATASET_INSERTED = (
    "namespace",
    "name",
    "description",
    "owner",
    "contains_pii",
    "archived",
    "created_at",
)


def _datasets_create(actor: AbstractBaseUser, missing: list[Key], found: dict) -> None:
    require_global(actor, "registry.add_dataset")
    new = [Dataset(namespace=ns, name=name, owner=actor) for ns, name in missing]
    for dataset in new:
        dataset.full_clean(exclude=["owner"], validate_unique=False, validate_constraints=False)
    inserted, lost = _insert(new, fields=DATASET_INSERTED, unique=("namespace", "name"))
    found.update({(d.namespace, d.name): d for d in inserted})
    if lost:
        keys_lost = [(d.namespace, d.name) for d in lost]
        for dataset in _with_keys(Dataset.objects, keys_lost, ("namespace", "name")):
            found[(dataset.namespace, dataset.name)] = dataset
    _created_many(actor, "registry.dataset.created", inserted, DATASET_AUDITED)


def _features_sync(actor: AbstractBaseUser, schemas: list[tuple[Dataset, list[FieldSpec]]]) -> None:
    existing = {
        (dataset_id, name): [pk, dtype, description, archived]
        for pk, dataset_id, name, dtype, description, archived in Feature.objects.filter(
            dataset__in=sorted({dataset.pk for dataset, _ in schemas})
        ).values_list("pk", "dataset_id", "name", "dtype", "description", "archived")
    }
    new: dict[tuple[int, str], Feature] = {}
    updates: dict[int, dict[str, str]] = {}
    for dataset, fields in schemas:
        dataset_pk = dataset.pk
        for spec in fields:
            key = (dataset_pk, spec.name)
            row = existing.get(key)
            if row is not None:
                if row[3]:
                    continue  # archived features are left as they are
                for index, attr, value in (
                    (1, "dtype", spec.type),
                    (2, "description", spec.description),
                ):
                    if value and row[index] != value:
                        row[index] = value
                        updates.setdefault(row[0], {})[attr] = value
            elif key in new:
                feature = new[key]
                feature.dtype = spec.type or feature.dtype
                feature.description = spec.description or feature.description
            else:
                new[key] = Feature(
                    dataset=dataset, name=spec.name, dtype=spec.type, description=spec.description
                )
    if new:
        require_global(actor, "registry.add_feature")
        objs = [new[key] for key in sorted(new)]
        for feature in objs:
            if feature.dataset.archived:
                raise Conflict(
                    f"Dataset '{feature.dataset}' is archived and takes no new features."
                )
            feature.full_clean(
                exclude=["dataset"], validate_unique=False, validate_constraints=False
            )
        inserted, _ = _insert(
            objs,
            fields=("dataset", "name", "dtype", "description", "pii", "archived", "created_at"),
            unique=("dataset", "name"),
        )
        _created_many(actor, "registry.feature.created", inserted, FEATURE_AUDITED)
    for pk, data in sorted(updates.items()):
        feature_update(actor=actor, feature=Feature(pk=pk), data=data)


# --- dataset versions ------------------------------------------------------------------------


@transaction.atomic(savepoint=False)
def dataset_versions_ensure(
    *,
    actor: AbstractBaseUser,
    datasets: Mapping[Key, Dataset],
    specs: Iterable[VersionSpec],
    runs: Mapping[uuid.UUID, Run] | None = None,
    ledger: Ledger | None = None,
) -> None:
    """Record the versions not stored yet, each with its schema and producing run: as its
    writer's mention names it (with a reader's schema if the writer gives none), else as the
    other mentions do. What a stored version lacks is filled in when an event names it: its
    producing run (when a reader named it first), and a schema (when none was given). A
    writer's schema replaces a reader's; of two writers' (or two readers') different schemas,
    the earliest event's stands (`_schema_replaces`). So the record does not depend on which
    event arrives first. Otherwise what a version holds is not changed here (nor a schema given
    through the registry). Noted in `ledger` if given, else audited."""
    first: dict[tuple[int, str], VersionSpec] = {}  # per version: its producer, its schema
    by_reader: set[tuple[int, str]] = set()  # the spec's schema is a reader's
    schemas: dict[tuple[FieldSpec, ...], list[dict[str, str]]] = {}  # each built once

    def schema_of(fields: tuple[FieldSpec, ...]) -> list[dict[str, str]]:
        schema = schemas.get(fields)
        if schema is None:
            schema = schemas[fields] = [
                {"name": f.name, "type": f.type, "description": f.description} for f in fields
            ]
        return schema

    for spec in specs:
        key = (datasets[spec.dataset].pk, spec.version)
        found = first.get(key)
        if found is None:
            first[key] = spec
            if spec.schema and not spec.produced_by:
                by_reader.add(key)
            continue
        if spec.produced_by and not found.produced_by:  # the writer's mention
            found = replace(found, produced_by=spec.produced_by)
        if spec.schema and (
            not found.schema
            or _schema_replaces(
                _Claim(not spec.produced_by, spec.at, schema_of(spec.schema)),
                _Claim(key in by_reader, found.at, schema_of(found.schema)),
            )
        ):
            found = replace(found, schema=spec.schema, at=spec.at)
            if spec.produced_by:
                by_reader.discard(key)
            else:
                by_reader.add(key)
        first[key] = found
    if not first:
        return
    stored = {
        (dataset, version): (pk, writer, fields, reader_gave, schema_at)
        for pk, dataset, version, writer, fields, reader_gave, schema_at in (
            DatasetVersion.objects.filter(
                dataset__in=sorted({dataset for dataset, _ in first}),
                version__in=sorted({version for _, version in first}),
            )
            .annotate(
                fields=Func("schema", function="json_array_length", output_field=IntegerField())
            )
            .values_list(
                "pk",
                "dataset_id",
                "version",
                "produced_by_id",
                "fields",
                "schema_by_reader",
                "schema_at",
            )
        )
    }
    # the stored schemas a mention of the same moment and kind contests (rare): read whole
    ties = []
    for key, spec in first.items():
        row = stored.get(key)
        if spec.schema and row and row[2] and (row[3], row[4]) == (key in by_reader, spec.at):
            ties.append(row[0])
    contested = dict(DatasetVersion.objects.filter(pk__in=ties).values_list("pk", "schema"))
    gaps = []  # stored versions lacking what this batch's mention gives
    for key, spec in sorted(first.items()):
        if key not in stored:
            continue
        pk, writer, fields, reader_gave, schema_at = stored[key]
        run = (runs or {}).get(spec.produced_by) if writer is None and spec.produced_by else None
        schema = (
            schema_of(spec.schema)
            if spec.schema
            and (
                not fields
                or _schema_replaces(
                    _Claim(key in by_reader, spec.at, schema_of(spec.schema)),
                    _Claim(reader_gave, schema_at, contested.get(pk)),
                )
            )
            else None
        )
        if run is not None or schema is not None:
            gaps.append(_Gap(pk, run, schema, key in by_reader, spec.at))
    _versions_fill(actor, gaps)
    missing = [key for key in sorted(first) if key not in stored]
    if not missing:
        return
    require_global(actor, "registry.add_datasetversion")
    new = []
    for key in missing:
        spec = first[key]
        dataset = datasets[spec.dataset]
        if dataset.archived:
            raise Conflict(f"Dataset '{dataset}' is archived and takes no new versions.")
        version = DatasetVersion(
            dataset=dataset,
            version=spec.version,
            schema=schema_of(spec.schema),
            schema_by_reader=key in by_reader,
            schema_at=spec.at if spec.schema else None,
            produced_by=(runs or {}).get(spec.produced_by) if spec.produced_by else None,
        )
        # the schema is built above from strings: JSON whatever they hold
        version.full_clean(
            exclude=["dataset", "produced_by", "schema"],
            validate_unique=False,
            validate_constraints=False,
        )
        new.append(version)
    inserted, _ = _insert(
        new,
        fields=(
            "dataset",
            "version",
            "schema",
            "schema_by_reader",
            "schema_at",
            "produced_by",
            "created_at",
        ),
        unique=("dataset", "version"),
    )
    if ledger is None:
        _created_many(actor, "registry.dataset_version.created", inserted, VERSION_AUDITED)
    else:
        ledger.versions_created += [
            f"{v.dataset.namespace}:{v.dataset.name}#{v.version}" for v in inserted
        ]


class _Claim(NamedTuple):
    """A version's schema as one mention gives it: whether a reader gave it, the event's time
    (None: not known), the schema as stored (read only where it is needed: at one moment)."""

    by_reader: bool
    at: datetime | None
    schema: Any


def _schema_replaces(given: _Claim, held: _Claim) -> bool:
    """Whether the schema a mention gives replaces the one a version holds (both non-empty):
    a writer's replaces a reader's; between two of one kind the earliest event's stands, at
    one moment the lesser in canonical JSON. A schema held without its time (given through
    the registry, or stored before times were kept) stays."""
    if given.by_reader != held.by_reader:
        return held.by_reader
    if given.at is None or held.at is None:
        return False
    if given.at != held.at:
        return given.at < held.at
    if given.schema == held.schema:  # the usual case, and quicker told than by their JSON
        return False
    return canonical_json(given.schema) < canonical_json(held.schema)


class _Gap(NamedTuple):
    """What a stored version (pk) is given: its producing run, a schema (whether a reader
    gave it, and the time of the event that did)."""

    pk: int
    run: Run | None
    schema: list[dict[str, str]] | None
    by_reader: bool
    at: datetime | None


def _versions_fill(actor: AbstractBaseUser, gaps: list[_Gap]) -> None:
    """Fill in what stored versions lack: the producing run, a schema; each change audited
    (a schema given again by an earlier event moves its time only)."""
    if not gaps:
        return
    require_global(actor, "registry.add_datasetversion")
    rows = DatasetVersion.objects.in_bulk([gap.pk for gap in gaps])
    changed, records = [], []
    for gap in gaps:
        row = rows[gap.pk]
        changes: dict[str, Any] = {}
        if gap.run is not None:
            changes["produced_by"] = [None, str(gap.run.run_id)]
            row.produced_by = gap.run
        if gap.schema is not None:
            if gap.schema != row.schema:
                changes["schema"] = [row.schema, gap.schema]
                row.schema = gap.schema
            row.schema_by_reader, row.schema_at = gap.by_reader, gap.at
        if changes:
            records.append(
                {"action": "registry.dataset_version.updated", "target": row, "changes": changes}
            )
        changed.append(row)
    DatasetVersion.objects.bulk_update(
        changed, ["produced_by", "schema", "schema_by_reader", "schema_at"]
    )
    audit_record_many(actor=actor, records=records)


def _versions_of(keys: Iterable[tuple[Key, str]]) -> list[DatasetVersion]:
    """The stored versions (dataset, version), with their dataset and producing run, by pk."""
    wanted = set(keys)
    return [
        row
        for row in DatasetVersion.objects.select_related("dataset", "produced_by")
        .filter(
            dataset__name__in=sorted({name for (_, name), _ in wanted}),
            version__in=sorted({version for _, version in wanted}),
        )
        .order_by("pk")
        if ((row.dataset.namespace, row.dataset.name), row.version) in wanted
    ]


def _reproduce(actor: AbstractBaseUser, changes: list[tuple[DatasetVersion, str | None]]) -> None:
    """Give each version the run (by run id) as its producer, or none; each audited."""
    if not changes:
        return
    require_global(actor, "registry.add_datasetversion")
    runs = Run.objects.in_bulk([run for _, run in changes if run], field_name="run_id")
    records = []
    for row, run_id in changes:
        producer = runs.get(uuid.UUID(run_id)) if run_id else None
        records.append(
            {
                "action": "registry.dataset_version.updated",
                "target": row,
                "changes": {
                    "produced_by": [
                        str(row.produced_by.run_id) if row.produced_by else None,
                        str(producer.run_id) if producer else None,
                    ]
                },
            }
        )
        row.produced_by = producer
    DatasetVersion.objects.bulk_update([row for row, _ in changes], ["produced_by"])
    audit_record_many(actor=actor, records=records)


def dataset_versions_unproduce(
    *, actor: AbstractBaseUser, versions: Iterable[tuple[Key, str, str, str | None]]
) -> None:
    """(dataset, version, run id, other run id or None): the version is not that run's write
    after all (the run reads it). A version recorded as produced by the run is produced by the
    other run instead (another writer stored for it), or by none; each audited."""
    wanted = {(key, version): (run_id, other) for key, version, run_id, other in versions}
    if not wanted:
        return
    changes = []
    for row in _versions_of(wanted):
        run_id, other = wanted[((row.dataset.namespace, row.dataset.name), row.version)]
        if row.produced_by is not None and str(row.produced_by.run_id) == run_id:
            changes.append((row, other))
    _reproduce(actor, changes)


def dataset_versions_produce(
    *, actor: AbstractBaseUser, writers: Mapping[tuple[Key, str], list[str]]
) -> None:
    """(dataset, version) → the ids of the runs stored as writing it, the one to produce it
    first (the caller decides: the earliest write), so that the producer does not depend on
    which arrived first. A version produced by none of them, or by another of them, is given
    that run, audited; one whose producer was given otherwise (through the registry) keeps
    it."""
    changes = []
    for row in _versions_of(writers) if writers else ():
        runs = writers[((row.dataset.namespace, row.dataset.name), row.version)]
        current = str(row.produced_by.run_id) if row.produced_by else None
        if current != runs[0] and (current is None or current in runs):
            changes.append((row, runs[0]))
    _reproduce(actor, changes)


@transaction.atomic(savepoint=False)
def dataset_versions_identify(
    *,
    actor: AbstractBaseUser,
    datasets: Mapping[Key, Dataset],
    names: Mapping[tuple[Key, str], str],
) -> list[tuple[Key, str, str]]:
    """Give versions recorded under a stand-in name the name a later event gave them
    ((dataset, stand-in) → name; e.g. the version `run:<runId>` a run wrote before an event of
    its own named it). The row is renamed; where a version of that name is stored already
    (a reader named it first), the stand-in is merged into it: removed, the caller moving its
    edges. Each audited. Returns (dataset, stand-in, name) of those renamed or merged."""
    if not names:
        return []
    by_pk = {datasets[key].pk: key for key, _ in names}
    wanted = {(datasets[key].pk, old): new for (key, old), new in names.items()}
    rows = [
        row
        for row in DatasetVersion.objects.filter(
            dataset__in=sorted(by_pk), version__in=sorted({old for _, old in wanted})
        ).order_by("pk")
        if (row.dataset_id, row.version) in wanted
    ]
    if not rows:
        return []
    # recording the name its writer gives a version is recording the version: what it holds
    # (the schema, the producing run) stays, and is what the named version holds when a reader
    # recorded it first
    require_global(actor, "registry.add_datasetversion")
    taken = {
        (row.dataset_id, row.version): row
        for row in DatasetVersion.objects.filter(
            dataset__in=sorted(by_pk), version__in=sorted(set(wanted.values()))
        )
    }
    out, renamed, merged, records, schemas = [], [], [], [], {}
    for row in rows:
        old = row.version
        new = wanted[(row.dataset_id, old)]
        dataset = datasets[by_pk[row.dataset_id]]
        if dataset.archived:
            raise Conflict(f"Dataset '{dataset}' is archived and takes no new versions.")
        out.append((by_pk[row.dataset_id], old, new))
        named = taken.get((row.dataset_id, new))
        if named is not None:  # stored, or given to another stand-in just now
            merged.append(row.pk)
            action = "registry.dataset_version.merged"
            # the schema that would stand had the two been one version all along: the
            # writer's over one a reader gave (or none), else the earliest event's
            if row.schema and (
                not named.schema
                or _schema_replaces(
                    _Claim(row.schema_by_reader, row.schema_at, row.schema),
                    _Claim(named.schema_by_reader, named.schema_at, named.schema),
                )
            ):
                schemas[named.pk] = named
                if named.schema != row.schema:
                    records.append(
                        {
                            "action": "registry.dataset_version.updated",
                            "target": named,
                            "changes": {"schema": [named.schema, row.schema]},
                        }
                    )
                named.schema, named.schema_by_reader = row.schema, row.schema_by_reader
                named.schema_at = row.schema_at
        else:
            taken[(row.dataset_id, new)] = row
            row.version = new
            renamed.append(row)
            action = "registry.dataset_version.updated"
        records.append({"action": action, "target": row, "changes": {"version": [old, new]}})
    audit_record_many(actor=actor, records=records)
    DatasetVersion.objects.bulk_update(renamed, ["version"])
    DatasetVersion.objects.bulk_update(
        list(schemas.values()), ["schema", "schema_by_reader", "schema_at"]
    )
    DatasetVersion.objects.filter(pk__in=merged).delete()
    return out


# --- runs ------------------------------------------------------------------------------------

_STATE_RANK = {
    RunState.OTHER: 0,
    RunState.START: 1,
    RunState.RUNNING: 2,
    RunState.COMPLETE: 3,
    RunState.FAIL: 3,
    RunState.ABORT: 3,
}


def run_state_wins(new: tuple[str, datetime], current: tuple[str, datetime | None]) -> bool:
    """Whether an event's state replaces the run's: the highest rank wins, then the latest
    event time, then the state name — an order-independent rule, so runs converge."""
    (new_state, new_time), (cur_state, cur_time) = new, current
    if cur_time is None:
        return True
    return (_STATE_RANK[new_state], new_time, new_state) > (
        _STATE_RANK[cur_state],
        cur_time,
        cur_state,
    )


RUN_FOLDED = (
    "job",  # changes only for a placeholder: see runs_record_events
    "state",
    "state_time",
    "started_at",
    "ended_at",
    "facets",
    "facet_times",
    "parent",
    "external_id",
)
RUN_FOLDED_ATTNAMES = tuple(Run._meta.get_field(name).attname for name in RUN_FOLDED)


def _fold(run: Run, spec: RunEventSpec, parent: Run | None, changes: dict) -> None:
    """Fold one event into the run (in memory): state, times and facets converge whatever
    the order events arrive in; `changes` collects {field: [before, after]} for the audit."""

    def note(name: str, before: Any, after: Any) -> None:
        if before != after:
            first = changes.get(name, [_plain(before)])[0]
            changes[name] = [first, _plain(after)]

    time = spec.event_time
    _fold_facets(run, spec.facets, time, changes)
    if run_state_wins((spec.state, time), (run.state, run.state_time)):
        note("state", run.state, spec.state)
        run.state, run.state_time = spec.state, time
        if spec.state in TERMINAL_RUN_STATES and run.ended_at != time:
            note("ended_at", run.ended_at, time)
            run.ended_at = time
    if run.started_at is None or time < run.started_at:
        note("started_at", run.started_at, time)
        run.started_at = time
    if parent is not None and run.parent_id is None:
        changes["parent"] = [None, str(parent.run_id)]
        run.parent = parent
    if spec.external_id and not run.external_id:
        run.external_id = spec.external_id


@transaction.atomic(savepoint=False)
def runs_record_events(
    *,
    actor: AbstractBaseUser,
    events: list[RunEventSpec],
    jobs: Mapping[Key, Job],
    ledger: Ledger | None = None,
) -> dict[uuid.UUID, Run]:
    """Fold lineage events into their runs: each run created on first sight (audited once) or
    read under a row lock, changed ones written with one statement, each change audited once
    (or noted in `ledger`).
    A parent named before its own events arrive is recorded as a placeholder (state OTHER, no
    times) that its events then fill in, so the result does not depend on arrival order."""
    if not events:
        return {}
    require_global(actor, "registry.change_run")
    ids = sorted({e.run_id for e in events} | {e.parent for e in events if e.parent})
    runs = {
        r.run_id: r
        for r in Run.objects.select_for_update().filter(run_id__in=ids).order_by("run_id")
    }
    placeholders = {
        e.parent: jobs[e.parent_job] for e in events if e.parent and e.parent not in runs
    }
    placeholders = {
        run_id: job
        for run_id, job in placeholders.items()
        if not any(e.run_id == run_id for e in events)
    }
    by_run: dict[uuid.UUID, list[RunEventSpec]] = {}
    for spec in sorted(events, key=lambda e: (e.event_time, e.state)):
        by_run.setdefault(spec.run_id, []).append(spec)
    new_ids = sorted(set(placeholders) | {i for i in by_run if i not in runs})
    if new_ids:
        runs.update(_runs_create(actor, new_ids, by_run, placeholders, jobs, runs, ledger))
    changed, records = [], []
    for run_id, specs in by_run.items():
        run = runs[run_id]
        if getattr(run, "_created_in_batch", False):
            continue
        before = _folded(run)
        changes: dict[str, Any] = {}
        for spec in specs:
            if run.job_id != jobs[spec.job].pk:
                _adopt(run, jobs[spec.job], changes)
            _fold(run, spec, runs.get(spec.parent) if spec.parent else None, changes)
        # also a later time of the same state, or a facet's value equal in Python but not
        # in JSON (1.0 for 1): stored, not audited
        if _folded(run) != before or run.__dict__.pop("_facets_taken", False):
            _check_times(run)
            changed.append(run)
        if changes and ledger is not None:
            ledger.runs_updated[str(run.run_id)] = changes
        elif changes:
            records.append({"action": "registry.run.updated", "target": run, "changes": changes})
    _runs_write(changed)
    audit_record_many(actor=actor, records=records)
    return runs


# The job name openlineage-spark gives some applications' first event before it knows theirs
# (OpenLineage issue 3846): the later events of the run name the real job.
UNKNOWN_JOB = "unknown"


def _adopt(run: Run, job: Job, changes: dict) -> None:
    """A run's own event names `job`, not the run's. A placeholder (no event of its own yet;
    its job came from a child's parent facet, which may name the job otherwise, e.g. Spark's
    application name before `spark.openlineage.appName` applies), or a run known only under
    Spark's stand-in name `unknown`, becomes a run of the job its event names; an event
    naming `unknown` is the run's, under its job. Otherwise the event is refused."""
    if job.name == UNKNOWN_JOB:
        return
    before = Job.objects.get(pk=run.job_id)
    if run.started_at is not None and before.name != UNKNOWN_JOB:
        raise ValidationError({"run.runId": "This run id belongs to another job."})
    if job.archived:
        raise Conflict("This job is archived and takes no new runs.")
    changes["job"] = [f"{before.namespace}:{before.name}", f"{job.namespace}:{job.name}"]
    run.job = job


def _fold_facets(run: Run, facets: dict, time: datetime, changes: dict) -> None:
    """Each facet of the event replaces the run's facet of that name if the event is later
    than the one that gave it (`run.facet_times`; a facet stored before those were kept counts
    as given at the run's `state_time`); at the same moment, the greater in canonical JSON
    wins. A later event repeating the value still moves its time. Whatever order the events
    arrive in, each facet holds the latest event's value, as that event wrote it.
    `changes["facets"]` collects the names of the facets whose value changed."""
    taken = []
    times = run.facet_times or {}
    for name, value in facets.items():
        if name in run.facets:
            stamp = times.get(name)
            since = datetime.fromisoformat(stamp) if stamp else run.state_time
            if since is not None and (
                since > time
                or (since == time and canonical_json(run.facets[name]) >= canonical_json(value))
            ):
                continue
        taken.append(name)
    if not taken:
        return
    changed = [n for n in taken if n not in run.facets or run.facets[n] != facets[n]]
    run.facets = {**run.facets, **{name: facets[name] for name in taken}}
    run._facets_taken = True  # to be stored, whatever Python's equality says of the values
    run.facet_times = {**times, **dict.fromkeys(taken, time.astimezone(UTC).isoformat())}
    if changed:
        changes["facets"] = sorted({*changes.get("facets", ()), *changed})


def _runs_write(changed: list[Run]) -> None:
    """Write the folded fields of these stored, row-locked runs with one upsert on their
    primary key: a plain column list, where an UPDATE of many rows takes a CASE per field
    per row. Each row is a copy, so the runs keep their own `created_at`."""
    if not changed:
        return
    Run.objects.bulk_create(
        [
            Run(
                pk=run.pk,
                run_id=run.run_id,
                **dict(zip(RUN_FOLDED_ATTNAMES, _folded(run), strict=True)),
            )
            for run in changed
        ],
        update_conflicts=True,
        unique_fields=["pk"],
        update_fields=list(RUN_FOLDED),
    )


def _folded(run: Run) -> tuple:
    return tuple(getattr(run, attname) for attname in RUN_FOLDED_ATTNAMES)


def _runs_create(actor, new_ids, by_run, placeholders, jobs, runs, ledger) -> dict[uuid.UUID, Run]:
    require_global(actor, "registry.add_run")
    new = []
    for run_id in new_ids:
        if run_id in placeholders:
            job = placeholders[run_id]
            run = Run(run_id=run_id, job=job, state=RunState.OTHER, facets={})
        else:
            specs = by_run[run_id]
            named = [jobs[spec.job] for spec in specs if spec.job[1] != UNKNOWN_JOB]
            job = named[0] if named else jobs[specs[0].job]
            run = Run(run_id=run_id, job=job, state=RunState.OTHER, facets={})
            for spec in specs:
                if jobs[spec.job].pk != job.pk and spec.job[1] != UNKNOWN_JOB:
                    raise ValidationError({"run.runId": "This run id belongs to another job."})
                _fold(run, spec, None, {})
                if spec.parent and not getattr(run, "_parent_id_wanted", None):
                    run._parent_id_wanted = spec.parent
        if job.archived:
            raise Conflict("This job is archived and takes no new runs.")
        # no full_clean: every field comes from an event read against the contract when it was
        # accepted (a known state, an id of at most 255 characters, times); only the order of
        # the times depends on several events
        _check_times(run)
        new.append(run)
    inserted, lost = _insert(
        new,
        fields=(
            "run_id",
            "job",
            "state",
            "started_at",
            "ended_at",
            "facets",
            "facet_times",
            "state_time",
            "external_id",
            "created_at",
        ),
        unique=("run_id",),
    )
    out = {run.run_id: run for run in inserted}
    for run in inserted:
        run._created_in_batch = True
    if lost:  # a concurrent mapper created them first: fold into the winner's rows
        for run in (
            Run.objects.select_for_update()
            .filter(run_id__in=[r.run_id for r in lost])
            .order_by("run_id")
        ):
            out[run.run_id] = run
    # parents: the placeholders exist now, link children created in this batch to them
    everything = {**runs, **out}
    linked = []
    for run in inserted:
        wanted = getattr(run, "_parent_id_wanted", None)
        if wanted and wanted in everything:
            run.parent = everything[wanted]
            linked.append(run)
    if linked:
        Run.objects.bulk_update(linked, ["parent"])
    if ledger is None:
        _created_many(actor, "registry.run.created", inserted, RUN_AUDITED)
    else:
        ledger.runs_created += [str(run.run_id) for run in inserted]
    return out


def _check_times(run: Run) -> None:
    if run.ended_at and run.started_at and run.ended_at < run.started_at:
        raise ValidationError({"ended_at": "Must not be before started_at."})
