"""Every write to the catalogue. Each service checks its permissions, validates, writes and
records exactly one audit event in the same transaction."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Max, Q
from django.utils import timezone

from audit.services import audit_record, audit_record_many
from core.canonical import sha256_hex
from core.db import columns as db_columns
from core.db import find, insert_new, load, select_list, update_fields
from core.errors import Conflict
from registry.models import (
    DOCUMENTATION_FIELDS,
    GOVERNED_IMMUTABLE_FIELDS,
    ApiToken,
    Dataset,
    DatasetVersion,
    Feature,
    Job,
    ModelVersion,
    RegisteredModel,
    Run,
    RunState,
)
from registry.permissions import ADD_MODEL, can_view_model, require_change_model, require_global

security_log = logging.getLogger("modelgov.security")

MODEL_EDITABLE = ("description", "business_unit", "risk_tier", "tags", "owner")
VERSION_EDITABLE = GOVERNED_IMMUTABLE_FIELDS + DOCUMENTATION_FIELDS
TERMINAL_RUN_STATES = {RunState.COMPLETE, RunState.FAIL, RunState.ABORT}


# --- shared mechanics ------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-able form of a field value for audit diffs."""
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, datetime | uuid.UUID):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    return value


def _apply(instance: models.Model, data: Mapping[str, Any], allowed: Iterable[str]) -> dict:
    """Set allowed fields from `data`; returns {field: [before, after]} of real changes."""
    allowed = set(allowed)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationError({key: "This field cannot be changed here." for key in unknown})
    changes = {}
    for field, value in data.items():
        before = getattr(instance, field)
        if before != value:
            changes[field] = [_plain(before), _plain(value)]
            setattr(instance, field, value)
    return changes


def _save(instance: models.Model, *, conflict_message: str, conflict_field: str | None) -> None:
    """Validate and save; a unique clash found only by the database becomes 409, not 500."""
    instance.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        raise Conflict(conflict_message, field=conflict_field) from exc


def _exists_conflict(qs: models.QuerySet, message: str, field: str) -> None:
    if qs.exists():
        raise Conflict(message, code="duplicate", field=field)


# --- registered models -----------------------------------------------------------------------


def _tags_index(tags: list[str]) -> str:
    return "".join(f",{tag}" for tag in tags) + ("," if tags else "")


def _refuse_taken_model_name(actor: AbstractBaseUser, name: str) -> None:
    """Refuse a name that is reserved or held by another model, without confirming a model
    the actor may not see: one namespace cannot hide that a name is taken, only by what.

    A model the actor can see is a plain 409 naming it. A model they cannot see, and a
    reserved name, get the same 400 as any other unusable name; the refusal is logged so
    that someone probing names shows up.
    """
    holder = RegisteredModel.objects.filter(name=name).first()
    if holder is not None and can_view_model(actor, holder):
        raise Conflict(f"A model named '{name}' exists.", code="duplicate", field="name")
    if holder is not None or name in settings.MODEL_NAMES_RESERVED:
        security_log.warning(
            "model name refused: user=%s name=%s held=%s",
            actor.get_username(),
            name,
            "yes" if holder is not None else "reserved",
        )
        raise ValidationError({"name": ValidationError(MODEL_NAME_UNAVAILABLE, code="unavailable")})


MODEL_NAME_UNAVAILABLE = "This name is not available; choose another."


@transaction.atomic
def registered_model_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    description: str = "",
    business_unit: str = "",
    risk_tier: str = "medium",
    tags: list[str] | None = None,
    owner: AbstractBaseUser | None = None,
) -> RegisteredModel:
    """Register a model; the actor owns it unless another owner is named."""
    require_global(actor, ADD_MODEL)
    if owner is not None and owner != actor and not actor.is_superuser:
        raise PermissionDenied("Only a superuser may register a model on behalf of someone else.")
    model = RegisteredModel(
        name=name,
        description=description,
        business_unit=business_unit,
        risk_tier=risk_tier,
        tags=list(tags or []),
        owner=owner or actor,
    )
    model.tags_index = _tags_index(model.tags) if isinstance(model.tags, list) else ""
    _refuse_taken_model_name(actor, name)
    try:
        _save(model, conflict_message="The model could not be registered.", conflict_field=None)
    except Conflict:
        # Taken between the check and the insert: answer as if the check had seen it.
        _refuse_taken_model_name(actor, name)
        raise
    audit_record(
        actor=actor,
        action="registry.registered_model.created",
        target=model,
        changes={f: [None, _plain(getattr(model, f))] for f in ("name",) + MODEL_EDITABLE},
    )
    return model


@transaction.atomic
def registered_model_update(
    *, actor: AbstractBaseUser, model: RegisteredModel, data: Mapping[str, Any]
) -> RegisteredModel:
    """Change a model's descriptive fields (owner change needs a superuser or the owner)."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    require_change_model(actor, model)
    if model.archived:
        raise Conflict(f"Model '{model.name}' is archived and cannot be changed.")
    if (
        "owner" in data
        and data["owner"] != model.owner
        and not (actor.is_superuser or model.owner_id == actor.pk)
    ):
        raise PermissionDenied("Only the owner or a superuser may hand a model to a new owner.")
    changes = _apply(model, data, MODEL_EDITABLE)
    if not changes:
        return model
    if isinstance(model.tags, list):
        model.tags_index = _tags_index(model.tags)
    _save(model, conflict_message="Conflicting update.", conflict_field=None)
    audit_record(
        actor=actor, action="registry.registered_model.updated", target=model, changes=changes
    )
    return model


@transaction.atomic
def registered_model_archive(*, actor: AbstractBaseUser, model: RegisteredModel) -> RegisteredModel:
    """Archive a model: it stays on record, read-only, and takes no new versions."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    require_change_model(actor, model)
    if model.archived:
        raise Conflict(f"Model '{model.name}' is already archived.")
    model.archived = True
    model.save(update_fields=["archived", "updated_at"])
    audit_record(
        actor=actor,
        action="registry.registered_model.archived",
        target=model,
        changes={"archived": [False, True]},
    )
    return model


# --- model versions --------------------------------------------------------------------------


def content_digest(version: ModelVersion) -> str:
    """sha256 of the canonical JSON of every governed field of a version."""
    return sha256_hex(
        {
            "model": version.model.name,
            "version": version.version,
            "artifact_uri": version.artifact_uri,
            "artifact_sha256": version.artifact_sha256,
            "parameters": version.parameters,
            "metrics": version.metrics,
            "training_run": str(version.training_run.run_id) if version.training_run else None,
            **{field: getattr(version, field) for field in DOCUMENTATION_FIELDS},
        }
    )


def _is_set(value: Any) -> bool:
    return value not in (None, "", {}, [])


@transaction.atomic
def model_version_create(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    artifact_uri: str = "",
    artifact_sha256: str = "",
    parameters: dict | None = None,
    metrics: dict | None = None,
    training_run: Run | None = None,
    **documentation: str,
) -> ModelVersion:
    """Register the next version of a model (numbered under a lock on the model row)."""
    unknown = set(documentation) - set(DOCUMENTATION_FIELDS)
    if unknown:
        raise ValidationError({key: "Unknown field." for key in sorted(unknown)})
    # The row lock serialises numbering on PostgreSQL; SQLite's IMMEDIATE transactions do too.
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    require_change_model(actor, model)
    if model.archived:
        raise Conflict(f"Model '{model.name}' is archived and takes no new versions.")
    last = model.versions.aggregate(last=Max("version"))["last"] or 0
    version = ModelVersion(
        model=model,
        version=last + 1,
        artifact_uri=artifact_uri,
        artifact_sha256=artifact_sha256,
        parameters={} if parameters is None else parameters,
        metrics={} if metrics is None else metrics,
        training_run=training_run,
        created_by=actor,
        **documentation,
    )
    version.full_clean(
        exclude=["content_digest"], validate_unique=False, validate_constraints=False
    )
    version.content_digest = content_digest(version)
    version.save()
    audit_record(
        actor=actor,
        action="registry.model_version.created",
        target=version,
        changes={
            "version": [None, version.version],
            "content_digest": [None, version.content_digest],
            **{f: [None, _plain(getattr(version, f))] for f in VERSION_EDITABLE},
        },
    )
    return version


def check_version_changes(version: ModelVersion, data: Mapping[str, Any]) -> None:
    """Refuse (409) changing a governed field that is already set; used by every door."""
    for field in GOVERNED_IMMUTABLE_FIELDS:
        if field in data and _is_set(getattr(version, field)):
            if getattr(version, field) != data[field]:
                raise Conflict(
                    f"'{field}' is immutable once set; register a new version instead.",
                    code="immutable",
                    field=field,
                )


@transaction.atomic
def model_version_update(
    *, actor: AbstractBaseUser, version: ModelVersion, data: Mapping[str, Any]
) -> ModelVersion:
    """Edit documentation fields (and set governed fields still empty); recomputes the digest."""
    version = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
    require_change_model(actor, version.model)
    check_version_changes(version, data)
    changes = _apply(version, data, VERSION_EDITABLE)
    if not changes:
        return version
    version.full_clean(
        exclude=["content_digest"], validate_unique=False, validate_constraints=False
    )
    digest = content_digest(version)
    changes["content_digest"] = [version.content_digest, digest]
    version.content_digest = digest
    version.save()
    audit_record(
        actor=actor, action="registry.model_version.updated", target=version, changes=changes
    )
    return version


# --- datasets, features, jobs, runs ----------------------------------------------------------


def _created(actor: Any, action: str, instance: models.Model, fields: Iterable[str]) -> None:
    audit_record(
        actor=actor,
        action=action,
        target=instance,
        changes={f: [None, _plain(getattr(instance, f))] for f in fields},
    )


@transaction.atomic
def dataset_create(
    *,
    actor: AbstractBaseUser,
    namespace: str,
    name: str,
    description: str = "",
    contains_pii: bool = False,
) -> Dataset:
    """Catalogue a dataset (namespace + name unique); the actor becomes its owner."""
    require_global(actor, "registry.add_dataset")
    dataset = Dataset(
        namespace=namespace,
        name=name,
        description=description,
        contains_pii=contains_pii,
        owner=actor,
    )
    message = f"Dataset '{namespace}:{name}' exists."
    _exists_conflict(Dataset.objects.filter(namespace=namespace, name=name), message, "name")
    _save(dataset, conflict_message=message, conflict_field="name")
    _created(
        actor,
        "registry.dataset.created",
        dataset,
        ("namespace", "name", "description", "contains_pii"),
    )
    return dataset


@transaction.atomic
def dataset_update(
    *, actor: AbstractBaseUser, dataset: Dataset, data: Mapping[str, Any]
) -> Dataset:
    """Change a dataset's description or PII flag."""
    require_global(actor, "registry.change_dataset")
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if dataset.archived:
        raise Conflict("This dataset is archived and cannot be changed.")
    changes = _apply(dataset, data, ("description", "contains_pii"))
    if changes:
        _save(dataset, conflict_message="Conflicting update.", conflict_field=None)
        audit_record(
            actor=actor, action="registry.dataset.updated", target=dataset, changes=changes
        )
    return dataset


@transaction.atomic
def dataset_archive(*, actor: AbstractBaseUser, dataset: Dataset) -> Dataset:
    """Archive a dataset; its versions and lineage stay on record."""
    require_global(actor, "registry.change_dataset")
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if dataset.archived:
        raise Conflict("This dataset is already archived.")
    dataset.archived = True
    dataset.save(update_fields=["archived"])
    audit_record(
        actor=actor,
        action="registry.dataset.archived",
        target=dataset,
        changes={"archived": [False, True]},
    )
    return dataset


@transaction.atomic
def dataset_version_create(
    *,
    actor: AbstractBaseUser,
    dataset: Dataset,
    version: str,
    schema: list | None = None,
    produced_by: Run | None = None,
) -> DatasetVersion:
    """Record an immutable version of a dataset."""
    require_global(actor, "registry.add_datasetversion")
    if dataset.archived:
        raise Conflict("This dataset is archived and takes no new versions.")
    dataset_version = DatasetVersion(
        dataset=dataset,
        version=version,
        schema=[] if schema is None else schema,
        produced_by=produced_by,
    )
    message = f"Version '{version}' of this dataset exists."
    _exists_conflict(dataset.versions.filter(version=version), message, "version")
    _save(dataset_version, conflict_message=message, conflict_field="version")
    _created(
        actor,
        "registry.dataset_version.created",
        dataset_version,
        ("dataset", "version", "schema", "produced_by"),
    )
    return dataset_version


@transaction.atomic
def feature_create(
    *,
    actor: AbstractBaseUser,
    dataset: Dataset,
    name: str,
    dtype: str = "",
    description: str = "",
    pii: bool = False,
) -> Feature:
    """Catalogue a feature (column) of a dataset."""
    require_global(actor, "registry.add_feature")
    if dataset.archived:
        raise Conflict("This dataset is archived and takes no new features.")
    feature = Feature(dataset=dataset, name=name, dtype=dtype, description=description, pii=pii)
    message = f"Feature '{name}' exists in this dataset."
    _exists_conflict(dataset.features.filter(name=name), message, "name")
    _save(feature, conflict_message=message, conflict_field="name")
    _created(
        actor,
        "registry.feature.created",
        feature,
        ("dataset", "name", "dtype", "description", "pii"),
    )
    return feature


@transaction.atomic
def feature_update(
    *, actor: AbstractBaseUser, feature: Feature, data: Mapping[str, Any]
) -> Feature:
    """Change a feature's type, description or PII flag."""
    require_global(actor, "registry.change_feature")
    feature = Feature.objects.select_for_update().get(pk=feature.pk)
    if feature.archived:
        raise Conflict("This feature is archived and cannot be changed.")
    changes = _apply(feature, data, ("dtype", "description", "pii"))
    if changes:
        _save(feature, conflict_message="Conflicting update.", conflict_field=None)
        audit_record(
            actor=actor, action="registry.feature.updated", target=feature, changes=changes
        )
    return feature


@transaction.atomic
def feature_archive(*, actor: AbstractBaseUser, feature: Feature) -> Feature:
    """Archive a feature."""
    require_global(actor, "registry.change_feature")
    feature = Feature.objects.select_for_update().get(pk=feature.pk)
    if feature.archived:
        raise Conflict("This feature is already archived.")
    feature.archived = True
    feature.save(update_fields=["archived"])
    audit_record(
        actor=actor,
        action="registry.feature.archived",
        target=feature,
        changes={"archived": [False, True]},
    )
    return feature


@transaction.atomic
def job_create(*, actor: AbstractBaseUser, namespace: str, name: str, description: str = "") -> Job:
    """Catalogue a job (namespace + name unique)."""
    require_global(actor, "registry.add_job")
    job = Job(namespace=namespace, name=name, description=description)
    message = f"Job '{namespace}:{name}' exists."
    _exists_conflict(Job.objects.filter(namespace=namespace, name=name), message, "name")
    _save(job, conflict_message=message, conflict_field="name")
    _created(actor, "registry.job.created", job, ("namespace", "name", "description"))
    return job


@transaction.atomic
def job_update(*, actor: AbstractBaseUser, job: Job, data: Mapping[str, Any]) -> Job:
    """Change a job's description."""
    require_global(actor, "registry.change_job")
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.archived:
        raise Conflict("This job is archived and cannot be changed.")
    changes = _apply(job, data, ("description",))
    if changes:
        _save(job, conflict_message="Conflicting update.", conflict_field=None)
        audit_record(actor=actor, action="registry.job.updated", target=job, changes=changes)
    return job


@transaction.atomic
def job_archive(*, actor: AbstractBaseUser, job: Job) -> Job:
    """Archive a job; its runs stay on record."""
    require_global(actor, "registry.change_job")
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.archived:
        raise Conflict("This job is already archived.")
    job.archived = True
    job.save(update_fields=["archived"])
    audit_record(
        actor=actor, action="registry.job.archived", target=job, changes={"archived": [False, True]}
    )
    return job


def check_run_transition(current: str, new: str) -> None:
    """A finished run (COMPLETE, FAIL, ABORT) keeps its final state."""
    if current in TERMINAL_RUN_STATES and new != current:
        raise Conflict(f"The run is {current}; it cannot become {new}.", field="state")


@transaction.atomic
def run_create(
    *,
    actor: AbstractBaseUser,
    job: Job,
    run_id: uuid.UUID | None = None,
    state: str = RunState.START,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    facets: dict | None = None,
    parent: Run | None = None,
) -> Run:
    """Record a run of a job."""
    require_global(actor, "registry.add_run")
    if job.archived:
        raise Conflict("This job is archived and takes no new runs.")
    run = Run(
        job=job,
        run_id=run_id or uuid.uuid4(),
        state=state,
        started_at=started_at or timezone.now(),
        ended_at=ended_at,
        facets={} if facets is None else facets,
        parent=parent,
    )
    _check_run_times(run)
    message = f"Run '{run.run_id}' exists."
    _exists_conflict(Run.objects.filter(run_id=run.run_id), message, "run_id")
    _save(run, conflict_message=message, conflict_field="run_id")
    _created(
        actor,
        "registry.run.created",
        run,
        ("run_id", "job", "state", "started_at", "ended_at", "parent"),
    )
    return run


@transaction.atomic
def run_update(*, actor: AbstractBaseUser, run: Run, data: Mapping[str, Any]) -> Run:
    """Move a run along its state machine and record its end time and facets."""
    require_global(actor, "registry.change_run")
    run = Run.objects.select_for_update().get(pk=run.pk)
    if "state" in data:
        check_run_transition(run.state, data["state"])
    changes = _apply(run, data, ("state", "ended_at", "facets"))
    if changes:
        _check_run_times(run)
        _save(run, conflict_message="Conflicting update.", conflict_field=None)
        audit_record(actor=actor, action="registry.run.updated", target=run, changes=changes)
    return run


def _check_run_times(run: Run) -> None:
    if run.ended_at and run.started_at and run.ended_at < run.started_at:
        raise ValidationError({"ended_at": "Must not be before started_at."})


# --- API tokens ------------------------------------------------------------------------------


@transaction.atomic
def api_token_issue(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, name: str, days: int | None = None
) -> tuple[ApiToken, str]:
    """Mint a named token for `user`; the plain value is returned once and never stored."""
    if actor is not None and actor != user and not actor.is_superuser:
        raise PermissionDenied("Only a superuser may issue tokens for another user.")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": "A token needs a label of 1–100 characters."})
    if days is not None and not 1 <= days <= 3650:
        raise ValidationError({"days": "Token lifetime must be 1–3650 days."})
    if not user.is_active:
        raise ValidationError({"user": "The user is inactive."})
    ttl = timedelta(days=days) if days is not None else settings.REST_KNOX["TOKEN_TTL"]
    token, plain = ApiToken.objects.create(user=user, expiry=ttl, name=name)
    audit_record(
        actor=actor,
        action="registry.api_token.issued",
        target=token,
        object_id=token.token_key,
        object_repr=f"{name} for {user.get_username()}",
        changes={
            "user": [None, user.get_username()],
            "name": [None, name],
            "expiry": [None, _plain(token.expiry)],
        },
    )
    return token, plain


@transaction.atomic
def api_token_revoke(*, actor: AbstractBaseUser | None, token: ApiToken) -> ApiToken:
    """Revoke a token at once; the row stays so the audit trail keeps its meaning."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if actor is not None and actor != token.user and not actor.is_superuser:
        raise PermissionDenied("Only a superuser may revoke another user's token.")
    if token.revoked_at is not None:
        raise Conflict("This token is already revoked.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        actor=actor,
        action="registry.api_token.revoked",
        target=token,
        object_id=token.token_key,
        object_repr=f"{token.name} for {token.user.get_username()}",
        changes={"revoked_at": [None, _plain(token.revoked_at)]},
    )
    return token


# --- idempotent upserts used by lineage ingestion ---------------------------------------------
# Ingestion must be idempotent and safe under concurrent posts about the same entities. The
# set-based helpers read every key they are given in one query, insert what is missing with
# ON CONFLICT DO NOTHING (no error, so no savepoint), read back the rows a concurrent writer
# won, and audit only the rows this transaction inserted, with one multi-row audit insert.
# Rows are inserted in key order, so concurrent writers take their locks in the same order.
# Their own atomic blocks take no savepoint: nobody catches their errors to carry on, so the
# savepoint round trips on every event would buy nothing.

DATASET_AUDITED = ("namespace", "name", "description", "contains_pii")
FEATURE_AUDITED = ("dataset", "name", "dtype", "description", "pii")
VERSION_AUDITED = ("dataset", "version", "schema", "produced_by")
RUN_AUDITED = ("run_id", "job", "state", "started_at", "ended_at", "parent")


def _get_or_create(model: type[models.Model], lookup: dict, create) -> tuple[Any, bool]:
    found = model.objects.filter(**lookup).first()
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            return create(), True
    except (IntegrityError, Conflict):
        found = model.objects.filter(**lookup).first()
        if found is None:
            raise  # a refusal (e.g. an archived parent), not a lost race: 409, never a 500
        return found, False


def _keys_q(keys: Iterable[tuple], names: tuple[str, ...]) -> Q:
    q = Q()
    for key in keys:
        q |= Q(**dict(zip(names, key, strict=True)))
    return q


def _insert_missing(
    objs: list[models.Model], *, fields: tuple[str, ...], unique_fields: tuple[str, ...]
) -> tuple[list, list]:
    """Insert the objects, skipping keys that exist: (those inserted, now saved with their
    primary key; those a concurrent writer inserted first)."""
    attnames = [objs[0]._meta.get_field(name).attname for name in unique_fields]
    returned = insert_new(
        objs, fields=fields, unique_fields=unique_fields, returning=("id", *unique_fields)
    )
    ids = {tuple(row[1:]): row[0] for row in returned}
    inserted, lost = [], []
    for obj in objs:
        pk = ids.get(tuple(getattr(obj, name) for name in attnames))
        if pk is None:
            lost.append(obj)
            continue
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
        inserted.append(obj)
    return inserted, lost


def _created_many(
    actor: Any, action: str, instances: list[models.Model], fields: Iterable[str]
) -> None:
    """One `_created` event per instance, recorded with one insert."""
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


@transaction.atomic(savepoint=False)
def job_ensure(*, actor: AbstractBaseUser, namespace: str, name: str) -> Job:
    """The job with this namespace and name, catalogued on first sight."""
    found = find(Job, ("namespace", "name"), [(namespace, name)])
    if found:
        return found[0]
    job, _ = _get_or_create(
        Job,
        {"namespace": namespace, "name": name},
        lambda: job_create(actor=actor, namespace=namespace, name=name),
    )
    return job


@transaction.atomic(savepoint=False)
def datasets_ensure(
    *, actor: AbstractBaseUser, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Dataset]:
    """The datasets with these (namespace, name) keys, each catalogued on first sight (as
    `dataset_create` would: owned by the actor, audited once)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = {(d.namespace, d.name): d for d in find(Dataset, ("namespace", "name"), wanted)}
    _datasets_create(actor, [key for key in wanted if key not in found], found)
    return found


def _datasets_create(
    actor: AbstractBaseUser, missing: list[tuple[str, str]], found: dict[tuple[str, str], Dataset]
) -> None:
    """Catalogue the missing datasets into `found` (a concurrent winner's row read back)."""
    if not missing:
        return
    require_global(actor, "registry.add_dataset")
    new = [Dataset(namespace=namespace, name=name, owner=actor) for namespace, name in missing]
    for dataset in new:
        dataset.full_clean(exclude=["owner"], validate_unique=False, validate_constraints=False)
    inserted, lost = _insert_missing(
        new,
        fields=(
            "namespace",
            "name",
            "description",
            "owner",
            "contains_pii",
            "archived",
            "created_at",
        ),
        unique_fields=("namespace", "name"),
    )
    for dataset in inserted:
        found[(dataset.namespace, dataset.name)] = dataset
    if lost:
        keys_lost = [(d.namespace, d.name) for d in lost]
        for dataset in Dataset.objects.filter(_keys_q(keys_lost, ("namespace", "name"))):
            found[(dataset.namespace, dataset.name)] = dataset
    _created_many(actor, "registry.dataset.created", inserted, DATASET_AUDITED)


@transaction.atomic(savepoint=False)
def datasets_sync(
    *,
    actor: AbstractBaseUser,
    schemas: Iterable[tuple[tuple[str, str], Iterable[Mapping[str, str]]]],
) -> dict[tuple[str, str], Dataset]:
    """`datasets_ensure` and the features' sync together, for (namespace, name) keys each
    with a schema (possibly empty): one statement reads the datasets and their features."""
    schemas = [(key, list(fields)) for key, fields in schemas]
    wanted = sorted({key for key, _ in schemas})
    if not wanted:
        return {}
    if not any(fields for _, fields in schemas):
        return datasets_ensure(actor=actor, keys=wanted)
    names = db_columns(Dataset)
    datasets_sql, features_sql, one = _datasets_with_features_sql(connection.vendor)
    where = " OR ".join([one] * len(wanted))
    params = [part for key in wanted for part in key]
    found: dict[tuple[str, str], Dataset] = {}
    existing: dict[tuple[int, str], list] = {}
    with connection.cursor() as cursor:
        cursor.execute(f"{datasets_sql}{where} UNION ALL {features_sql}{where}", params * 2)
        rows = cursor.fetchall()
    width = len(names)
    for row in rows:
        if row[width] is None:  # a dataset
            dataset = load(Dataset, names, row[:width])
            found[(dataset.namespace, dataset.name)] = dataset
        else:  # a feature: dataset id, id, name, dtype, description, archived
            existing[(row[width], row[width + 2])] = [row[width + 1], *row[width + 3 :]]
    _datasets_create(actor, [key for key in wanted if key not in found], found)
    _features_sync(
        actor, [(found[key], fields) for key, fields in schemas if fields], existing=existing
    )
    return found


@functools.cache
def _datasets_with_features_sql(vendor: str) -> tuple[str, str, str]:
    """The datasets' rows, then their features' (each part's other columns null, so that a
    dataset's columns are sent once, not once per feature)."""
    names = db_columns(Dataset)
    datasets, features = Dataset._meta.db_table, Feature._meta.db_table
    return (
        f"SELECT {select_list(Dataset, names, 'd')}, NULL, NULL, NULL, NULL, NULL, NULL "
        f"FROM {datasets} d WHERE ",
        f"SELECT {', '.join(['NULL'] * len(names))}, f.dataset_id, f.id, f.name, f.dtype, "
        f"f.description, f.archived FROM {features} f JOIN {datasets} d ON d.id = f.dataset_id "
        "WHERE ",
        "(d.namespace = %s AND d.name = %s)",
    )


@transaction.atomic(savepoint=False)
def dataset_ensure(*, actor: AbstractBaseUser, namespace: str, name: str) -> Dataset:
    """The dataset with this namespace and name, catalogued on first sight."""
    return datasets_ensure(actor=actor, keys=[(namespace, name)])[(namespace, name)]


@transaction.atomic(savepoint=False)
def dataset_versions_ensure(
    *,
    actor: AbstractBaseUser,
    wanted: Iterable[tuple[Dataset, str | None, list | None, Run | None]],
    not_produced_by: Run | None = None,
    fallback: str = "",
) -> list[tuple[DatasetVersion, bool]]:
    """For each (dataset, version, schema, produced_by): the version with that key, recorded on
    first sight with its schema and producing run (the first mention of a key wins), and
    whether this call created it. A version of None asks for the dataset's latest version (by
    creation) not produced by `not_produced_by` or, when there is none, the `fallback` version
    (recorded as above, with no producing run). One statement reads them all; versions that
    existed are read without their schema (deferred)."""
    wanted = list(wanted)
    exact = sorted({(spec[0].pk, spec[1]) for spec in wanted if spec[1] is not None})
    latest_of = sorted({spec[0].pk for spec in wanted if spec[1] is None})
    stored, latest = _versions_read(exact, latest_of, not_produced_by)
    specs: dict[tuple[int, str], tuple] = {}
    keys = []
    for dataset, version, schema, produced_by in wanted:
        if version is None:
            found = latest.get(dataset.pk)
            if found is not None:
                found.dataset = dataset
                stored[(dataset.pk, found.version)] = found
                keys.append((dataset.pk, found.version))
                continue
            version, produced_by = fallback, None
        key = (dataset.pk, version)
        specs.setdefault(key, (dataset, version, schema, produced_by))
        keys.append(key)
    for key, version in stored.items():
        if key in specs:
            version.dataset = specs[key][0]
    missing = [key for key in sorted(specs) if key not in stored]
    created = _versions_create(actor, [specs[key] for key in missing], stored)
    return [(stored[key], key in created) for key in keys]


def _versions_read(
    exact: list[tuple[int, str]], latest_of: list[int], not_produced_by: Run | None
) -> tuple[dict[tuple[int, str], DatasetVersion], dict[int, DatasetVersion]]:
    """The versions with these (dataset id, version) keys, and the latest version (by
    creation) of each dataset in `latest_of` not produced by `not_produced_by`: one statement,
    each latest one a scan of its dataset's versions on the dataset_id index."""
    if not exact and not latest_of:
        return {}, {}
    table = DatasetVersion._meta.db_table
    names = db_columns(DatasetVersion, defer=("schema",))
    columns = select_list(DatasetVersion, names)
    parts, params = [], []
    if exact:
        parts.append(
            f"SELECT 0, {columns} FROM {table} WHERE "
            + " OR ".join(["(dataset_id = %s AND version = %s)"] * len(exact))
        )
        params += [part for key in exact for part in key]
    if latest_of:
        other = (
            ""
            if not_produced_by is None
            else (" AND (v.produced_by_id IS NULL OR v.produced_by_id <> %s)")
        )
        parts.append(
            f"SELECT 1, {columns} FROM {table} WHERE id IN (SELECT (SELECT v.id FROM {table} v "
            f"WHERE v.dataset_id = d.id{other} ORDER BY v.created_at DESC, v.id DESC LIMIT 1) "
            f"FROM {Dataset._meta.db_table} d "
            f"WHERE d.id IN ({', '.join(['%s'] * len(latest_of))}))"
        )
        params += ([] if not_produced_by is None else [not_produced_by.pk]) + latest_of
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()
    stored, latest = {}, {}
    for row in rows:
        version = load(DatasetVersion, names, row[1:])
        if row[0]:
            latest[version.dataset_id] = version
        else:
            stored[(version.dataset_id, version.version)] = version
    return stored, latest


def _versions_create(
    actor: AbstractBaseUser, specs: list[tuple], stored: dict[tuple[int, str], DatasetVersion]
) -> set[tuple[int, str]]:
    """Record the versions of these specs into `stored` (a concurrent winner's row read back);
    the keys of those this call created."""
    if not specs:
        return set()
    require_global(actor, "registry.add_datasetversion")
    new = []
    for dataset, version, schema, produced_by in specs:
        if dataset.archived:
            raise Conflict(f"Dataset '{dataset}' is archived and takes no new versions.")
        obj = DatasetVersion(
            dataset=dataset,
            version=version,
            schema=[] if schema is None else schema,
            produced_by=produced_by,
        )
        obj.full_clean(
            exclude=["dataset", "produced_by"], validate_unique=False, validate_constraints=False
        )
        new.append(obj)
    inserted, lost = _insert_missing(
        new,
        fields=("dataset", "version", "schema", "produced_by", "created_at"),
        unique_fields=("dataset", "version"),
    )
    for obj in inserted:
        stored[(obj.dataset_id, obj.version)] = obj
    if lost:
        datasets = {obj.dataset_id: obj.dataset for obj in lost}
        keys_lost = [(obj.dataset_id, obj.version) for obj in lost]
        for version in DatasetVersion.objects.filter(_keys_q(keys_lost, ("dataset_id", "version"))):
            version.dataset = datasets[version.dataset_id]
            stored[(version.dataset_id, version.version)] = version
    _created_many(actor, "registry.dataset_version.created", inserted, VERSION_AUDITED)
    return {(obj.dataset_id, obj.version) for obj in inserted}


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


RUN_FIELDS = (
    "run_id",
    "job",
    "state",
    "started_at",
    "ended_at",
    "facets",
    "parent",
    "state_time",
    "external_id",
    "created_at",
)


@transaction.atomic(savepoint=False)
def run_record_event(
    *,
    actor: AbstractBaseUser,
    job: Job,
    run_id: uuid.UUID,
    state: str,
    event_time: datetime,
    facets: dict | None = None,
    parent: Run | None = None,
    external_id: str = "",
) -> Run:
    """Fold one lineage event into its run: state, times and facets converge whatever the
    order in which events arrive. The run is created on first sight (as `run_create` would,
    audited once) or read under a row lock, and written only when something changed."""
    require_global(actor, "registry.change_run")
    found = find(Run, ("run_id",), [(run_id,)], for_update=True)
    run = found[0] if found else None
    if run is None:
        require_global(actor, "registry.add_run")
        if job.archived:
            raise Conflict("This job is archived and takes no new runs.")
        run = Run(
            job=job,
            run_id=run_id,
            state=state,
            started_at=event_time,
            ended_at=event_time if state in TERMINAL_RUN_STATES else None,
            facets=facets or {},
            parent=parent,
            state_time=event_time,
            external_id=external_id,
        )
        _check_run_times(run)
        run.full_clean(exclude=["job", "parent"], validate_unique=False, validate_constraints=False)
        returned = insert_new([run], fields=RUN_FIELDS, unique_fields=("run_id",))
        if returned:
            run.pk = returned[0][0]
            run._state.adding = False
            run._state.db = connection.alias
            _created_many(actor, "registry.run.created", [run], RUN_AUDITED)
            return run
        # A concurrent post created it first: fold this event into the winner's row.
        run = Run.objects.select_for_update().get(run_id=run_id)
    if run.job_id != job.pk:
        raise ValidationError({"run.runId": "This run id belongs to another job."})
    run.job = job
    changes: dict[str, Any] = {}
    dirty: set[str] = set()
    if run_state_wins((state, event_time), (run.state, run.state_time)):
        if state != run.state:
            changes["state"] = [run.state, state]
        run.state = state
        run.state_time = event_time
        dirty |= {"state", "state_time"}
        if state in TERMINAL_RUN_STATES and run.ended_at != event_time:
            changes["ended_at"] = [_plain(run.ended_at), _plain(event_time)]
            run.ended_at = event_time
            dirty.add("ended_at")
    if run.started_at is None or event_time < run.started_at:
        changes["started_at"] = [_plain(run.started_at), _plain(event_time)]
        run.started_at = event_time
        dirty.add("started_at")
    if facets:
        merged = (
            {**run.facets, **facets}
            if event_time >= (run.state_time or event_time)
            else {**facets, **run.facets}
        )
        if merged != run.facets:
            changes["facets"] = sorted(set(merged) - set(run.facets)) or sorted(facets)
            run.facets = merged
            dirty.add("facets")
    if parent is not None and run.parent_id is None:
        changes["parent"] = [None, str(parent.run_id)]
        run.parent = parent
        dirty.add("parent")
    update_fields(run, sorted(dirty))
    if changes:
        audit_record(actor=actor, action="registry.run.updated", target=run, changes=changes)
    return run


def _features_sync(
    actor: AbstractBaseUser,
    schemas: Iterable[tuple[Dataset, Iterable[Mapping[str, str]]]],
    existing: dict[tuple[int, str], list] | None = None,
) -> None:
    """Make each dataset's features match its schema (missing ones created, changed types and
    descriptions updated; a feature named twice takes the later non-empty values), given the
    datasets' features if already read: (dataset id, name)
    → [id, dtype, description, archived]."""
    schemas = [(dataset, list(fields)) for dataset, fields in schemas]
    schemas = [(dataset, fields) for dataset, fields in schemas if fields]
    if not schemas:
        return
    if existing is None:
        existing = _features_of(sorted({dataset.pk for dataset, _ in schemas}))
    new: dict[tuple[int, str], Feature] = {}
    updates: dict[int, dict[str, str]] = {}
    for dataset, fields in schemas:
        for item in fields:
            name, dtype, description = (
                item["name"],
                item.get("type", ""),
                item.get("description", ""),
            )
            key = (dataset.pk, name)
            row = existing.get(key)
            if row is not None:
                if row[3]:
                    continue  # archived features are left as they are
                for index, attr, value in ((1, "dtype", dtype), (2, "description", description)):
                    if value and row[index] != value:
                        row[index] = value
                        updates.setdefault(row[0], {})[attr] = value
            elif key in new:
                feature = new[key]
                feature.dtype = dtype or feature.dtype
                feature.description = description or feature.description
            else:
                new[key] = Feature(dataset=dataset, name=name, dtype=dtype, description=description)
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
        inserted, _ = _insert_missing(
            objs,
            fields=("dataset", "name", "dtype", "description", "pii", "archived", "created_at"),
            unique_fields=("dataset", "name"),
        )
        _created_many(actor, "registry.feature.created", inserted, FEATURE_AUDITED)
    for pk, data in sorted(updates.items()):
        feature_update(actor=actor, feature=Feature(pk=pk), data=data)


def _features_of(dataset_ids: list[int]) -> dict[tuple[int, str], list]:
    placeholders = ", ".join(["%s"] * len(dataset_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, dataset_id, name, dtype, description, archived FROM "
            f"{Feature._meta.db_table} WHERE dataset_id IN ({placeholders})",
            dataset_ids,
        )
        rows = cursor.fetchall()
    return {(row[1], row[2]): [row[0], row[3], row[4], row[5]] for row in rows}
