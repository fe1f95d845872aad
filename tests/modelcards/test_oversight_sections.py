"""The card answers a model-risk reviewer: parameters, methodology and assumptions,
validation report and findings, monitoring plan with thresholds, latest results and a chart
per metric, reasons of cancelled requests, people's full names and titles — and long hashes
and URIs wrap inside their cells."""

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import weasyprint
from django.conf import settings
from django.template.loader import render_to_string
from pypdf import PdfReader

from approvals import services as approvals
from core.canonical import sha256_hex
from modelcards import render, selectors, services
from oversight import services as oversight
from oversight.monitoring import Point
from registry import services as registry
from registry.models import DOCUMENTATION_FIELDS
from tests.conftest import SHA

pytestmark = pytest.mark.django_db
# No hyphen, slash or space to break at: only the template's wrapping rules can fold it.
LONG_URI = "s3://models/" + "0123456789abcdef" * 16 + ".pkl"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def documented(owner, validator, risk_officer, credit_model):
    owner.first_name, owner.last_name = "Olivia", "Owner"
    owner.save()
    validator.first_name, validator.last_name = "Victor", "Valdés"
    validator.save()
    version = registry.model_version_create(
        actor=owner,
        model=credit_model,
        artifact_uri=LONG_URI,
        artifact_sha256=SHA,
        parameters={"max_depth": 6, "learning_rate": 0.05, "feature_hash": "f" * 120},
        metrics={"auc": 0.87},
        methodology="Gradient-boosted trees with monotone constraints.",
        assumptions="Applicant income is verified before scoring.",
    )
    report = oversight.validation_report_create(
        actor=validator,
        version=version,
        scope="Discrimination and calibration.",
        methods="Out-of-time backtest on 2025 applications.",
        conditions_of_use="Not for thin-file applicants. See https://wiki.example.com/"
        + "0123456789abcdef" * 10,
    )
    oversight.finding_record(
        actor=validator, report=report, title="Calibration drifts in Q4", severity="high"
    )
    oversight.threshold_rule_create(
        actor=risk_officer, model=credit_model, metric="psi", comparator="gt", threshold=0.25
    )
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    oversight.monitoring_points_record(
        actor=owner,
        version=version,
        points=[
            Point("psi", 0.05 * i, t0 + timedelta(days=i), t0 + timedelta(days=i + 1), "income")
            for i in range(4)
        ],
    )
    request = approvals.promotion_request_file(
        actor=owner, version=version, to_stage="staging", justification="Try it."
    )
    approvals.promotion_request_cancel(
        actor=owner, request=request, reason="Waiting for the Q4 recalibration."
    )
    return version


def _card_text(auditor, version) -> tuple[str, bytes]:
    card, _ = services.model_card_request(actor=auditor, version=version)
    services.model_card_render(card_id=card.pk)
    card.refresh_from_db()
    assert card.status == "ready", card.error
    pdf = (Path(settings.MEDIA_ROOT) / card.file.name).read_bytes()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    return text, pdf


def test_the_card_shows_the_oversight_sections(auditor, documented):
    context = selectors.card_context(documented)
    text, _ = _card_text(auditor, documented)
    flat = " ".join(text.split())
    for expected in (
        "learning_rate",
        "Gradient-boosted trees with monotone constraints.",
        "Applicant income is verified before scoring.",
        "Out-of-time backtest on 2025 applications.",
        "Calibration drifts in Q4",
        "Not for thin-file applicants.",
        "psi > 0.25",
        "Waiting for the Q4 recalibration.",
        "Olivia Owner (owner-scientist), Data scientist",
        "Victor Valdés (validator), Model validator",
    ):
        assert expected in flat, expected
    assert context["monitoring"]["metrics"][0]["chart"].startswith("data:image/svg+xml;base64,")


def test_long_uris_and_hashes_stay_inside_the_page(auditor, documented):
    context = selectors.card_context(documented)
    html = render_to_string("modelcards/model_card.html", context)
    document = weasyprint.HTML(
        string=html, url_fetcher=render.DataOnlyFetcher(), base_url="data:,"
    ).render()

    def boxes(box):
        yield box
        for child in getattr(box, "children", []):
            yield from boxes(child)

    checked = 0
    for page in document.pages:
        area = page._page_box
        limit = area.content_box_x() + area.width  # the right margin's edge
        for box in boxes(area):
            if getattr(box, "text", None):
                checked += 1
                assert box.position_x + box.width <= limit + 0.5, box.text[:40]
    assert checked > 100


def test_methodology_and_assumptions_are_part_of_the_digest(owner, credit_version):
    before = credit_version.content_digest
    version = registry.model_version_update(
        actor=owner, version=credit_version, data={"methodology": "Logistic regression."}
    )
    assert version.content_digest != before
    version = registry.model_version_update(actor=owner, version=version, data={"methodology": ""})
    assert version.content_digest == before


def test_digests_recorded_before_the_new_fields_stay_valid(credit_version):
    """Without methodology and assumptions, the digest is what it was before they existed."""
    old_fields = [f for f in DOCUMENTATION_FIELDS if f not in ("methodology", "assumptions")]
    expected = sha256_hex(
        {
            "model": "credit-scoring",
            "version": 1,
            "artifact_uri": credit_version.artifact_uri,
            "artifact_sha256": credit_version.artifact_sha256,
            "parameters": credit_version.parameters,
            "metrics": credit_version.metrics,
            "training_run": None,
            **{f: getattr(credit_version, f) for f in old_fields},
        }
    )
    assert credit_version.content_digest == expected


def test_methodology_is_editable_through_the_api(api, owner, credit_version):
    response = api(owner).patch(
        "/api/v1/models/credit-scoring/versions/1/",
        {"methodology": "Trees.", "assumptions": "Stable economy."},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["assumptions"] == "Stable economy."
    bad = api(owner).patch(
        "/api/v1/models/credit-scoring/versions/1/", {"methodology": 5}, format="json"
    )
    assert bad.status_code == 400
