"""Reads of the MLflow door: visible models and versions (registry's selectors), composed
into MLflow's messages with a fixed number of queries per page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform

from approvals import selectors as approvals_selectors
from approvals.models import PromotionRequest, RequestStatus
from mlflow_api import entities
from mlflow_api.search import Clause, SearchError, like_lookup
from registry import selectors
from registry.models import ModelVersion, RegisteredModel

STAGE_ORDER = list(entities.STAGE_TO_MLFLOW)
MODEL_ATTRIBUTES = {"name"}
VERSION_ATTRIBUTES = {"name", "run_id", "source_path", "version_number", "current_stage"}
MODEL_ORDER = {
    "name": "name",
    "timestamp": "created_at",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
}
VERSION_ORDER = {
    "name": "model__name",
    "version_number": "version",
    "timestamp": "created_at",
    "creation_timestamp": "created_at",
    "last_updated_timestamp": "updated_at",
}
_VERSION_FIELDS = {
    "name": "model__name",
    "run_id": "source_run_id",
    "source_path": "artifact_uri",
    "version_number": "version",
}


def visible_model(user: Any, name: str) -> RegisteredModel:
    model = selectors.visible_model(user, name)
    if model is None:
        raise RegisteredModel.DoesNotExist(f"Registered Model with name={name} not found")
    return model


def visible_version(user: Any, name: str, number: int) -> ModelVersion:
    version = selectors.visible_version(user, name, number)
    if version is None:
        raise ModelVersion.DoesNotExist(f"Model Version (name={name}, version={number}) not found")
    return version


# --- composing messages ----------------------------------------------------------------------


def latest_per_stage(
    models: Iterable[RegisteredModel], stages: Iterable[str] | None = None
) -> dict[int, list[ModelVersion]]:
    """Model id → its latest version in each stage (in stage order), with one query."""
    ids = [m.pk for m in models]
    if not ids:
        return {}
    top = (
        ModelVersion.objects.filter(model=OuterRef("model"), stage=OuterRef("stage"))
        .order_by("-version")
        .values("version")[:1]
    )
    rows = (
        ModelVersion.objects.filter(model_id__in=ids)
        .annotate(top=Subquery(top))
        .filter(version=F("top"))
        .select_related("model", "created_by")
    )
    if stages is not None:
        rows = rows.filter(stage__in=list(stages))
    found: dict[int, list[ModelVersion]] = {}
    for version in sorted(rows, key=lambda v: STAGE_ORDER.index(v.stage)):
        found.setdefault(version.model_id, []).append(version)
    return found


def _alias_maps(models: Any) -> tuple[dict[int, list[str]], dict[int, list[tuple[str, int]]]]:
    by_version: dict[int, list[str]] = {}
    by_model: dict[int, list[tuple[str, int]]] = {}
    for model_id, version_id, number, alias in selectors.alias_rows(models):
        by_version.setdefault(version_id, []).append(alias)
        by_model.setdefault(model_id, []).append((alias, number))
    return by_version, by_model


def registered_models(models: list[RegisteredModel]) -> list[dict[str, Any]]:
    """MLflow RegisteredModel messages for a page of models (three queries)."""
    latest = latest_per_stage(models)
    by_version, by_model = _alias_maps([m.pk for m in models])
    return [
        entities.registered_model(
            m,
            latest_versions=latest.get(m.pk, []),
            version_aliases=by_version,
            aliases=by_model.get(m.pk, []),
        )
        for m in models
    ]


def model_versions(versions: list[ModelVersion]) -> list[dict[str, Any]]:
    """MLflow ModelVersion messages, with aliases and where pending promotions stand."""
    if not versions:
        return []
    stored = selectors.stored_aliases([v.pk for v in versions])
    pending = pending_promotions([v.pk for v in versions])
    return [
        entities.model_version(
            v,
            aliases=stored.get(v.pk, []) + selectors.governed_aliases_of(v),
            status_message=promotion_status(pending[v.pk]) if v.pk in pending else "",
        )
        for v in versions
    ]


def pending_promotions(version_ids: list[int]) -> dict[int, PromotionRequest]:
    requests = PromotionRequest.objects.filter(
        version_id__in=version_ids, status=RequestStatus.PENDING
    ).prefetch_related("decisions__decider")
    return {r.version_id: r for r in requests}


def promotion_status(request: PromotionRequest) -> str:
    """Where a promotion request stands, in one sentence for MLflow clients."""
    progress = approvals_selectors.progress(request)
    remaining = ", ".join(f"{n} {role}" for role, n in sorted(progress["remaining"].items()))
    target = entities.STAGE_TO_MLFLOW[request.to_stage]
    if request.status != RequestStatus.PENDING:
        return f"Promotion request #{request.pk} to {target} is {request.status}."
    return (
        f"Promotion request #{request.pk} to {target} is pending approval in modelgov"
        + (f" (awaiting {remaining})" if remaining else "")
        + "; the stage changes when it is approved."
    )


# --- search ---------------------------------------------------------------------------------


def _text_q(field: str, clause: Clause) -> Q:
    value, comparator = clause.value, clause.comparator
    if comparator in ("IN", "NOT IN"):
        q = Q(**{f"{field}__in": list(value)})
        return ~q if comparator == "NOT IN" else q
    if not isinstance(value, str):
        raise SearchError(f"Compare '{clause.key}' with a quoted string.")
    if comparator == "=":
        return Q(**{field: value})
    if comparator == "!=":
        return ~Q(**{field: value})
    if comparator in ("LIKE", "ILIKE"):
        lookup, pattern = like_lookup(value, insensitive=comparator == "ILIKE")
        return Q(**{f"{field}__{lookup}": pattern})
    raise SearchError(f"'{clause.key}' takes =, !=, LIKE, ILIKE or IN.")


def _apply(queryset: QuerySet, clauses: list[Clause], fields: dict[str, str]) -> QuerySet:
    for index, clause in enumerate(clauses):
        if clause.kind == "tag":
            alias = f"_tag{index}"
            # As plain text: compared as JSON, SQLite would parse the value as a document.
            text = ExpressionWrapper(KeyTextTransform(clause.key, "labels"), TextField())
            queryset = queryset.alias(**{alias: text})
            q = _text_q(alias, clause)
            if clause.comparator in ("!=", "NOT IN"):
                # A missing tag differs from any value (MLflow 3 clients filter prompts out
                # with tags.`mlflow.prompt.is_prompt` != 'true').
                q = Q(**{f"{alias}__isnull": True}) | q
            queryset = queryset.filter(q)
        elif clause.key == "version_number":
            queryset = queryset.filter(_number_q(clause))
        elif clause.key == "current_stage":
            stage = entities.MLFLOW_TO_STAGE.get(str(clause.value).lower())
            if stage is None or clause.comparator not in ("=", "!="):
                raise SearchError("current_stage compares with = or != to None, Staging, …")
            q = Q(stage=stage)
            queryset = queryset.filter(q if clause.comparator == "=" else ~q)
        else:
            queryset = queryset.filter(_text_q(fields[clause.key], clause))
    return queryset


def _number_q(clause: Clause) -> Q:
    value = clause.value
    if not isinstance(value, float) or not value.is_integer():
        raise SearchError("version_number compares with a whole number.")
    lookups = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
    if clause.comparator == "!=":
        return ~Q(version=int(value))
    if clause.comparator not in lookups:
        raise SearchError("version_number takes =, !=, <, <=, > or >=.")
    return Q(**{f"version__{lookups[clause.comparator]}": int(value)})


def search_models(
    user: Any, *, clauses: list[Clause], ordering: list[str], offset: int, limit: int
) -> tuple[list[RegisteredModel], bool]:
    """A page of visible, unarchived models matching the clauses; and whether more follow."""
    queryset = selectors.models_visible_to(user).filter(archived=False)
    queryset = _apply(queryset, clauses, {"name": "name"})
    page = list(queryset.order_by(*ordering, "name")[offset : offset + limit + 1])
    return page[:limit], len(page) > limit


def search_versions(
    user: Any, *, clauses: list[Clause], ordering: list[str], offset: int, limit: int
) -> tuple[list[ModelVersion], bool]:
    """A page of versions of visible, unarchived models matching the clauses."""
    queryset = selectors.versions_visible_to(user).filter(model__archived=False)
    queryset = _apply(queryset, clauses, _VERSION_FIELDS)
    page = list(
        queryset.order_by(*ordering, "model__name", "-version")[offset : offset + limit + 1]
    )
    return page[:limit], len(page) > limit
