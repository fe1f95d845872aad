"""Registered models and their versions: registration, edits, renames, key → value tags,
aliases. Each service checks its permissions, validates, writes and records exactly one audit
event in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from audit.services import audit_record
from core.canonical import sha256_hex
from core.errors import Conflict
from registry import hooks
from registry.models import (
    DIGEST_WHEN_SET_FIELDS,
    DOCUMENTATION_FIELDS,
    GOVERNED_IMMUTABLE_FIELDS,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    Run,
    Stage,
    is_set,
)
from registry.permissions import ADD_MODEL, can_view_model, require_change_model, require_global
from registry.services._common import (
    _apply,
    _exists_conflict,
    _plain,
    _save,
    security_log,
)
from registry.validators import validate_alias, validate_label_key, validate_labels

MODEL_EDITABLE = ("description", "business_unit", "risk_tier", "tags", "owner")
VERSION_EDITABLE = GOVERNED_IMMUTABLE_FIELDS + DOCUMENTATION_FIELDS + ("description",)

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
    """Register the next version of a model (numbered under a lock on the model row); the
    `version_saved` hooks (registry.hooks) run in the same transaction."""
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
    # The model row was just read under lock and the creator is the caller (or unchanged):
    # their foreign keys need no existence check (a query each).
    version.full_clean(
        exclude=["content_digest", "model", "created_by"],
        validate_unique=False,
        validate_constraints=False,
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
    hooks.version_saved(actor=actor, version=version, created=True)
    return version


def check_version_changes(version: ModelVersion, data: Mapping[str, Any]) -> None:
    """Refuse (409) changing a governed field that is already set; used by every door."""
    for field in GOVERNED_IMMUTABLE_FIELDS:
        if field in data and is_set(getattr(version, field)):
            if getattr(version, field) != data[field]:
                raise Conflict(
                    f"'{field}' is immutable once set; register a new version instead.",
                    code="immutable",
                    field=field,
                )


def _refuse_frozen(version: ModelVersion) -> None:
    """A production version's content is what was approved: changing it is refused (409)."""
    if version.stage == Stage.PRODUCTION:
        raise Conflict(
            f"{version} is in production and its content is what was approved; it cannot be "
            "changed. Register a new version (or withdraw this one) instead.",
            code="frozen",
        )


@transaction.atomic
def model_version_update(
    *, actor: AbstractBaseUser, version: ModelVersion, data: Mapping[str, Any]
) -> ModelVersion:
    """Edit documentation fields (and set governed fields still empty); recomputes the digest.
    The content of a version in production is frozen: only its notes may change.
    A change runs the `version_saved` hooks (registry.hooks) in the same transaction."""
    version = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
    require_change_model(actor, version.model)
    check_version_changes(version, data)
    changes = _apply(version, data, VERSION_EDITABLE)
    if not changes:
        return version
    # The model row was just read under lock and the creator is the caller (or unchanged):
    # their foreign keys need no existence check (a query each).
    version.full_clean(
        exclude=["content_digest", "model", "created_by"],
        validate_unique=False,
        validate_constraints=False,
    )
    digest = content_digest(version)
    if digest != version.content_digest:
        _refuse_frozen(version)
        changes["content_digest"] = [version.content_digest, digest]
    version.content_digest = digest
    version.save()
    audit_record(
        actor=actor, action="registry.model_version.updated", target=version, changes=changes
    )
    hooks.version_saved(actor=actor, version=version, created=False)
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
    hooks.model_renamed(actor=actor, model=model, old_name=old_name)
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
    governed = governed_aliases()
    stage = governed.get(alias)
    look_alike = next((g for g in governed if g.casefold() == alias.casefold()), None)
    if stage is None and look_alike is not None:
        # `Champion` would pass for `champion` where a reader folds case (or just reads it)
        raise ValidationError(
            {
                "alias": f"Alias '{alias}' differs from the governed alias '{look_alike}' "
                "only in letter case; choose another name."
            }
        )
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
