"""Approvals fixtures: a model with approvers appointed, versions with full evidence, and
shortcuts to file and decide through the real services."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import PermissionDenied

from approvals import services
from approvals.models import PromotionPolicy
from approvals.workflow import MODEL_CARD_GATE
from core.errors import Conflict
from registry import services as registry
from tests.conftest import SHA, _user

DOCUMENTATION = {
    "intended_use": "Loan decisions.",
    "limitations": "Retail only.",
    "training_data_summary": "Applications 2019-2026.",
    "evaluation_summary": "Out-of-time validation.",
}


@pytest.fixture(autouse=True)
def _policies_without_card_gate(request):
    """These tests exercise the approval rules themselves, under the default policies less
    the model-card gate (a rendered PDF per promotion would only slow them down); that gate,
    under the untouched defaults, is tested in tests/modelcards/test_gate.py. A test marked
    `card_gate` keeps the defaults."""
    if request.node.get_closest_marker("card_gate"):
        return
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (
        marker is not None and marker.kwargs.get("transaction", False)
    )
    if transactional:
        request.getfixturevalue("transactional_db")
    elif marker is not None or "db" in request.fixturenames:
        request.getfixturevalue("db")
    else:
        return  # no database in this test
    for policy in PromotionPolicy.objects.filter(to_stage="production"):
        if MODEL_CARD_GATE in policy.approval_gates:
            policy.approval_gates = [g for g in policy.approval_gates if g != MODEL_CARD_GATE]
            policy.save(update_fields=["approval_gates"])


@pytest.fixture
def validator_2(db):
    return _user("validator-2", "model-validator")


@pytest.fixture
def training_run(pipeline):
    job = registry.job_create(actor=pipeline, namespace="airflow", name=f"train-{uuid.uuid4()}")
    return registry.run_create(actor=pipeline, job=job, state="COMPLETE")


@pytest.fixture
def make_version(owner, credit_model, training_run):
    """make_version(**overrides) → a new version of the credit model with full evidence."""

    def make(actor=None, model=None, **overrides):
        data = {
            "artifact_uri": f"s3://models/credit/{uuid.uuid4()}",
            "artifact_sha256": SHA,
            "framework": "xgboost",
            "parameters": {"depth": 6},
            "metrics": {"auc": 0.87},
            "training_run": training_run,
            **DOCUMENTATION,
            **overrides,
        }
        return registry.model_version_create(
            actor=actor or owner, model=model or credit_model, **data
        )

    return make


@pytest.fixture
def version(make_version):
    """A version of the (high-risk) credit model, created and owned by `owner`."""
    return make_version()


@pytest.fixture
def appoint(superuser):
    """appoint(model, *users_or_groups): grant the per-model decide permission."""

    def grant(model, *grantees):
        for grantee in grantees:
            services.decide_permission_grant(actor=superuser, model=model, grantee=grantee)

    return grant


@pytest.fixture
def approvers(appoint, credit_model, validator, validator_2, risk_officer, risk_officer_2):
    """Two validators and two risk officers appointed on the credit model."""
    appoint(credit_model, validator, validator_2, risk_officer, risk_officer_2)
    return {
        "validator": validator,
        "validator_2": validator_2,
        "risk_officer": risk_officer,
        "risk_officer_2": risk_officer_2,
    }


@pytest.fixture
def appointed_only(db, appoint, credit_model):
    """Policies without the fallback: only appointed approvers decide (the strict setting
    the tests of appointments exercise; the default falls back to every member of the role
    when no one holding it was appointed). A panel validator and risk officer are appointed
    on the credit model, so requests about it can be filed."""
    PromotionPolicy.objects.update(fallback="none")
    appoint(credit_model, _user("panel-validator", "model-validator"))
    appoint(credit_model, _user("panel-risk", "risk-officer"))


@pytest.fixture
def file(owner, validator, risk_officer):
    """file(version, to_stage, actor=owner) → a pending request. A validator and a risk
    officer exist, so someone can decide it (by appointment, or by the policy's fallback)."""

    def make(version, to_stage, actor=None, justification="Validated on Q3 data."):
        return services.promotion_request_file(
            actor=actor or owner, version=version, to_stage=to_stage, justification=justification
        )

    return make


@pytest.fixture
def decide():
    """decide(request, user, outcome="approve") → the decision."""

    def make(request, user, outcome="approve", comment="Checked the evidence."):
        return services.promotion_decide(
            actor=user, request=request, outcome=outcome, comment=comment
        )

    return make


@pytest.fixture
def promote(file, decide, approvers):
    """promote(version, to_stage): file and have enough approvers approve."""
    order = ["validator", "validator_2", "risk_officer", "risk_officer_2"]

    def make(version, to_stage):
        request = file(version, to_stage)
        for key in order:
            request.refresh_from_db()
            if request.status != "pending":
                break
            try:
                decide(request, approvers[key])
            except (Conflict, PermissionDenied):  # a role not asked for, or its slots full
                continue
        request.refresh_from_db()
        assert request.status == "approved", request.status
        version.refresh_from_db()
        return request

    return make
