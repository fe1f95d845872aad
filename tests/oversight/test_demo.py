"""`seed_demo`: credit-limit v1 in production with a validation report and findings, a
monitoring history with one breach that opened an alert and a re-validation request, and a
model card showing all of it. Running it again makes nothing new."""

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from pypdf import PdfReader

from approvals.models import PromotionRequest
from modelcards.selectors import ready_card
from oversight.models import Finding, MonitoringAlert, MonitoringPoint
from registry.models import ModelVersion
from tests.conftest import ensure_roles


@pytest.mark.card_gate
def test_the_demo_shows_oversight_end_to_end(db, settings_media):
    ensure_roles()
    call_command("seed_demo", stdout=io.StringIO())
    counts = (MonitoringPoint.objects.count(), PromotionRequest.objects.count())
    call_command("seed_demo", stdout=io.StringIO())
    assert (MonitoringPoint.objects.count(), PromotionRequest.objects.count()) == counts
    version = ModelVersion.objects.get(model__name="credit-limit", version=1)
    assert version.stage == "production"
    assert sorted(Finding.objects.values_list("severity", "status")) == [
        ("high", "remediated"),
        ("medium", "open"),
    ]
    alert = MonitoringAlert.objects.get()
    assert (alert.metric, alert.status) == ("auc", "open")
    request = alert.revalidation_request
    assert (request.from_stage, request.to_stage, request.status) == (
        "production",
        "staging",
        "pending",
    )
    card = ready_card(version)
    pdf = (Path(settings.MEDIA_ROOT) / card.file.name).read_bytes()
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    for expected in (
        "Calibration overstates loss for thin-file applicants",
        "auc < 0.78",
        f"request #{request.pk} (pending)",
        "Withdrawn until the validation's high finding is remediated.",
        "Victor Validator (demo-validator)",
    ):
        assert expected in text, expected


@pytest.fixture
def settings_media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
