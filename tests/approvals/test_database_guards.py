"""No back door to a stage: PostgreSQL triggers refuse stage changes the approval service
did not make, content changes of production versions, and edits of the stage history."""

import pytest
from django.db import IntegrityError, transaction

from approvals.models import PromotionDecision, StageTransition
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


def test_the_flag_does_not_outlive_the_service_call(promote, version):
    promote(version, "staging")  # the service opened and closed the trigger in this transaction
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
