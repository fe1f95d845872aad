"""No back door to a stage: PostgreSQL triggers refuse stage changes the approval service
did not make, content changes of production versions, and edits of the stage history."""

import pytest
from django.db import IntegrityError, connection, transaction

from approvals.models import PromotionDecision, PromotionRequest, StageTransition
from registry.models import ModelVersion

pytestmark = pytest.mark.postgres


def test_direct_stage_update_is_refused_by_the_database(version):
    with pytest.raises(IntegrityError, match="approved promotion request"), transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(stage="production")
    version.refresh_from_db()
    assert version.stage == "development"


def test_a_new_version_cannot_start_beyond_development(version):
    clone = ModelVersion(
        model=version.model,
        version=99,
        stage="production",
        created_by=version.created_by,
        content_digest="0" * 64,
    )
    with pytest.raises(IntegrityError, match="starts in development"), transaction.atomic():
        clone.save()


def test_an_approved_move_does_not_open_other_moves(promote, version):
    promote(version, "staging")  # approved in this transaction: staging only
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(stage="development")


def test_production_content_cannot_change_in_the_database(promote, version):
    promote(version, "staging")
    promote(version, "production")
    with pytest.raises(IntegrityError, match="in production"), transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(content_digest="f" * 64)


def test_stage_history_is_append_only(promote, version):
    promote(version, "staging")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        StageTransition.objects.update(to_stage="production")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        StageTransition.objects.all().delete()


def test_decisions_are_append_only(promote, version):
    promote(version, "staging")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        PromotionDecision.objects.update(outcome="reject")


# --- as the application's own role -------------------------------------------------------------


def _request_row(request_id):
    return PromotionRequest.objects.values("status", "decided_txid").get(pk=request_id)


def test_the_app_role_cannot_switch_the_stage_trigger_off(app_role, version):
    with pytest.raises(IntegrityError, match="approved promotion request"), app_role() as cursor:
        cursor.execute("SET LOCAL modelgov.stage_change = 'on'")
        cursor.execute(
            "UPDATE registry_modelversion SET stage = 'staging' WHERE id = %s", [version.pk]
        )
    version.refresh_from_db()
    assert version.stage == "development"


def test_the_app_role_promotes_through_the_service(app_role, promote, version):
    """The guard stops back doors, not the front door: the service works as the app role."""
    with app_role():
        request = promote(version, "staging")
    version.refresh_from_db()
    assert version.stage == "staging"
    assert _request_row(request.pk)["decided_txid"] is not None


def test_an_approval_from_another_transaction_does_not_open_the_trigger(app_role, promote, version):
    request = promote(version, "staging")
    with transaction.atomic(), connection.cursor() as cursor:
        # As the tables' owner, triggers off: make the request look decided in an earlier
        # transaction and the version still in development.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE approvals_promotionrequest SET decided_txid = txid_current() - 1 WHERE id = %s",
            [request.pk],
        )
        cursor.execute(
            "UPDATE registry_modelversion SET stage = 'development' WHERE id = %s", [version.pk]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    move = "UPDATE registry_modelversion SET stage = 'staging' WHERE id = %s"
    with pytest.raises(IntegrityError, match="approved promotion request"), app_role() as cursor:
        cursor.execute(move, [version.pk])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE approvals_promotionrequest SET decided_txid = txid_current() WHERE id = %s",
            [request.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    with app_role() as cursor:  # the same request, decided in this transaction: let through
        cursor.execute(move, [version.pk])


def test_an_approval_opens_the_trigger_only_for_its_own_move(app_role, promote, version):
    promote(version, "staging")
    with pytest.raises(IntegrityError, match="approved promotion request"), app_role() as cursor:
        cursor.execute(
            "UPDATE registry_modelversion SET stage = 'production' WHERE id = %s", [version.pk]
        )


def test_the_app_role_cannot_approve_a_request_without_its_approvals(app_role, file, version):
    request = file(version, "staging")
    with pytest.raises(IntegrityError, match="cannot be approved"), app_role() as cursor:
        cursor.execute(
            "UPDATE approvals_promotionrequest SET status = 'approved' WHERE id = %s",
            [request.pk],
        )
    assert _request_row(request.pk)["status"] == "pending"


def test_the_requesters_own_approval_does_not_count(app_role, file, version, owner):
    request = file(version, "staging")
    with pytest.raises(IntegrityError, match="cannot be approved"), app_role() as cursor:
        PromotionDecision.objects.create(
            request=request,
            decider=owner,
            outcome="approve",
            role="model-validator",
            comment="Mine.",
            content_digest=version.content_digest,
        )
        cursor.execute(
            "UPDATE approvals_promotionrequest SET status = 'approved' WHERE id = %s",
            [request.pk],
        )


def test_a_rejection_needs_a_rejecting_decision(app_role, file, version):
    request = file(version, "staging")
    with pytest.raises(IntegrityError, match="no rejection"), app_role() as cursor:
        cursor.execute(
            "UPDATE approvals_promotionrequest SET status = 'rejected' WHERE id = %s",
            [request.pk],
        )


def test_a_closed_request_cannot_be_reopened(app_role, file, decide, approvers, version):
    request = file(version, "staging")
    decide(request, approvers["validator"], outcome="reject")
    with pytest.raises(IntegrityError, match="cannot become"), app_role() as cursor:
        cursor.execute(
            "UPDATE approvals_promotionrequest SET status = 'pending' WHERE id = %s",
            [request.pk],
        )
    assert _request_row(request.pk)["status"] == "rejected"


def test_a_request_is_filed_pending(app_role, file, version):
    request = file(version, "staging")
    fields = {
        f.attname: getattr(request, f.attname)
        for f in PromotionRequest._meta.concrete_fields
        if f.attname not in ("id", "status", "decided_txid")
    }
    with pytest.raises(IntegrityError, match="filed pending"), app_role():
        PromotionRequest.objects.create(**fields, status="approved")


def test_a_filed_request_stays_as_filed(app_role, file, version):
    request = file(version, "staging")
    with pytest.raises(IntegrityError, match="on record"), app_role() as cursor:
        cursor.execute(
            "UPDATE approvals_promotionrequest SET policy_snapshot = "
            "'{\"required_approvals\": {}}'::jsonb WHERE id = %s",
            [request.pk],
        )


def test_requests_are_never_deleted(app_role, file, version):
    request = file(version, "staging")
    with pytest.raises(IntegrityError, match="never deleted"), app_role() as cursor:
        cursor.execute("DELETE FROM approvals_promotionrequest WHERE id = %s", [request.pk])
