"""The data catalogue: datasets and their versions, features, jobs and runs. Each service
checks its permissions, validates, writes and records exactly one audit event in the same
transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from audit.services import audit_record
from core.errors import Conflict
from registry.models import (
    Dataset,
    DatasetVersion,
    Feature,
    Job,
    Run,
    RunState,
)
from registry.permissions import require_global
from registry.services._common import _apply, _exists_conflict, _plain, _save

TERMINAL_RUN_STATES = {RunState.COMPLETE, RunState.FAIL, RunState.ABORT}

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
    if schema is not None and (
        not isinstance(schema, list) or not all(isinstance(field, dict) for field in schema)
    ):
        raise ValidationError({"schema": "Must be a list of field objects (name, type, …)."})
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
