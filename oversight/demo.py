"""Demo oversight data for `manage.py seed_demo`: the medium-risk model credit-limit, whose
version 1 has an independent validation report with findings and a production request
(cancelled once, filed again). `seed_production` — called by the model-cards demo once the
version has its card and approvals — adds eight weeks of production monitoring in which AUC
falls below its threshold: one alert, and a re-validation request filed by the system.
Idempotent: what exists is left alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from approvals import services as approvals
from approvals.demo import grant_demo_approvers
from approvals.models import PromotionRequest, RequestStatus
from oversight import services
from oversight.models import MonitoringPoint, ThresholdRule, ValidationReport
from oversight.monitoring import Point
from registry import services as registry
from registry.models import Job, ModelVersion, RegisteredModel, Run
from registry.services import model_permission_grant

MODEL = "credit-limit"
SEED = uuid.UUID("5b0f6f2e-6a52-4d0b-9c7e-0a7c1e9d3f11")


def seed(users: dict) -> None:
    scientist = users["demo-scientist"]
    validator, risk = users["demo-validator"], users["demo-risk"]
    version = _model(users)
    if version is None:
        return
    if not PromotionRequest.objects.filter(version=version).exists():
        staging = approvals.promotion_request_file(
            actor=scientist,
            version=version,
            to_stage="staging",
            justification="Backtest on 2025 card applications complete; ready for validation.",
        )
        approvals.promotion_decide(
            actor=validator,
            request=staging,
            outcome="approve",
            comment="Evaluation reproduced; proceed to independent validation in staging.",
        )
        early = approvals.promotion_request_file(
            actor=scientist,
            version=version,
            to_stage="production",
            justification="Shadow run looks good.",
        )
        approvals.promotion_request_cancel(
            actor=scientist,
            request=early,
            reason="Withdrawn until the validation's high finding is remediated.",
        )
        version.refresh_from_db()
    if not ValidationReport.objects.filter(version=version).exists():
        _validation(version, scientist, validator, risk)
    if (
        not PromotionRequest.objects.filter(
            version=version, to_stage="production", status=RequestStatus.PENDING
        ).exists()
        and version.stage == "staging"
    ):
        approvals.promotion_request_file(
            actor=scientist,
            version=version,
            to_stage="production",
            justification="High finding remediated; validation conditions accepted.",
        )
    if not ThresholdRule.objects.filter(model=version.model).exists():
        for metric, comparator, threshold, revalidate, text in (
            ("auc", "lt", 0.78, True, "Discrimination below the validated floor."),
            ("psi", "gt", 0.25, False, "Population drift on any feature."),
            ("latency_p99_ms", "gt", 250, False, "Scoring latency budget."),
        ):
            services.threshold_rule_create(
                actor=risk,
                model=version.model,
                metric=metric,
                comparator=comparator,
                threshold=threshold,
                revalidate=revalidate,
                description=text,
            )


def _model(users: dict) -> ModelVersion | None:
    scientist, pipeline = users["demo-scientist"], users["demo-pipeline"]
    model = RegisteredModel.objects.filter(name=MODEL).first()
    if model is None:
        model = registry.registered_model_create(
            actor=scientist,
            name=MODEL,
            description="Initial credit limit for approved credit-card applicants.",
            business_unit="Cards",
            risk_tier="medium",
            tags=["credit", "regulated"],
        )
        model_permission_grant(
            actor=scientist, model=model, grantee=pipeline, permission="change_registeredmodel"
        )
    grant_demo_approvers(users, model)
    version = model.versions.order_by("version").first()
    if version is not None:
        return version
    job = Job.objects.filter(namespace="airflow", name="train_models").first() or (
        registry.job_create(actor=pipeline, namespace="airflow", name="train_models")
    )
    run_id = uuid.uuid5(SEED, MODEL)
    run = Run.objects.filter(run_id=run_id).first() or registry.run_create(
        actor=pipeline, job=job, run_id=run_id, state="COMPLETE"
    )
    return registry.model_version_create(
        actor=pipeline,
        model=model,
        artifact_uri="s3://ml-artifacts/credit-limit/v1/model.pkl",
        artifact_sha256=uuid.uuid5(SEED, "artifact").hex * 2,
        framework="lightgbm 4.5",
        parameters={"num_leaves": 31, "learning_rate": 0.05, "monotone_constraints": [1, 1, -1]},
        metrics={"auc": 0.842, "gini": 0.684},
        training_run=run,
        intended_use="Initial credit limit for approved applicants; analysts may lower it.",
        limitations="Trained on 2021–2025 applications; not for business cards.",
        training_data_summary="Card applications 2021–2025 with 12-month outcomes.",
        evaluation_summary="Out-of-time AUC 0.842 on 2025 H2 applications.",
        methodology="Gradient-boosted trees (LightGBM) with monotone constraints on income, "
        "bureau score and utilisation; limits set from predicted loss at a target loss rate.",
        assumptions="Income is verified before scoring; the bureau score is at most 30 days "
        "old; macro-economic conditions similar to 2021–2025.",
    )


def _validation(version, scientist, validator, risk) -> None:
    report = services.validation_report_create(
        actor=validator,
        version=version,
        scope="Discrimination, calibration and stability of the limit model; the policy rules "
        "around it are out of scope.",
        methods="Out-of-time backtest on 2025 H2, benchmark against a scorecard, sensitivity "
        "to bureau-score staleness.",
        conclusion="Fit for use under the conditions below.",
        conditions_of_use="Re-validate if AUC falls below 0.78 in production; not for "
        "applicants without a bureau record.",
    )
    high = services.finding_record(
        actor=validator,
        report=report,
        title="Calibration overstates loss for thin-file applicants",
        severity="high",
        description="Predicted loss exceeds observed by 35% for applicants with < 2 years "
        "of history.",
        owner=scientist,
    )
    services.finding_record(
        actor=validator,
        report=report,
        title="Stale bureau scores not monitored",
        severity="medium",
        owner=scientist,
        due_date=datetime(2027, 3, 31, tzinfo=UTC).date(),
    )
    services.finding_close(
        actor=risk,
        finding=high,
        status="remediated",
        comment="Thin-file applicants are excluded by the conditions of use; checked the "
        "recalibrated backtest.",
    )


def seed_production(users: dict) -> None:
    """Eight weeks of monitoring of credit-limit v1 in production: AUC drifts below 0.78 in
    the last week (one alert, one re-validation request by the system)."""
    version = ModelVersion.objects.filter(model__name=MODEL, version=1).first()
    if version is None or version.stage != "production":
        return
    if MonitoringPoint.objects.filter(version=version).exists():
        return
    start = datetime(2026, 9, 7, tzinfo=UTC)
    auc = [0.838, 0.835, 0.836, 0.829, 0.817, 0.803, 0.791, 0.771]
    psi = {
        "income": [0.02, 0.03, 0.03, 0.04, 0.05, 0.05, 0.06, 0.07],
        "bureau_score": [0.01, 0.02, 0.04, 0.06, 0.09, 0.12, 0.15, 0.19],
        "utilisation": [0.03, 0.03, 0.02, 0.04, 0.04, 0.05, 0.05, 0.06],
    }
    latency = [180, 185, 176, 190, 205, 198, 210, 201]
    points = []
    for week in range(8):
        window = (start + timedelta(weeks=week), start + timedelta(weeks=week + 1))
        points.append(Point("auc", auc[week], *window))
        points.append(Point("latency_p99_ms", latency[week], *window))
        points += [Point("psi", values[week], *window, feature) for feature, values in psi.items()]
    batch = services.monitoring_points_record(
        actor=users["demo-pipeline"], version=version, points=points
    )
    # The seed runs in one transaction: evaluate now rather than after its commit (the task
    # queued by the service then finds nothing new).
    services.monitoring_breaches_evaluate(version_id=version.pk, point_ids=batch.breaching)
