"""MLflow's Model Registry REST API (2.0): thin handlers that parse MLflow's parameters, call
the same registry and approvals services as the native API, and answer MLflow's messages.

Every write here is audited with channel `mlflow`; a stage transition files a promotion
request instead of moving the stage; governed aliases are refused by the registry service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services as approvals
from approvals.models import PromotionRequest, RequestStatus
from approvals.permissions import may_file
from core import context
from core.api import StrictJSONParser
from mlflow_api import entities, errors, selectors
from mlflow_api.errors import invalid
from mlflow_api.search import (
    SearchError,
    decode_page_token,
    encode_page_token,
    parse_filter,
    parse_order_by,
)
from registry import services
from registry.authentication import BearerTokenAuthentication
from registry.models import Run
from registry.permissions import ADD_MODEL, require_change_model, require_global
from registry.selectors import version_by_alias

MODELS_PAGE_DEFAULT, MODELS_PAGE_MAX = 100, 1000
VERSIONS_PAGE_DEFAULT, VERSIONS_PAGE_MAX = 10_000, 10_000
MAX_TEXT = 20_000


def _no_nul(name: str, value: str) -> None:
    """Text holding NUL is refused, as the native API refuses it (PostgreSQL's text cannot
    hold it, and no name, tag or description needs it)."""
    if "\x00" in value:
        raise invalid(f"Parameter '{name}' may not hold a NUL character (\\u0000).")


class Params:
    """MLflow request parameters: the JSON body, or the query string of a GET."""

    def __init__(self, request: Any):
        if request.method == "GET":
            self.data: Mapping[str, Any] = request.query_params
            self.lists = request.query_params.getlist
        else:
            data = request.data if request.data is not None else {}
            if not isinstance(data, Mapping):
                raise invalid("The request body must be a JSON object.")
            self.data = data
            self.lists = None

    def text(self, name: str, *, required: bool = True, default: str = "") -> str:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise invalid(f"Missing value for required parameter '{name}'.")
            return default
        if not isinstance(value, str):
            raise invalid(f"Parameter '{name}' must be a string.")
        if len(value) > MAX_TEXT:
            raise invalid(f"Parameter '{name}' is longer than {MAX_TEXT} characters.")
        _no_nul(name, value)
        return value

    def optional(self, name: str) -> str | None:
        return self.text(name, required=False) if self.data.get(name) is not None else None

    def version(self, name: str = "version") -> int:
        text = self.text(name)
        if not text.isdigit() or len(text) > 9 or int(text) < 1:
            raise invalid(f"Parameter '{name}' must be a version number, got '{text[:50]}'.")
        return int(text)

    def integer(self, name: str, default: int, maximum: int) -> int:
        value = self.data.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or number < 1 or number > maximum:
            raise invalid(f"Parameter '{name}' must be a whole number from 1 to {maximum}.")
        return number

    def strings(self, name: str) -> list[str] | None:
        if self.lists is not None:
            values = self.lists(name)
        else:
            values = self.data.get(name)
            if values is None:
                return None
            if not isinstance(values, list):
                raise invalid(f"Parameter '{name}' must be a list of strings.")
        if not all(isinstance(v, str) for v in values):
            raise invalid(f"Parameter '{name}' must be a list of strings.")
        for value in values:
            _no_nul(name, value)
        return list(values)

    def tags(self) -> dict[str, str]:
        tags = self.data.get("tags") or []
        if not isinstance(tags, list) or not all(
            isinstance(t, Mapping) and isinstance(t.get("key"), str) for t in tags
        ):
            raise invalid("Parameter 'tags' must be a list of {key, value} objects.")
        labels = {}
        for tag in tags:
            value = tag.get("value", "")
            if not isinstance(value, str):
                raise invalid(f"The value of tag '{tag['key'][:100]}' must be a string.")
            _no_nul("tags", tag["key"] + value)
            labels[tag["key"]] = value
        return labels


class MlflowView(APIView):
    """Bearer-token authenticated, MLflow error shape, audit channel `mlflow`."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]
    schema = None  # MLflow's own API, documented by MLflow; not part of the OpenAPI schema
    handlers: dict[str, Callable[[Any, Params], dict]] = {}

    def initial(self, request, *args, **kwargs):
        context.update(channel="mlflow")
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self):
        return errors.exception_handler

    def _handle(self, request, *args, **kwargs):
        try:
            body = self.handlers[request.method](request.user, Params(request))
        except SearchError as exc:
            raise invalid(str(exc)) from exc
        return Response(body)


def endpoint(**handlers: Callable[[Any, Params], dict]) -> Callable:
    """A view answering the given HTTP methods (get=…, post=…) with the given handlers."""
    attrs: dict[str, Any] = {"handlers": {m.upper(): h for m, h in handlers.items()}}
    attrs |= {method: MlflowView._handle for method in handlers}
    attrs["http_method_names"] = [*handlers, "options"]
    return type("MlflowEndpoint", (MlflowView,), attrs).as_view()


# --- registered models ------------------------------------------------------------------------


def _model_message(model) -> dict:
    return {"registered_model": selectors.registered_models([model])[0]}


# Who may act is asked before what they sent, as in the native API: a model the caller
# cannot see is RESOURCE_DOES_NOT_EXIST, one they may not change PERMISSION_DENIED, and only
# then is a missing or invalid parameter INVALID_PARAMETER_VALUE.
def _model_to_change(user, p: Params):
    model = selectors.visible_model(user, p.text("name"))
    require_change_model(user, model)
    return model


def _version_to_change(user, p: Params):
    version = selectors.visible_version(user, p.text("name"), p.version())
    require_change_model(user, version.model)
    return version


def _version_to_promote(user, p: Params):
    version = selectors.visible_version(user, p.text("name"), p.version())
    if not may_file(user, version):
        raise PermissionDenied(
            f"You may not request promotions of model '{version.model.name}': its owner, "
            "users granted change on it and validators may."
        )
    return version


def create_registered_model(user, p: Params) -> dict:
    require_global(user, ADD_MODEL)
    model = services.registered_model_create(
        actor=user,
        name=p.text("name"),
        description=p.text("description", required=False),
        labels=p.tags(),
    )
    return _model_message(model)


def get_registered_model(user, p: Params) -> dict:
    return _model_message(selectors.visible_model(user, p.text("name")))


def rename_registered_model(user, p: Params) -> dict:
    model = _model_to_change(user, p)
    model = services.registered_model_rename(actor=user, model=model, new_name=p.text("new_name"))
    return _model_message(model)


def update_registered_model(user, p: Params) -> dict:
    model = _model_to_change(user, p)
    description = p.optional("description")
    if description is not None:
        model = services.registered_model_update(
            actor=user, model=model, data={"description": description}
        )
    return _model_message(model)


def delete_registered_model(user, p: Params) -> dict:
    """Archives: nothing is deleted, and an archived model leaves search results."""
    model = _model_to_change(user, p)
    services.registered_model_archive(actor=user, model=model)
    return {}


def search_registered_models(user, p: Params) -> dict:
    limit = p.integer("max_results", MODELS_PAGE_DEFAULT, MODELS_PAGE_MAX)
    offset = decode_page_token(p.optional("page_token"))
    models, more = selectors.search_models(
        user,
        clauses=parse_filter(p.optional("filter"), selectors.MODEL_ATTRIBUTES),
        ordering=parse_order_by(p.strings("order_by") or [], selectors.MODEL_ORDER),
        offset=offset,
        limit=limit,
    )
    body: dict[str, Any] = {"registered_models": selectors.registered_models(models)}
    if more:
        body["next_page_token"] = encode_page_token(offset + limit)
    return body


def get_latest_versions(user, p: Params) -> dict:
    model = selectors.visible_model(user, p.text("name"))
    stages = None
    names = p.strings("stages")
    if names:
        unknown = [s for s in names if s.lower() not in entities.MLFLOW_TO_STAGE]
        if unknown:
            raise invalid(f"Invalid stage '{unknown[0]}': use None, Staging, Production, Archived.")
        stages = [entities.MLFLOW_TO_STAGE[s.lower()] for s in names]
    latest = selectors.latest_per_stage([model], stages).get(model.pk, [])
    return {"model_versions": selectors.model_versions(latest)}


def set_registered_model_tag(user, p: Params) -> dict:
    model = _model_to_change(user, p)
    services.registered_model_label_set(
        actor=user, model=model, key=p.text("key"), value=p.text("value", required=False)
    )
    return {}


def delete_registered_model_tag(user, p: Params) -> dict:
    model = _model_to_change(user, p)
    services.registered_model_label_set(actor=user, model=model, key=p.text("key"), value=None)
    return {}


def set_alias(user, p: Params) -> dict:
    model = _model_to_change(user, p)
    version = selectors.visible_version(user, model.name, p.version())
    services.model_alias_set(actor=user, model=model, alias=p.text("alias"), version=version)
    return {}


def delete_alias(user, p: Params) -> dict:
    model = _model_to_change(user, p)
    services.model_alias_delete(actor=user, model=model, alias=p.text("alias"))
    return {}


def get_version_by_alias(user, p: Params) -> dict:
    model = selectors.visible_model(user, p.text("name"))
    alias = p.text("alias")
    version = version_by_alias(model, alias)
    if version is None:
        raise errors.not_found(f"Registered model alias {alias} not found.")
    return {"model_version": selectors.model_versions([version])[0]}


# --- model versions ---------------------------------------------------------------------------


def _version_message(version) -> dict:
    return {"model_version": selectors.model_versions([version])[0]}


def _training_run(run_id: str) -> Run | None:
    """The modelgov run with the tracking server's run id, if lineage recorded it."""
    try:
        key = uuid.UUID(run_id)
    except ValueError:
        return None
    return Run.objects.filter(run_id=key).first()


def create_model_version(user, p: Params) -> dict:
    model = _model_to_change(user, p)
    run_id = p.text("run_id", required=False)
    version = services.model_version_create(
        actor=user,
        model=model,
        artifact_uri=p.text("source"),
        training_run=_training_run(run_id) if run_id else None,
        description=p.text("description", required=False),
        labels=p.tags(),
        source_run_id=run_id,
        source_model_id=p.text("model_id", required=False),
    )
    return _version_message(version)


def get_model_version(user, p: Params) -> dict:
    return _version_message(selectors.visible_version(user, p.text("name"), p.version()))


def update_model_version(user, p: Params) -> dict:
    version = _version_to_change(user, p)
    description = p.optional("description")
    if description is not None:
        version = services.model_version_update(
            actor=user, version=version, data={"description": description}
        )
    return _version_message(version)


def get_download_uri(user, p: Params) -> dict:
    version = selectors.visible_version(user, p.text("name"), p.version())
    return {"artifact_uri": version.artifact_uri}


def search_model_versions(user, p: Params) -> dict:
    limit = p.integer("max_results", VERSIONS_PAGE_DEFAULT, VERSIONS_PAGE_MAX)
    offset = decode_page_token(p.optional("page_token"))
    versions, more = selectors.search_versions(
        user,
        clauses=parse_filter(p.optional("filter"), selectors.VERSION_ATTRIBUTES),
        ordering=parse_order_by(p.strings("order_by") or [], selectors.VERSION_ORDER),
        offset=offset,
        limit=limit,
    )
    body: dict[str, Any] = {"model_versions": selectors.model_versions(versions)}
    if more:
        body["next_page_token"] = encode_page_token(offset + limit)
    return body


def set_model_version_tag(user, p: Params) -> dict:
    version = _version_to_change(user, p)
    services.model_version_label_set(
        actor=user, version=version, key=p.text("key"), value=p.text("value", required=False)
    )
    return {}


def delete_model_version_tag(user, p: Params) -> dict:
    version = _version_to_change(user, p)
    services.model_version_label_set(actor=user, version=version, key=p.text("key"), value=None)
    return {}


def _request_promotion(user, version, to_stage: str) -> PromotionRequest:
    """File a promotion request (or answer the pending one for the same target)."""
    pending = PromotionRequest.objects.filter(version=version, status=RequestStatus.PENDING).first()
    # Only to those who may file it (the others are refused by the service below: 403).
    if pending is not None and pending.to_stage == to_stage and may_file(user, version):
        return pending
    return approvals.promotion_request_file(
        actor=user,
        version=version,
        to_stage=to_stage,
        justification=(
            f"Filed from an MLflow client: transition to {entities.STAGE_TO_MLFLOW[to_stage]}."
        ),
    )


def transition_stage(user, p: Params) -> dict:
    """Files a promotion request; the stage changes only when it is approved."""
    version = _version_to_promote(user, p)
    name = p.text("stage")
    to_stage = entities.MLFLOW_TO_STAGE.get(name.lower())
    if to_stage is None:
        raise invalid(f"Invalid stage '{name[:50]}': use None, Staging, Production, Archived.")
    with transaction.atomic():
        request = _request_promotion(user, version, to_stage)
    message = selectors.promotion_status(request)
    body = _version_message(version)
    return {**body, "message": message}


def delete_model_version(user, p: Params) -> dict:
    """Nothing is deleted: a version leaves service by an approved withdrawal (to Archived),
    so this files that request, as transition-stage to Archived would."""
    version = _version_to_promote(user, p)
    with transaction.atomic():
        _request_promotion(user, version, "archived")
    return {}


def unknown_endpoint(request, *args, **kwargs):
    """Paths under the MLflow prefix that modelgov does not serve (the client falls back)."""
    from django.http import JsonResponse

    return JsonResponse(
        {
            "error_code": errors.ENDPOINT_NOT_FOUND,
            "message": f"No MLflow endpoint {request.method} {request.path} in modelgov.",
        },
        status=404,
    )
