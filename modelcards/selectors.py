"""Everything a model card says, gathered from the registry, lineage, approvals and audit."""

from __future__ import annotations

import base64
from typing import Any

from django.db.models import Max, QuerySet
from django.utils import timezone

from approvals.selectors import approval_history, person_name
from audit import selectors as audit_selectors
from audit.selectors import verify_chain
from lineage import nodes
from lineage.models import Edge, Relation
from lineage.selectors import lineage_svg
from lineage.services import EXTERNAL_VERSION
from modelcards.models import CardStatus, ModelCard
from modelcards.render import metrics_chart
from oversight import charts as oversight_charts
from oversight import selectors as oversight
from registry.models import DOCUMENTATION_FIELDS, DatasetVersion, ModelVersion

NOT_PROVIDED = "not provided"


def cards_visible_to(user: Any) -> QuerySet[ModelCard]:
    """Cards of the versions the user may see."""
    from registry.selectors import versions_visible_to

    return ModelCard.objects.select_related("version__model", "requested_by").filter(
        version__in=versions_visible_to(user).values("pk")
    )


def ready_card(version: ModelVersion) -> ModelCard | None:
    """The newest ready card documenting the version's current content."""
    return (
        ModelCard.objects.filter(
            version=version, content_digest=version.content_digest, status=CardStatus.READY
        )
        .order_by("-finished_at")
        .first()
    )


CARD_GATE = "model_card_current"
CARD_GATE_LABEL = "Model card generated for the current content"


def record_changed_at(version: ModelVersion) -> Any:
    """When the version's governance record, as a card shows it, last changed: its own
    audited changes (a stage change among them), its promotion requests filed, closed or
    decided, and what oversight records of it (validation, findings, monitoring, reviews).
    A card created before then shows an older record. None: never changed."""
    moments = [
        audit_selectors.event_history(
            object_type="registry.modelversion", object_id=version.pk
        ).aggregate(at=Max("occurred_at"))["at"],
        *version.promotion_requests.aggregate(
            filed=Max("created_at"), closed=Max("closed_at"), decided=Max("decisions__decided_at")
        ).values(),
        oversight.record_changed_at(version),
    ]
    return max((m for m in moments if m is not None), default=None)


def card_gate(version: ModelVersion) -> str | None:
    """The promotion gate: None when a ready card documents the version's current content
    digest, else what is missing (approvals.gates)."""
    if ready_card(version) is not None:
        return None
    return (
        f"No model card has been generated for this content (digest "
        f"{version.content_digest[:12]}…); generate one and review it before deciding."
    )


def _data_uri_svg(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def training_data(version: ModelVersion) -> list[dict[str, Any]]:
    """Dataset versions the version was trained on (from lineage), with their features."""
    model_node = nodes.model_id(version.model.name, version.version)
    sources = list(
        Edge.objects.filter(target=model_node, relation=Relation.TRAINED_ON).values_list(
            "source", flat=True
        )
    )
    rows = []
    for source in sorted(sources):
        ref = nodes.parse(source)
        dataset_version = (
            DatasetVersion.objects.select_related("dataset")
            .prefetch_related("dataset__features")
            .filter(dataset__namespace=ref.namespace, dataset__name=ref.name, version=ref.version)
            .first()
        )
        if dataset_version is None:
            continue
        dataset = dataset_version.dataset
        rows.append(
            {
                "namespace": dataset.namespace,
                "name": dataset.name,
                "version": dataset_version.version,
                "untracked": dataset_version.version == EXTERNAL_VERSION,
                "contains_pii": dataset.contains_pii,
                "features": [
                    {"name": f.name, "dtype": f.dtype or NOT_PROVIDED, "pii": f.pii}
                    for f in dataset.features.all()
                    if not f.archived
                ],
            }
        )
    return rows


def audit_trail(version: ModelVersion) -> list[dict[str, Any]]:
    """This version's audit events, oldest first, with their place in the chain."""
    events = audit_selectors.event_history(
        object_type="registry.modelversion", object_id=version.pk
    ).select_related("seal")
    trail = []
    for event in events:
        seal = getattr(event, "seal", None)
        trail.append(
            {
                "seq": seal.seq if seal else "pending",
                "occurred_at": event.occurred_at,
                "actor": event.actor_username or "system",
                "action": event.action,
                "hash": seal.hash[:16] if seal else "not sealed yet",
            }
        )
    return trail


def chain_status() -> dict[str, Any]:
    """The audit chain's verification at this moment (the renderer seals first)."""
    result = verify_chain()
    if result.ok:
        detail = (
            f"{result.checked} events verified; head seq {result.head_seq}, "
            f"hash {result.head_hash[:16]}…"
        )
    else:
        detail = f"broken at seq {result.broken_seq}: {result.reason}"
    return {"ok": result.ok, "detail": detail}


ROLE_TITLES = {
    "data-scientist": "Data scientist",
    "pipeline": "Pipeline (service account)",
    "model-validator": "Model validator",
    "risk-officer": "Risk officer",
    "auditor": "Auditor",
}


def person(user: Any) -> str:
    """ "Full Name (username), Title" as far as the user record says (titles: role groups)."""
    if user is None:
        return NOT_PROVIDED
    titles = [
        ROLE_TITLES[g] for g in user.groups.values_list("name", flat=True) if g in ROLE_TITLES
    ]
    return person_name(user) + (", " + ", ".join(sorted(titles)) if titles else "")


def validation(version: ModelVersion) -> list[dict[str, Any]]:
    """The version's validation reports with their findings (the card's section)."""
    return [
        {
            "validator": person(report.validator),
            "created_at": report.created_at,
            "scope": report.scope,
            "methods": report.methods,
            "conclusion": report.conclusion or NOT_PROVIDED,
            "conditions_of_use": report.conditions_of_use or NOT_PROVIDED,
            "findings": [
                {
                    "title": f.title,
                    "description": f.description,
                    "severity": f.severity,
                    "status": f.get_status_display(),
                    "owner": person_name(f.owner) if f.owner else NOT_PROVIDED,
                    "due_date": f.due_date,
                    "closed": (
                        f"{person_name(f.closed_by)} on {f.closed_at:%Y-%m-%d}: {f.closing_comment}"
                        if f.closed_by
                        else ""
                    ),
                }
                for f in report.findings.all()
            ],
        }
        for report in oversight.version_reports(version)
    ]


def monitoring(version: ModelVersion) -> dict[str, Any]:
    """The monitoring plan (threshold rules), the latest results with a small chart per
    metric, the alerts and the periodic reviews of the version."""
    from oversight.models import MonitoringAlert, PeriodicReview

    series = oversight.monitoring_series(version)
    return {
        "rules": [
            {
                "rule": str(rule),
                "scope": rule.model.name if rule.model_id else f"all {rule.risk_tier}-risk models",
                "revalidate": rule.revalidate,
            }
            for entry in series
            for rule in entry["rules"]
        ],
        "metrics": [
            {
                "metric": entry["metric"],
                "latest": [
                    {"segment": seg or "all", "value": value, "at": when}
                    for seg, (when, value) in entry["latest"].items()
                ],
                "chart": _data_uri_svg(oversight_charts.series_chart(entry, width=520, height=150))
                if entry["segments"]
                else "",
            }
            for entry in series
        ],
        "alerts": list(
            MonitoringAlert.objects.filter(version=version)
            .select_related("revalidation_request")
            .order_by("opened_at", "id")
        ),
        "reviews": list(
            PeriodicReview.objects.filter(version=version)
            .select_related("completed_by")
            .order_by("due_at", "id")
        ),
    }


def card_context(version: ModelVersion) -> dict[str, Any]:
    """The template context of a model card for the version as it is now."""
    model = version.model
    metrics = {k: v for k, v in sorted(version.metrics.items())}
    node = nodes.model_id(model.name, version.version)
    documentation = {
        field: (getattr(version, field) or "").strip() or NOT_PROVIDED
        for field in DOCUMENTATION_FIELDS
    }
    return {
        "model": model,
        "version": version,
        "generated_at": timezone.now(),
        "not_provided": NOT_PROVIDED,
        "doc": documentation,
        "metrics": metrics,
        "metrics_chart": _data_uri_svg(metrics_chart(metrics)) if metrics else "",
        "parameters": version.parameters,
        "training_run": version.training_run,
        "training_data": training_data(version),
        "lineage_drawing": _data_uri_svg(lineage_svg([node], node, max_drawn=40, for_print=True)),
        "approvals": approval_history(version),
        "owner": person(model.owner),
        "registered_by": person(version.created_by),
        "validation": validation(version),
        "monitoring": monitoring(version),
        "audit_trail": audit_trail(version),
        "chain": chain_status(),
    }
