"""Oversight fixtures: the approvals fixtures (approvers appointed, versions with evidence,
promotions through the real services) plus a production version and threshold rules."""

from __future__ import annotations

import pytest

from oversight import services
from tests.approvals.conftest import (  # noqa: F401 - fixtures
    _policies_without_card_gate,
    appoint,
    approvers,
    decide,
    file,
    make_version,
    promote,
    training_run,
    validator_2,
    version,
)


@pytest.fixture
def production_version(version, promote):  # noqa: F811 - imported fixtures
    """A version of the (high-risk) credit model promoted to production by its approvers."""
    promote(version, "staging")
    promote(version, "production")
    version.refresh_from_db()
    assert version.stage == "production"
    return version


@pytest.fixture
def rule(risk_officer, credit_model):
    """rule(metric, comparator, threshold, **extra) → a rule on the credit model."""

    def make(metric="auc", comparator="lt", threshold=0.75, **extra):
        extra.setdefault("model", credit_model)
        return services.threshold_rule_create(
            actor=risk_officer, metric=metric, comparator=comparator, threshold=threshold, **extra
        )

    return make


def point(metric="auc", value=0.8, segment=None, start="2026-11-01T00:00:00Z", end=None):
    body = {
        "metric": metric,
        "value": value,
        "window_start": start,
        "window_end": end or "2026-11-02T00:00:00Z",
    }
    if segment is not None:
        body["segment"] = segment
    return body
