"""Reads of oversight: what a user may see, open findings, monitoring series with their
thresholds, overdue reviews — and the two promotion gates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Max, QuerySet
from django.utils import timezone

from oversight.models import (
    SERIOUS,
    Finding,
    FindingStatus,
    MonitoringAlert,
    MonitoringPoint,
    OversightPolicy,
    PeriodicReview,
    ReviewStatus,
    ThresholdRule,
    ValidationReport,
)
from registry.models import ModelVersion
from registry.selectors import models_visible_to

SERIES_POINTS = 200  # the latest points per metric and segment that a chart shows


def reports_visible_to(user: Any) -> QuerySet[ValidationReport]:
    return ValidationReport.objects.select_related("version__model", "validator").filter(
        version__model__in=models_visible_to(user).values("pk")
    )


def findings_visible_to(user: Any) -> QuerySet[Finding]:
    return Finding.objects.select_related(
        "report__version__model", "owner", "created_by", "closed_by"
    ).filter(report__version__model__in=models_visible_to(user).values("pk"))


def alerts_visible_to(user: Any) -> QuerySet[MonitoringAlert]:
    return MonitoringAlert.objects.select_related(
        "version__model", "resolved_by", "revalidation_request"
    ).filter(version__model__in=models_visible_to(user).values("pk"))


def reviews_visible_to(user: Any) -> QuerySet[PeriodicReview]:
    return PeriodicReview.objects.select_related("version__model", "completed_by").filter(
        version__model__in=models_visible_to(user).values("pk")
    )


def overdue_reviews(now=None) -> QuerySet[PeriodicReview]:
    return PeriodicReview.objects.filter(status=ReviewStatus.OPEN, due_at__lt=now or timezone.now())


def version_reports(version: ModelVersion) -> list[ValidationReport]:
    """A version's validation reports, newest first, with their findings prefetched."""
    return list(
        ValidationReport.objects.filter(version=version)
        .select_related("validator")
        .prefetch_related("findings__owner", "findings__closed_by")
    )


def open_serious_findings(version: ModelVersion) -> QuerySet[Finding]:
    return Finding.objects.filter(
        report__version=version, status=FindingStatus.OPEN, severity__in=SERIOUS
    )


def record_changed_at(version: ModelVersion) -> Any:
    """When what oversight records of the version (as a model card shows it) last changed:
    a validation report or finding added or closed, a monitoring point recorded, an alert
    opened or resolved, a periodic review opened or completed, a threshold rule that bounds
    it edited. None: nothing recorded."""
    moments = [
        *ValidationReport.objects.filter(version=version).aggregate(at=Max("created_at")).values(),
        *Finding.objects.filter(report__version=version)
        .aggregate(added=Max("created_at"), closed=Max("closed_at"))
        .values(),
        *MonitoringPoint.objects.filter(version=version).aggregate(at=Max("recorded_at")).values(),
        *MonitoringAlert.objects.filter(version=version)
        .aggregate(opened=Max("opened_at"), resolved=Max("resolved_at"))
        .values(),
        *PeriodicReview.objects.filter(version=version)
        .aggregate(opened=Max("opened_at"), completed=Max("completed_at"))
        .values(),
        *(rule.updated_at for rule in rules_for(version)),
    ]
    return max((m for m in moments if m is not None), default=None)


def rules_for(version: ModelVersion) -> list[ThresholdRule]:
    from oversight.services import rules_for as rules

    return rules(version)


def monitoring_series(version: ModelVersion, *, limit: int = SERIES_POINTS) -> list[dict]:
    """Per metric: the rules bounding it and its latest points per segment (oldest first),
    the shape the admin charts and the model card read."""
    rules = rules_for(version)
    metrics = sorted(
        set(
            MonitoringPoint.objects.filter(version=version)
            .values_list("metric", flat=True)
            .distinct()
        )
        | {r.metric for r in rules}
    )
    out = []
    for metric in metrics:
        latest = list(
            MonitoringPoint.objects.filter(version=version, metric=metric)
            .order_by("-window_end", "-id")
            .values("segment", "value", "window_end")[: limit * 4]
        )
        by_segment: dict[str, list[tuple]] = defaultdict(list)
        for row in reversed(latest):
            by_segment[row["segment"]].append((row["window_end"], row["value"]))
        segments = {seg: pts[-limit:] for seg, pts in sorted(by_segment.items())}
        out.append(
            {
                "metric": metric,
                "rules": [r for r in rules if r.metric == metric],
                "segments": segments,
                "latest": {seg: pts[-1] for seg, pts in segments.items() if pts},
            }
        )
    return out


# --- gates --------------------------------------------------------------------------------------

FINDINGS_GATE = "no_open_serious_findings"
FINDINGS_GATE_LABEL = "No open high or critical validation finding"
REVIEW_GATE = "periodic_review_current"
REVIEW_GATE_LABEL = "No overdue periodic review of the model (when the tier's policy blocks)"


def findings_gate(version: ModelVersion) -> str | None:
    """None when no high or critical finding of the version is open."""
    titles = list(open_serious_findings(version).values_list("severity", "title")[:5])
    if not titles:
        return None
    listed = "; ".join(f"[{sev}] {title}" for sev, title in titles)
    return f"Open high or critical validation findings must be closed first: {listed}."


def review_gate(version: ModelVersion) -> str | None:
    """None unless the tier's policy blocks promotions while a review of the model's
    production version is overdue, and one is."""
    model = version.model
    blocks = OversightPolicy.objects.filter(
        risk_tier=model.risk_tier, block_promotions_when_overdue=True
    ).exists()
    if not blocks:
        return None
    overdue = overdue_reviews().filter(version__model=model).select_related("version").first()
    if overdue is None:
        return None
    return (
        f"The periodic review of {overdue.version} was due on {overdue.due_at:%Y-%m-%d}; "
        f"{model.get_risk_tier_display().lower()}-risk models are not promoted until it is done."
    )
