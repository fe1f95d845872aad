"""Every write to the catalogue. Each service checks its permissions, validates, writes and
records exactly one audit event in the same transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone

from audit.services import audit_record
from core.canonical import sha256_hex
from core.errors import Conflict
from registry.models import (
    DIGEST_WHEN_SET_FIELDS,
    DOCUMENTATION_FIELDS,
    GOVERNED_IMMUTABLE_FIELDS,
    ApiToken,
    Dataset,
    DatasetVersion,
    Feature,
    Job,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    RunState,
)
from registry.permissions import ADD_MODEL, can_view_model, require_change_model, require_global
from registry.validators import validate_alias, validate_label_key, validate_labels

security_log = logging.getLogger("modelgov.security")

MODEL_EDITABLE = ("description", "business_unit", "risk_tier", "tags", "owner")
VERSION_EDITABLE = GOVERNED_IMMUTABLE_FIELDS + DOCUMENTATION_FIELDS + ("description",)
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
    labels: dict[str, str] | None = None,
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
        labels={} if labels is None else labels,
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
        changes={
            **{f: [None, _plain(getattr(model, f))] for f in ("name",) + MODEL_EDITABLE},
            **({"labels": [None, model.labels]} if model.labels else {}),
        },
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
            **{
                field: getattr(version, field)
                for field in DOCUMENTATION_FIELDS
                if field not in DIGEST_WHEN_SET_FIELDS or getattr(version, field)
            },
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
    description: str = "",
    labels: dict[str, str] | None = None,
    source_run_id: str = "",
    source_model_id: str = "",
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
        description=description,
        labels={} if labels is None else labels,
        source_run_id=source_run_id,
        source_model_id=source_model_id,
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
            **{
                f: [None, getattr(version, f)]
                for f in ("labels", "source_run_id", "source_model_id")
                if getattr(version, f)
            },
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
    if digest != version.content_digest:
        changes["content_digest"] = [version.content_digest, digest]
    version.content_digest = digest
    version.save()
    audit_record(
        actor=actor, action="registry.model_version.updated", target=version, changes=changes
    )
    return version


# --- names, key → value tags and aliases -----------------------------------------------------


@transaction.atomic
def registered_model_rename(
    *, actor: AbstractBaseUser, model: RegisteredModel, new_name: str
) -> RegisteredModel:
    """Rename a model. Versions keep their content digests: an approval or a model card
    stays tied to the content it saw."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    require_change_model(actor, model)
    if model.archived:
        raise Conflict(f"Model '{model.name}' is archived and cannot be changed.")
    old_name = model.name
    if new_name == old_name:
        return model
    model.name = new_name
    message = f"A model named '{new_name}' exists."
    _exists_conflict(RegisteredModel.objects.filter(name=new_name), message, "name")
    _save(model, conflict_message=message, conflict_field="name")
    audit_record(
        actor=actor,
        action="registry.registered_model.renamed",
        target=model,
        changes={"name": [old_name, new_name]},
    )
    return model


def _label_change(
    instance: RegisteredModel | ModelVersion, key: str, value: str | None
) -> dict[str, Any] | None:
    """Set (value) or remove (None) one key → value tag; the audit change, or None."""
    validate_label_key(key)
    labels = dict(instance.labels)
    before = labels.get(key)
    if before == value:
        return None
    if value is None:
        del labels[key]
    else:
        labels[key] = value
    try:
        validate_labels(labels)
    except ValidationError as exc:
        raise ValidationError({"value" if value is not None else "key": exc.messages}) from exc
    instance.labels = labels
    instance.save(update_fields=["labels", "updated_at"])
    return {f"labels.{key}": [before, value]}


@transaction.atomic
def registered_model_label_set(
    *, actor: AbstractBaseUser, model: RegisteredModel, key: str, value: str | None
) -> RegisteredModel:
    """Set a key → value tag on a model, or remove it (value None); a no-op writes nothing."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    require_change_model(actor, model)
    if model.archived:
        raise Conflict(f"Model '{model.name}' is archived and cannot be changed.")
    changes = _label_change(model, key, value)
    if changes:
        audit_record(
            actor=actor,
            action="registry.registered_model.tagged",
            target=model,
            changes=changes,
        )
    return model


@transaction.atomic
def model_version_label_set(
    *, actor: AbstractBaseUser, version: ModelVersion, key: str, value: str | None
) -> ModelVersion:
    """Set a key → value tag on a version, or remove it (value None). Tags are not governed
    content: the digest stays, in every stage."""
    version = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
    require_change_model(actor, version.model)
    changes = _label_change(version, key, value)
    if changes:
        audit_record(
            actor=actor, action="registry.model_version.tagged", target=version, changes=changes
        )
    return version


def governed_aliases() -> dict[str, str]:
    """Alias → the stage whose version it names; set only by approved promotions."""
    return dict(settings.GOVERNED_ALIASES)


def _require_ungoverned(alias: str, model: RegisteredModel) -> None:
    stage = governed_aliases().get(alias)
    if stage is not None:
        raise PermissionDenied(
            f"Alias '{alias}' is governed: it always names the version of '{model.name}' in "
            f"{stage}, and moves only when a promotion request to {stage} is approved. File "
            f"one (MLflow: transition_model_version_stage(name, version, '{stage.title()}'); "
            f"API: POST /api/v1/models/{model.name}/versions/<n>/promotions)."
        )


@transaction.atomic
def model_alias_set(
    *, actor: AbstractBaseUser, model: RegisteredModel, alias: str, version: ModelVersion
) -> ModelAlias:
    """Point an (ungoverned) alias of a model at one of its versions."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    require_change_model(actor, model)
    _require_ungoverned(alias, model)
    validate_alias(alias)
    if version.model_id != model.pk:
        raise ValidationError({"version": "The version belongs to another model."})
    if model.archived:
        raise Conflict(f"Model '{model.name}' is archived and cannot be changed.")
    current = ModelAlias.objects.filter(model=model, alias=alias).first()
    if current is not None and current.version_id == version.pk:
        return current
    before = current.version.version if current is not None else None
    if current is None:
        current = ModelAlias.objects.create(model=model, alias=alias, version=version)
    else:
        current.version = version
        current.save(update_fields=["version", "updated_at"])
    audit_record(
        actor=actor,
        action="registry.model_alias.set",
        target=model,
        changes={f"aliases.{alias}": [before, version.version]},
    )
    return current


@transaction.atomic
def model_alias_delete(*, actor: AbstractBaseUser, model: RegisteredModel, alias: str) -> None:
    """Remove an (ungoverned) alias; removing one that does not exist is a no-op."""
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    require_change_model(actor, model)
    _require_ungoverned(alias, model)
    current = ModelAlias.objects.filter(model=model, alias=alias).select_related("version").first()
    if current is None:
        return
    before = current.version.version
    # Aliases are pointers, not records: the audit log keeps what they named and when.
    current.delete()
    audit_record(
        actor=actor,
        action="registry.model_alias.deleted",
        target=model,
        changes={f"aliases.{alias}": [before, None]},
    )


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
