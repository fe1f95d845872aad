"""The permission matrix: every API route and every admin page × every persona × read/write.

The routes come from the URL conf: a route without a row in API (or an admin model without
a row in ADMIN) fails `test_every_route_has_a_row`, saying which row to add. Each row names
the path (with objects of the world below) and, per method, which status each persona gets:

- hidden → 404, exactly as if it did not exist; visible but not allowed → 403;
- "allowed" is whatever the service answers for a near-empty body (2xx, or 400/409 for the
  body or the state) — never 401, 403 or 404. Writes are rolled back after each call.
- Anonymous callers get 401 everywhere but where a row says otherwise.

Lists and searches are also checked for the hidden model: its name must not appear in what a
persona who cannot see it receives (LEAK_CHECKED lists them).

To add a route: add a row `"route-name": route("/path/{model}/", get=..., post=...)`, with
the statuses as {status: personas}; every persona must be placed once per method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import services as approvals
from approvals.services import decide_permission_grant
from audit.models import AuditEvent
from lineage import services as lineage
from modelcards import services as cards
from oversight import services as oversight
from oversight.models import PeriodicReview
from oversight.monitoring import Point
from registry import services as registry
from tests.conftest import SHA
from webhooks import services as webhooks

PERSONAS = (
    "superuser",
    "owner",
    "owns-nothing",
    "pipeline",
    "validator",
    "risk-officer",
    "auditor",
    "no-role",
)
ALL = frozenset(PERSONAS)
SUPER = frozenset({"superuser"})
# Who sees the model under test (owned by `owner`; validators, risk officers and auditors
# hold the global view permission) — everyone else gets 404 on it.
SEES_MODEL = frozenset({"superuser", "owner", "validator", "risk-officer", "auditor"})
HIDDEN_FROM = ALL - SEES_MODEL
CHANGES_MODEL = frozenset({"superuser", "owner"})
# Catalogue writers (data scientists and pipelines) and readers (every role).
WRITERS = frozenset({"superuser", "owner", "owns-nothing", "pipeline"})
READERS = ALL - {"no-role"}
AUDITORS = frozenset({"superuser", "auditor"})
CARD_READERS = frozenset({"superuser", "owner", "validator", "risk-officer", "auditor"})
# Oversight: model validators independent of the version's author (the owner created it);
# who closes a high finding (changers and approver roles, not the author) or resolves an alert.
VALIDATES = frozenset({"superuser", "validator"})
CLOSES_HIGH_FINDING = frozenset({"superuser", "validator", "risk-officer"})
RESOLVES = frozenset({"superuser", "owner", "validator", "risk-officer"})
MLFLOW = "/api/2.0/mlflow"
MLFLOW_BODY = {
    "name": "credit-scoring",
    "version": "1",
    "key": "team",
    "value": "retail",
    "alias": "challenger",
    "description": "PD model.",
}


@dataclass
class Route:
    path: str
    methods: dict[str, dict[int, frozenset[str]]] = field(default_factory=dict)
    anonymous: int = 401
    body: object = field(default_factory=dict)  # what writes send


def route(
    path: str, anonymous: int = 401, body: object = None, **methods: dict[int, frozenset[str]]
) -> Route:
    return Route(path, methods, anonymous, {} if body is None else body)


def only(ok: int, who: frozenset[str], hidden: frozenset[str] = frozenset(), refused=403):
    """`ok` for `who`, 404 for `hidden`, `refused` for everyone else."""
    return {ok: who, 404: hidden, refused: ALL - who - hidden}


# --- the matrix: one row per route name ---------------------------------------------------------

API: dict[str, Route] = {
    "health": route("/api/v1/health", anonymous=200, get={200: ALL}),
    "schema": route("/api/v1/schema/", get={200: ALL}),
    "docs": route("/api/v1/docs/", get={200: ALL}),
    # registry
    "registeredmodel-list": route(
        "/api/v1/models/",
        get={200: ALL},
        post={400: WRITERS, 403: ALL - WRITERS},
    ),
    "registeredmodel-detail": route(
        "/api/v1/models/{model}/",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        patch=only(200, CHANGES_MODEL, HIDDEN_FROM),
        delete=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "registeredmodel-grants": route(
        "/api/v1/models/{model}/grants/",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        post=only(400, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "registeredmodel-revoke": route(
        "/api/v1/models/{model}/grants/revoke/", post=only(400, CHANGES_MODEL, HIDDEN_FROM)
    ),
    "modelversion-list": route(
        "/api/v1/models/{model}/versions/",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        post=only(201, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "modelversion-detail": route(
        "/api/v1/models/{model}/versions/1/",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        patch=only(200, CHANGES_MODEL, HIDDEN_FROM),
        delete={405: SEES_MODEL, 404: HIDDEN_FROM},
    ),
    "dataset-list": route(
        "/api/v1/datasets/",
        get={200: READERS, 403: ALL - READERS},
        post={400: WRITERS, 403: ALL - WRITERS},
    ),
    "dataset-detail": route(
        "/api/v1/datasets/{dataset}/",
        get={200: READERS, 403: ALL - READERS},
        patch={200: WRITERS, 403: ALL - WRITERS},
        delete={200: WRITERS, 403: ALL - WRITERS},
    ),
    "datasetversion-list": route(
        "/api/v1/datasets/{dataset}/versions/",
        get={200: READERS, 403: ALL - READERS},
        post={400: WRITERS, 403: ALL - WRITERS},
    ),
    "datasetversion-detail": route(
        "/api/v1/datasets/{dataset}/versions/{dataset_version}/",
        get={200: READERS, 403: ALL - READERS},
    ),
    "feature-list": route(
        "/api/v1/features/",
        get={200: READERS, 403: ALL - READERS},
        post={400: WRITERS, 403: ALL - WRITERS},
    ),
    "feature-detail": route(
        "/api/v1/features/{feature}/",
        get={200: READERS, 403: ALL - READERS},
        patch={200: WRITERS, 403: ALL - WRITERS},
        delete={200: WRITERS, 403: ALL - WRITERS},
    ),
    "job-list": route(
        "/api/v1/jobs/",
        get={200: READERS, 403: ALL - READERS},
        post={400: WRITERS, 403: ALL - WRITERS},
    ),
    "job-detail": route(
        "/api/v1/jobs/{job}/",
        get={200: READERS, 403: ALL - READERS},
        patch={200: WRITERS, 403: ALL - WRITERS},
        delete={200: WRITERS, 403: ALL - WRITERS},
    ),
    "run-list": route(
        "/api/v1/runs/",
        get={200: READERS, 403: ALL - READERS},
        post={400: WRITERS, 403: ALL - WRITERS},
    ),
    "run-detail": route(
        "/api/v1/runs/{run}/",
        get={200: READERS, 403: ALL - READERS},
        patch={200: WRITERS, 403: ALL - WRITERS},
    ),
    "model-stage-history": route(
        "/api/v1/models/{model}/stage-history",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
    ),
    "model-stages": route(
        "/api/v1/models/{model}/stages",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
    ),
    # approvals
    "promotion-file": route(
        "/api/v1/models/{model}/versions/1/promotions",
        body={"to_stage": "staging", "justification": "Validated."},
        post=only(409, CHANGES_MODEL | {"validator"}, HIDDEN_FROM),
    ),
    "promotion-list": route("/api/v1/promotions", get={200: ALL}),
    "promotion-detail": route(
        "/api/v1/promotions/{promotion}", get={200: SEES_MODEL, 404: HIDDEN_FROM}
    ),
    "promotion-approve": route(
        "/api/v1/promotions/{promotion}/approve",
        body={"comment": "Checked."},
        post=only(200, frozenset({"validator"}), HIDDEN_FROM),
    ),
    "promotion-reject": route(
        "/api/v1/promotions/{promotion}/reject",
        body={"comment": "Checked."},
        post=only(200, frozenset({"validator"}), HIDDEN_FROM),
    ),
    "promotion-cancel": route(
        "/api/v1/promotions/{promotion}/cancel",
        post=only(200, frozenset({"owner"}), HIDDEN_FROM),
    ),
    # model cards
    # a new card (202): the world's oversight records are newer than its card
    "modelcard-request": route(
        "/api/v1/models/{model}/versions/1/model-cards",
        post=only(202, CARD_READERS, HIDDEN_FROM),
    ),
    "modelcard-list": route("/api/v1/model-cards", get={200: ALL}),
    "modelcard-detail": route(
        "/api/v1/model-cards/{card}", get=only(200, CARD_READERS, HIDDEN_FROM)
    ),
    "modelcard-pdf": route(
        "/api/v1/model-cards/{card}/pdf", get=only(409, CARD_READERS, HIDDEN_FROM)
    ),
    # audit
    "auditevent-list": route("/api/v1/audit/events", get=only(200, AUDITORS)),
    "auditevent-detail": route("/api/v1/audit/events/{event}", get=only(200, AUDITORS)),
    "auditevent-export": route("/api/v1/audit/events/export", get=only(200, AUDITORS)),
    "audit-verify": route("/api/v1/audit/verify", get=only(200, AUDITORS)),
    # lineage
    "lineage": route("/api/v1/lineage", post={422: WRITERS, 403: ALL - WRITERS}),
    "lineage-batch": route(
        "/api/v1/lineage/batch", body=[], post={200: WRITERS, 403: ALL - WRITERS}
    ),
    "lineage-upstream": route("/api/v1/lineage/upstream", get={400: READERS, 403: ALL - READERS}),
    "lineage-downstream": route(
        "/api/v1/lineage/downstream", get={400: READERS, 403: ALL - READERS}
    ),
    "lineage-impact": route("/api/v1/lineage/impact", get={400: READERS, 403: ALL - READERS}),
    "lineage-events": route("/api/v1/events/lineage", get={200: READERS, 403: ALL - READERS}),
    # who may remap which event is the service's (tests/lineage/test_remap.py)
    "lineage-events-remap": route(
        "/api/v1/events/lineage/remap", post={400: READERS, 403: ALL - READERS}
    ),
    "api-root": route("/api/v1/", get={200: ALL}),
    # aliases
    "registeredmodel-aliases": route(
        "/api/v1/models/{model}/aliases/",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        post=only(400, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "registeredmodel-delete-alias": route(
        "/api/v1/models/{model}/aliases/challenger/",
        delete=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    # oversight: validators independent of the version's author record validations; findings
    # and alerts are closed by the model's changers and approvers in a role (a high finding
    # not by the version's author); reviews by appointed approvers, not the author.
    "version-validation-reports": route(
        "/api/v1/models/{model}/versions/1/validation-reports",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        post=only(400, VALIDATES, HIDDEN_FROM),
    ),
    "validation-report-detail": route(
        "/api/v1/validation-reports/{report}", get={200: SEES_MODEL, 404: HIDDEN_FROM}
    ),
    "validation-report-findings": route(
        "/api/v1/validation-reports/{report}/findings", post=only(400, VALIDATES, HIDDEN_FROM)
    ),
    "finding-list": route("/api/v1/findings", get={200: ALL}),
    "finding-detail": route("/api/v1/findings/{finding}", get={200: SEES_MODEL, 404: HIDDEN_FROM}),
    "finding-close": route(
        "/api/v1/findings/{finding}/close", post=only(400, CLOSES_HIGH_FINDING, HIDDEN_FROM)
    ),
    "version-monitoring": route(
        "/api/v1/models/{model}/versions/1/monitoring",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        post=only(400, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "monitoring-alert-list": route("/api/v1/monitoring-alerts", get={200: ALL}),
    "monitoring-alert-detail": route(
        "/api/v1/monitoring-alerts/{alert}", get={200: SEES_MODEL, 404: HIDDEN_FROM}
    ),
    "monitoring-alert-resolve": route(
        "/api/v1/monitoring-alerts/{alert}/resolve", post=only(400, RESOLVES, HIDDEN_FROM)
    ),
    "periodic-review-list": route("/api/v1/periodic-reviews", get={200: ALL}),
    "periodic-review-detail": route(
        "/api/v1/periodic-reviews/{review}", get={200: SEES_MODEL, 404: HIDDEN_FROM}
    ),
    "periodic-review-complete": route(
        "/api/v1/periodic-reviews/{review}/complete",
        post=only(400, frozenset({"validator"}), HIDDEN_FROM),
    ),
    # webhooks: administrators only
    "webhook-list": route("/api/v1/webhooks", get=only(200, SUPER), post=only(400, SUPER)),
    "webhook-detail": route(
        "/api/v1/webhooks/{webhook}", get=only(200, SUPER), patch=only(200, SUPER)
    ),
    "webhook-send-test": route("/api/v1/webhooks/{webhook}/test", post=only(202, SUPER)),
    "webhook-deliveries": route("/api/v1/webhooks/{webhook}/deliveries", get=only(200, SUPER)),
    # The MLflow door (/api/2.0/mlflow/): parameters in the query string of a GET, in the body
    # otherwise; MLflow's error shape, with the same statuses (hidden: 404
    # RESOURCE_DOES_NOT_EXIST, not allowed: 403 PERMISSION_DENIED, anonymous: 401). MLflow
    # clients send complete requests: each row sends one naming the world's model.
    "mlflow-model-create": route(
        f"{MLFLOW}/registered-models/create",
        body={"name": "fraud-detection"},
        post={200: WRITERS, 403: ALL - WRITERS},
    ),
    "mlflow-model-get": route(
        f"{MLFLOW}/registered-models/get?name={{model}}", get={200: SEES_MODEL, 404: HIDDEN_FROM}
    ),
    "mlflow-model-rename": route(
        f"{MLFLOW}/registered-models/rename",
        body={**MLFLOW_BODY, "new_name": "credit-scoring-2"},
        post=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "mlflow-model-update": route(
        f"{MLFLOW}/registered-models/update",
        body=MLFLOW_BODY,
        patch=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "mlflow-model-delete": route(
        f"{MLFLOW}/registered-models/delete",
        body=MLFLOW_BODY,
        delete=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "mlflow-model-search": route(f"{MLFLOW}/registered-models/search", get={200: ALL}),
    "mlflow-model-latest-versions": route(
        f"{MLFLOW}/registered-models/get-latest-versions?name={{model}}",
        body=MLFLOW_BODY,
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        post={200: SEES_MODEL, 404: HIDDEN_FROM},
    ),
    "mlflow-model-set-tag": route(
        f"{MLFLOW}/registered-models/set-tag",
        body=MLFLOW_BODY,
        post=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "mlflow-model-delete-tag": route(
        f"{MLFLOW}/registered-models/delete-tag",
        body=MLFLOW_BODY,
        delete=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "mlflow-model-alias": route(
        f"{MLFLOW}/registered-models/alias?name={{model}}&alias=challenger",
        body=MLFLOW_BODY,
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
        post=only(200, CHANGES_MODEL, HIDDEN_FROM),
        delete=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "mlflow-version-create": route(
        f"{MLFLOW}/model-versions/create",
        body={**MLFLOW_BODY, "source": "s3://models/credit/2"},
        post=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "mlflow-version-get": route(
        f"{MLFLOW}/model-versions/get?name={{model}}&version=1",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
    ),
    "mlflow-version-update": route(
        f"{MLFLOW}/model-versions/update",
        body=MLFLOW_BODY,
        patch=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    # Deleting files a withdrawal (to Archived); the version's pending request conflicts.
    "mlflow-version-delete": route(
        f"{MLFLOW}/model-versions/delete",
        body=MLFLOW_BODY,
        delete=only(409, CHANGES_MODEL | {"validator"}, HIDDEN_FROM),
    ),
    "mlflow-version-search": route(f"{MLFLOW}/model-versions/search", get={200: ALL}),
    "mlflow-version-download-uri": route(
        f"{MLFLOW}/model-versions/get-download-uri?name={{model}}&version=1",
        get={200: SEES_MODEL, 404: HIDDEN_FROM},
    ),
    # A transition files a promotion request (who may file: as promotion-file); to Staging,
    # the pending request for it is answered.
    "mlflow-version-transition-stage": route(
        f"{MLFLOW}/model-versions/transition-stage",
        body={**MLFLOW_BODY, "stage": "Staging"},
        post=only(200, CHANGES_MODEL | {"validator"}, HIDDEN_FROM),
    ),
    "mlflow-version-set-tag": route(
        f"{MLFLOW}/model-versions/set-tag",
        body=MLFLOW_BODY,
        post=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    "mlflow-version-delete-tag": route(
        f"{MLFLOW}/model-versions/delete-tag",
        body=MLFLOW_BODY,
        delete=only(200, CHANGES_MODEL, HIDDEN_FROM),
    ),
    # Paths MLflow has and modelgov does not serve: ENDPOINT_NOT_FOUND, to anyone.
    "mlflow-unknown-endpoint": route(
        f"{MLFLOW}/experiments/list", anonymous=404, get={404: ALL}, post={404: ALL}
    ),
}

# Admin: one row per registered model admin ("app_label.model_name"), per page the statuses;
# pages are the changelist, the add page and (with the world's first object) the change and
# history pages; "add-post" and "change-post" send an empty form (rolled back). The admin
# answers "does not exist" — also for an object hidden from the user — with a redirect (302).
DECIDERS = frozenset({"superuser", "validator", "risk-officer"})
RULE_EDITORS = frozenset({"superuser", "risk-officer"})


def everyone(status: int) -> dict[int, frozenset[str]]:
    return {status: ALL}


def split(status: int, who: frozenset[str], others: int = 403) -> dict[int, frozenset[str]]:
    return {status: who, others: ALL - who}


def history_in_audit_log(rule: dict[int, frozenset[str]]) -> dict[int, frozenset[str]]:
    """The History page of an object whose history is its audit events: auditors are sent
    to them (a redirect; where to, tests/audit/test_coverage.py checks), the others who may
    see the object are told where it is, as `rule` says."""
    out = dict(rule)
    out[200] = rule[200] - AUDITORS
    out[302] = rule.get(302, frozenset()) | (rule[200] & AUDITORS)
    return out


READ_ONLY_ADD = {"add": everyone(403), "add-post": everyone(403)}
CATALOGUE = {
    "changelist": split(200, READERS),
    "add": split(200, WRITERS),
    "add-post": split(200, WRITERS),
    "change": split(200, READERS),
    "history": history_in_audit_log(split(200, READERS)),
}
SUPERUSER_ONLY = {
    page: split(200, SUPER)
    for page in ("changelist", "add", "add-post", "change", "change-post", "history")
}
MODEL_PAGES = {
    "changelist": everyone(200),  # filtered: see ADMIN_LEAK_CHECKED
    "add": split(200, WRITERS),
    "add-post": split(200, WRITERS),
    "change": {200: SEES_MODEL, 302: HIDDEN_FROM},
    # refused before the object is looked up to whoever may change no model at all: the
    # same 403 for a hidden model as for a missing one (those who may change some other
    # model get the admin's "does not exist" redirect for a hidden one)
    "change-post": {200: CHANGES_MODEL, 403: ALL - CHANGES_MODEL},
    "history": history_in_audit_log({200: SEES_MODEL, 302: HIDDEN_FROM}),
}

ADMIN: dict[str, dict[str, dict[int, frozenset[str]]]] = {
    "auth.user": SUPERUSER_ONLY,
    "auth.group": SUPERUSER_ONLY,
    "audit.auditevent": {
        "changelist": split(200, AUDITORS),
        "change": split(200, AUDITORS),
        "change-post": everyone(403),
        "history": split(200, AUDITORS),
        **READ_ONLY_ADD,
    },
    "registry.registeredmodel": MODEL_PAGES,
    "registry.modelversion": {  # the empty form is saved: its governed fields are read-only
        **MODEL_PAGES,
        "change-post": {302: CHANGES_MODEL, 403: ALL - CHANGES_MODEL},
    },
    "registry.dataset": {**CATALOGUE, "change-post": split(200, WRITERS)},
    "registry.datasetversion": {**CATALOGUE, "change-post": everyone(403)},
    "registry.feature": {**CATALOGUE, "change-post": split(302, WRITERS)},  # saved
    "registry.job": {**CATALOGUE, "change-post": split(302, WRITERS)},  # saved
    "registry.run": {**CATALOGUE, **READ_ONLY_ADD, "change-post": everyone(403)},
    "registry.apitoken": {
        "changelist": everyone(200),  # each user sees their own tokens; superusers all
        "add": split(200, SUPER),
        "add-post": split(200, SUPER),
    },
    "lineage.edge": {"changelist": split(200, READERS), **READ_ONLY_ADD},
    "lineage.lineageevent": {"changelist": split(200, READERS), **READ_ONLY_ADD},
    "approvals.promotionpolicy": {
        "changelist": split(200, READERS),
        "change": split(200, READERS),
        "change-post": split(200, frozenset({"superuser", "risk-officer"})),
        "history": history_in_audit_log(split(200, READERS)),
        **READ_ONLY_ADD,
    },
    "approvals.promotionrequest": {
        "changelist": everyone(200),  # filtered: see ADMIN_LEAK_CHECKED
        "change": {200: SEES_MODEL, 404: HIDDEN_FROM},
        "change-post": {200: SEES_MODEL, 404: HIDDEN_FROM},  # read-only: the page again
        "history": history_in_audit_log({200: SEES_MODEL, 302: HIDDEN_FROM}),
        **READ_ONLY_ADD,
    },
    # The queue holds what the user may decide now: the world's request is the validator's
    # to decide; its change page is the review page, reached from the queue (a redirect).
    "approvals.approvalqueue": {
        "changelist": split(200, DECIDERS),
        "change": everyone(302),
        "change-post": everyone(302),
        "history": {200: frozenset({"validator"}), 302: ALL - {"validator"}},
        **READ_ONLY_ADD,
    },
    # Oversight: rows of models the user may not see do not exist for them (as the models'
    # pages); reports and monitored versions are never edited here; a finding, an alert or a
    # review is closed on its change page by those the API lets close it.
    "oversight.validationreport": {
        "changelist": split(200, READERS),  # filtered: see LEAK_CHECKED
        "add": split(200, VALIDATES),
        "add-post": split(200, VALIDATES),
        "change": {200: SEES_MODEL, 302: HIDDEN_FROM - {"no-role"}, 403: {"no-role"}},
        "change-post": everyone(403),
        "history": history_in_audit_log({200: SEES_MODEL, 302: HIDDEN_FROM}),
    },
    "oversight.finding": {
        "changelist": everyone(200),  # filtered: see LEAK_CHECKED
        "add": split(200, VALIDATES),
        "add-post": split(200, VALIDATES),
        "change": {200: SEES_MODEL, 302: HIDDEN_FROM},
        # The world's finding is high: not the version's author (the owner), not an auditor.
        "change-post": {200: CLOSES_HIGH_FINDING, 302: HIDDEN_FROM, 403: {"owner", "auditor"}},
        "history": history_in_audit_log({200: SEES_MODEL, 302: HIDDEN_FROM}),
    },
    "oversight.monitoredversion": {
        "changelist": everyone(200),  # filtered: see LEAK_CHECKED
        "change": {200: SEES_MODEL, 302: HIDDEN_FROM},
        "change-post": everyone(403),
        "history": {200: SEES_MODEL, 302: HIDDEN_FROM},
        **READ_ONLY_ADD,
    },
    "oversight.monitoringalert": {
        "changelist": everyone(200),  # filtered: see LEAK_CHECKED
        "change": {200: SEES_MODEL, 302: HIDDEN_FROM},
        "change-post": {200: RESOLVES, 302: HIDDEN_FROM, 403: SEES_MODEL - RESOLVES},
        "history": history_in_audit_log({200: SEES_MODEL, 302: HIDDEN_FROM}),
        **READ_ONLY_ADD,
    },
    "oversight.periodicreview": {
        "changelist": everyone(200),  # filtered: see LEAK_CHECKED
        "change": {200: SEES_MODEL, 302: HIDDEN_FROM},
        "change-post": {200: {"validator"}, 302: HIDDEN_FROM, 403: SEES_MODEL - {"validator"}},
        "history": history_in_audit_log({200: SEES_MODEL, 302: HIDDEN_FROM}),
        **READ_ONLY_ADD,
    },
    "oversight.overduereview": {
        "changelist": everyone(200),  # filtered: see LEAK_CHECKED
        "change": {200: SEES_MODEL, 302: HIDDEN_FROM},
        "change-post": {200: {"validator"}, 302: HIDDEN_FROM, 403: SEES_MODEL - {"validator"}},
        "history": history_in_audit_log({200: SEES_MODEL, 302: HIDDEN_FROM}),
        **READ_ONLY_ADD,
    },
    # Rules are read by every role and edited by risk officers; a rule on a model is hidden
    # from those who may not see the model, as the model is.
    "oversight.thresholdrule": {
        "changelist": split(200, READERS),  # filtered: see LEAK_CHECKED
        "add": split(200, RULE_EDITORS),
        "add-post": split(200, RULE_EDITORS),
        "change": {200: SEES_MODEL, 302: HIDDEN_FROM - {"no-role"}, 403: {"no-role"}},
        "change-post": split(200, RULE_EDITORS),
        "history": history_in_audit_log({200: SEES_MODEL, 302: HIDDEN_FROM}),
    },
    "oversight.oversightpolicy": {
        "changelist": split(200, READERS),
        "change": split(200, READERS),
        "change-post": split(200, RULE_EDITORS),
        "history": history_in_audit_log(split(200, READERS)),
        **READ_ONLY_ADD,
    },
    "webhooks.webhook": {
        **SUPERUSER_ONLY,
        "history": history_in_audit_log(split(200, SUPER)),
    },
    "webhooks.webhookdelivery": {
        "changelist": split(200, SUPER),
        "change": split(200, SUPER),
        "change-post": everyone(403),
        "history": split(200, SUPER),
        **READ_ONLY_ADD,
    },
    "modelcards.modelcard": {
        "changelist": split(200, CARD_READERS - {"owner"}),
        "change": split(200, CARD_READERS),
        "change-post": everyone(403),
        "history": history_in_audit_log({200: CARD_READERS, 302: ALL - CARD_READERS}),
        **READ_ONLY_ADD,
    },
}

# Lists and searches that must not show the hidden model to those it is hidden from (and do
# show it to those who see it, so the check can fail).
LEAK_CHECKED = [
    "/api/v1/models/",
    "/api/v1/models/?name=credit",
    "/api/v1/models/?owner=owner-scientist",
    "/api/v1/promotions",
    "/api/v1/promotions?model=credit-scoring",
    "/admin/registry/registeredmodel/",
    "/admin/registry/registeredmodel/?q=credit",
    "/admin/registry/modelversion/",
    "/admin/registry/modelversion/?q=credit",
    "/admin/approvals/promotionrequest/",
    "/admin/approvals/promotionrequest/?q=credit",
    # lineage: the raw events (one names the model), the edges, the graph queries
    "/api/v1/events/lineage",
    "/api/v1/events/lineage?state=mapped",
    "/admin/lineage/edge/?q=model:",
    "/api/v1/lineage/downstream?type=dataset&namespace=s3://lake&name=loans",
    # oversight
    "/api/v1/models/credit-scoring/versions/1/monitoring",
    "/api/v1/findings",
    "/api/v1/findings?model=credit-scoring",
    "/api/v1/monitoring-alerts",
    "/api/v1/periodic-reviews",
    "/api/v1/periodic-reviews?overdue=true",
    "/admin/oversight/validationreport/",
    "/admin/oversight/validationreport/?q=credit",
    "/admin/oversight/finding/",
    "/admin/oversight/finding/?q=credit",
    "/admin/oversight/monitoredversion/",
    "/admin/oversight/monitoringalert/",
    "/admin/oversight/periodicreview/",
    "/admin/oversight/overduereview/",
    "/admin/oversight/thresholdrule/",
    "/admin/oversight/thresholdrule/?q=credit",
    # the MLflow door
    "/api/2.0/mlflow/registered-models/search",
    "/api/2.0/mlflow/registered-models/search?filter=name%3D%27credit-scoring%27",
    "/api/2.0/mlflow/model-versions/search",
]
HIDDEN_MARKERS = ("credit-scoring", "s3://models/credit/1")
# What those who see the model find on a page that does not print its name.
SHOWN_MARKER = {"/api/v1/models/credit-scoring/versions/1/monitoring": '"metric":"auc"'}


# --- the world ---------------------------------------------------------------------------------


@pytest.fixture
def world(
    owner,
    other_scientist,
    pipeline,
    validator,
    risk_officer,
    auditor,
    outsider,
    superuser,
    settings,
):
    model = registry.registered_model_create(
        actor=owner, name="credit-scoring", risk_tier="high", business_unit="Retail"
    )
    job = registry.job_create(actor=pipeline, namespace="airflow", name="train")
    run = registry.run_create(actor=pipeline, job=job, state="COMPLETE")
    registry.model_version_create(
        actor=owner,
        model=model,
        artifact_uri="s3://models/credit/1",
        artifact_sha256=SHA,
        metrics={"auc": 0.8},
        training_run=run,
        intended_use="Loan decisions.",
    )
    dataset = registry.dataset_create(actor=pipeline, namespace="s3://lake", name="loans")
    dataset_version = registry.dataset_version_create(actor=pipeline, dataset=dataset, version="1")
    feature = registry.feature_create(actor=pipeline, dataset=dataset, name="income")
    # The validator is appointed approver of this model; the risk officer is not.
    decide_permission_grant(actor=superuser, model=model, grantee=validator)
    promotion = approvals.promotion_request_file(
        actor=owner,
        version=model.versions.get(),
        to_stage="staging",
        justification="Validated.",
    )
    card, _ = cards.model_card_request(actor=auditor, version=model.versions.get())
    version = model.versions.get()
    registry.model_alias_set(actor=owner, model=model, alias="challenger", version=version)
    # Oversight: a validation report with a high finding (the validator is independent of the
    # version's author), a threshold rule breached by a monitoring point (its alert opened by
    # the evaluation the task runs), and an open periodic review. Reviews are opened by the
    # beat for production versions only; the world's version is in development, so its review
    # is written directly, as the oversight tests do.
    report = oversight.validation_report_create(
        actor=validator, version=version, scope="Back-test.", methods="Out-of-time sample."
    )
    finding = oversight.finding_record(
        actor=validator, report=report, title="Drift on income.", severity="high"
    )
    oversight.threshold_rule_create(
        actor=risk_officer, model=model, metric="auc", comparator="lt", threshold=0.75
    )
    now = timezone.now()
    batch = oversight.monitoring_points_record(
        actor=owner, version=version, points=[Point("auc", 0.5, now - timedelta(hours=1), now)]
    )
    (alert,) = oversight.monitoring_breaches_evaluate(
        version_id=version.pk, point_ids=batch.breaching
    )
    review = PeriodicReview.objects.create(version=version, due_at=now - timedelta(days=1))
    # A webhook subscribed to the model (administrators manage webhooks).
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1"]
    webhook, _ = webhooks.webhook_create(
        actor=superuser, name="credit-events", url="http://127.0.0.1:9/hooks", model=model
    )
    webhooks.webhook_test_send(actor=superuser, webhook=webhook)  # sent after commit: never
    # A lineage event naming the model (posted by its owner: the training run produced
    # version 1), mapped into edges as the mapping task would.
    posted = lineage.lineage_events_accept(
        actor=owner,
        payloads=[
            {
                "eventTime": "2026-11-01T10:00:00.000000Z",
                "eventType": "COMPLETE",
                "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": str(run.run_id), "facets": {}},
                "job": {"namespace": "airflow", "name": "train", "facets": {}},
                "inputs": [{"namespace": "s3://lake", "name": "loans", "facets": {}}],
                "outputs": [
                    {
                        "namespace": "s3://models",
                        "name": "credit",
                        "facets": {
                            "modelgov_model": {
                                "name": model.name,
                                "sha256": SHA,
                                "artifactUri": "s3://models/credit/1",
                            }
                        },
                    }
                ],
            }
        ],
    )
    assert not posted.refused, posted.refused
    lineage.lineage_events_map_all()
    assert model.versions.count() == 1  # the event named the existing version
    event = AuditEvent.objects.order_by("-id").values_list("pk", flat=True).first()
    users = {
        "superuser": superuser,
        "owner": owner,
        "owns-nothing": other_scientist,
        "pipeline": pipeline,
        "validator": validator,
        "risk-officer": risk_officer,
        "auditor": auditor,
        "no-role": outsider,
    }
    objects = {
        "model": model.name,
        "dataset": dataset.pk,
        "dataset_version": dataset_version.pk,
        "feature": feature.pk,
        "job": job.pk,
        "run": run.pk,
        "promotion": promotion.pk,
        "card": card.pk,
        "event": event,
        "report": report.pk,
        "finding": finding.pk,
        "alert": alert,
        "review": review.pk,
        "webhook": webhook.pk,
    }
    return users, objects


def _call(user, method: str, path: str, body: object = None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    with transaction.atomic():
        if method == "get":
            response = client.get(path)
        else:
            response = getattr(client, method)(path, body, format="json")
        transaction.set_rollback(True)
    return response


def _api_routes() -> dict[str, str]:
    """Route name → pattern, for every route of the URL conf outside the admin."""
    found: dict[str, str] = {}

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found[pattern.name or f"<unnamed {prefix}{pattern.pattern}>"] = prefix + str(
                    pattern.pattern
                )

    walk(get_resolver().url_patterns)
    return found


# --- the tests ---------------------------------------------------------------------------------


def test_every_route_has_a_row():
    missing = sorted(set(_api_routes()) - set(API))
    assert not missing, (
        "Routes without a row in the permission matrix (tests/test_permission_matrix.py, "
        f"API): {missing}. Add one per route: who may read and write it."
    )
    stale = sorted(set(API) - set(_api_routes()))
    assert not stale, f"Rows for routes that no longer exist: {stale}"


def test_every_row_places_every_persona_once():
    for name, row in API.items():
        for method, expected in row.methods.items():
            placed = [p for personas in expected.values() for p in personas]
            assert sorted(placed) == sorted(PERSONAS), (name, method, placed)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(API))
def test_each_persona_gets_what_the_matrix_says(name, world):
    users, objects = world
    row = API[name]
    path = row.path.format(**objects)
    for method, expected in row.methods.items():
        status_of = {p: status for status, personas in expected.items() for p in personas}
        actual = {
            persona: _call(users[persona], method, path, row.body).status_code
            for persona in PERSONAS
        }
        wrong = {p: (actual[p], status_of[p]) for p in PERSONAS if actual[p] != status_of[p]}
        assert not wrong, f"{method.upper()} {path}: persona → (got, matrix says) {wrong}"
        assert _call(None, method, path, row.body).status_code == row.anonymous, (method, path)


def _admin_pages(label: str, users) -> dict[str, str]:
    from django.apps import apps
    from django.urls import reverse

    model = apps.get_model(label)
    opts = model._meta
    base = f"admin:{opts.app_label}_{opts.model_name}"
    urls = {"changelist": reverse(f"{base}_changelist"), "add": reverse(f"{base}_add")}
    urls["add-post"] = urls["add"]
    obj = model._default_manager.order_by("pk").first()
    if obj is not None:
        urls["change"] = urls["change-post"] = reverse(f"{base}_change", args=[obj.pk])
        urls["history"] = reverse(f"{base}_history", args=[obj.pk])
    return urls


def test_every_admin_model_has_a_row():
    registered = {model._meta.label_lower for model in admin.site._registry}
    missing = sorted(registered - set(ADMIN))
    assert not missing, (
        "Admin models without a row in the permission matrix (tests/test_permission_matrix.py, "
        f"ADMIN): {missing}. Add one: who may see and use each page."
    )
    assert not sorted(set(ADMIN) - registered)


@pytest.mark.django_db
@pytest.mark.parametrize("label", sorted(ADMIN))
def test_each_persona_gets_what_the_admin_matrix_says(label, world):
    users, _ = world
    urls = _admin_pages(label, users)
    for page, expected in ADMIN[label].items():
        placed = sorted(p for personas in expected.values() for p in personas)
        assert placed == sorted(PERSONAS), (label, page, placed)
        if page not in urls:
            continue
        status_of = {p: status for status, personas in expected.items() for p in personas}
        actual = {}
        for persona in PERSONAS:
            client = Client()
            client.force_login(users[persona])
            with transaction.atomic():
                if page.endswith("-post"):
                    actual[persona] = client.post(urls[page], {}).status_code
                else:
                    actual[persona] = client.get(urls[page]).status_code
                transaction.set_rollback(True)
        wrong = {p: (actual[p], status_of[p]) for p in PERSONAS if actual[p] != status_of[p]}
        assert not wrong, f"{label} {page} {urls[page]}: persona → (got, matrix says) {wrong}"
    anonymous = Client().get(urls["changelist"])
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", LEAK_CHECKED)
def test_lists_and_searches_do_not_show_the_hidden_model(path, world):
    users, _ = world
    marker = SHOWN_MARKER.get(path, "credit-scoring")
    for persona in PERSONAS:
        client = APIClient()
        client.force_login(users[persona])  # the admin's session
        client.force_authenticate(users[persona])  # the API's (the MLflow door: tokens only)
        text = client.get(path).content.decode()
        shown = sorted({m for m in (*HIDDEN_MARKERS, marker) if m in text})
        if persona in HIDDEN_FROM:
            assert not shown, f"{path} shows {shown} to {persona}, who may not see the model"
        elif persona in SEES_MODEL:
            assert marker in text, f"{path} should list the model for {persona}"
