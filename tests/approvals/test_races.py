"""Races on PostgreSQL: threads released together by a barrier decide at the same moment.
Exactly one outcome, one transition and one stage-change event; the loser gets 409, no 500."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from approvals.models import StageTransition
from audit.models import AuditEvent
from registry.models import ModelVersion

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 3


def _race(calls):
    """Run (user, url, body) posts in threads released together; their status codes and
    messages, in call order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, user, url, body):
        try:
            client = APIClient()
            client.force_authenticate(user)
            barrier.wait(timeout=30)
            response = client.post(url, body, format="json")
            results[index] = (response.status_code, response.json())
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[index] = (None, repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _url(request, outcome):
    return f"/api/v1/promotions/{request.pk}/{outcome}"


def _stage_events(version) -> int:
    return AuditEvent.objects.filter(
        action="approvals.model_version.stage_changed", object_id=str(version.pk)
    ).count()


def test_two_final_approvals_at_once_apply_one_transition(make_version, file, approvers):
    for _ in range(ROUNDS):
        version = make_version()
        request = file(version, "staging")
        body = {"comment": "Checked."}
        results = _race(
            [
                (approvers["validator"], _url(request, "approve"), body),
                (approvers["validator_2"], _url(request, "approve"), body),
            ]
        )
        assert sorted(code for code, _ in results) == [200, 409], results
        request.refresh_from_db()
        version.refresh_from_db()
        assert (request.status, version.stage) == ("approved", "staging")
        assert request.decisions.count() == 1
        assert StageTransition.objects.filter(version=version).count() == 1
        assert _stage_events(version) == 1


def test_approve_and_reject_at_once_have_one_outcome(make_version, file, approvers):
    for _ in range(ROUNDS):
        version = make_version()
        request = file(version, "staging")
        results = _race(
            [
                (approvers["validator"], _url(request, "approve"), {"comment": "Fine."}),
                (approvers["validator_2"], _url(request, "reject"), {"comment": "Not fine."}),
            ]
        )
        assert sorted(code for code, _ in results) == [200, 409], results
        request.refresh_from_db()
        version.refresh_from_db()
        assert request.decisions.count() == 1
        if request.status == "approved":
            assert version.stage == "staging"
            assert _stage_events(version) == 1
        else:
            assert request.status == "rejected"
            assert version.stage == "development"
            assert _stage_events(version) == 0


def test_two_versions_racing_to_production_one_wins(make_version, file, decide, promote, approvers):
    for _ in range(ROUNDS):
        first, second = make_version(), make_version()
        requests = []
        for version in (first, second):
            promote(version, "staging")
            request = file(version, "production")
            decide(request, approvers["validator"])
            decide(request, approvers["validator_2"])
            requests.append(request)
        results = _race(
            [
                (approvers["risk_officer"], _url(requests[0], "approve"), {"comment": "Go."}),
                (approvers["risk_officer_2"], _url(requests[1], "approve"), {"comment": "Go."}),
            ]
        )
        codes = [code for code, _ in results]
        assert sorted(codes) == [200, 409], results
        loser = results[codes.index(409)][1]["errors"][0]["message"]
        assert "reached production after this request was filed" in loser
        production = ModelVersion.objects.filter(model=first.model, stage="production")
        assert production.count() == 1
        winner = production.get()
        assert _stage_events(winner) == 2  # staging, then production
        # The next round races against this production version, which both requests replace.
