"""Monitoring: points, threshold rules, alerts and the re-validation requests they file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from approvals import services as approvals
from audit.services import audit_record
from core.errors import Conflict
from oversight import permissions
from oversight.models import (
    BEYOND,
    AlertStatus,
    MonitoringAlert,
    MonitoringPoint,
    ThresholdRule,
)
from oversight.monitoring import Point
from oversight.services._common import _on_commit, _plain, _require, _text
from registry.models import ModelVersion, Stage

# --- monitoring: points -----------------------------------------------------------------------


def rules_for(version: ModelVersion) -> list[ThresholdRule]:
    """The active rules that apply to a version: its model's, and its risk tier's."""
    return list(_rules_of(version))


def _rules_of(version: ModelVersion) -> QuerySet[ThresholdRule]:
    return ThresholdRule.objects.filter(active=True).filter(
        Q(model_id=version.model_id) | Q(risk_tier=version.model.risk_tier)
    )


Bound = tuple[str, str, str, float]  # metric, segment ("": any), comparator, threshold


def _bounds_of(version: ModelVersion) -> list[Bound]:
    """The active rules of a version as plain tuples, in no particular order (one query; a
    version has a handful of rules, and `_breaching` looks only at those of a batch's
    metrics)."""
    return list(
        _rules_of(version).order_by().values_list("metric", "segment", "comparator", "threshold")
    )


def _breaching(bounds: Sequence[Bound], points: Sequence[Point]) -> list[int]:
    """The positions of the points beyond at least one bound, in order: each bound looks only
    at the points of its metric (a batch that breaches nothing costs one pass over it)."""
    by_metric: dict[str, list[int]] = {}
    for index, p in enumerate(points):
        by_metric.setdefault(p.metric, []).append(index)
    hits: set[int] = set()
    for metric, segment, comparator, threshold in bounds:
        beyond = BEYOND[comparator]
        hits.update(
            i
            for i in by_metric.get(metric, ())
            if (not segment or points[i].segment == segment) and beyond(points[i].value, threshold)
        )
    return sorted(hits)


class RecordedBatch(NamedTuple):
    ids: list[int]  # of the points recorded, in the batch's order
    breaching: list[int]  # ids of the points beyond a threshold rule


# The columns of oversight_monitoringpoint but its id (tests guard that it names them all).
_INSERT_POINTS = """\
INSERT INTO oversight_monitoringpoint
    (version_id, recorded_at, metric, segment, value, window_start, window_end)
SELECT %s, %s, metric, segment, value, window_start::timestamptz, window_end::timestamptz
FROM UNNEST(%s::varchar[], %s::varchar[], %s::float8[], %s::text[], %s::text[])
    AS point (metric, segment, value, window_start, window_end)
RETURNING id
"""


def _points_insert(version_id: int, recorded_at: datetime, points: Sequence[Point]) -> list[int]:
    """Insert a batch's points in one statement; their ids, in the batch's order.

    On PostgreSQL, the INSERT … SELECT FROM UNNEST that bulk_create sends there, given the
    batch's columns as plain lists: no model instance per point and no preparation per value
    (700 of them in a batch of 100), and the window times as ISO text, formatted once per
    distinct time (a batch shares a handful), which PostgreSQL reads faster than psycopg
    writes datetime arrays. A batch of 100 costs the web process 0.5 ms of CPU here against
    2.4 ms through bulk_create. SQLite (the embedded default) takes bulk_create."""
    if connection.vendor != "postgresql":
        rows = MonitoringPoint.objects.bulk_create(
            MonitoringPoint(
                version_id=version_id,
                metric=metric,
                segment=segment,
                value=value,
                window_start=start,
                window_end=end,
                recorded_at=recorded_at,
            )
            for metric, value, start, end, segment in points
        )
        return [row.pk for row in rows]
    iso: dict[datetime, str] = {}

    def text(when: datetime) -> str:
        if when not in iso:  # aware, as parse_batch makes them
            iso[when] = when.isoformat()
        return iso[when]

    columns = (
        [p.metric for p in points],
        [p.segment for p in points],
        [float(p.value) for p in points],
        [text(p.window_start) for p in points],
        [text(p.window_end) for p in points],
    )
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_POINTS, [version_id, recorded_at, *columns])
        return [id_ for (id_,) in cursor.fetchall()]


@transaction.atomic
def monitoring_points_record(
    *, actor: AbstractBaseUser, version: ModelVersion, points: Sequence[Point]
) -> RecordedBatch:
    """Append a batch of production measurements of a version: one query for the version's
    rules, one insert of the points, one audit event — however many points.
    Points beyond a threshold are evaluated by a task after commit (alerts, re-validation)."""
    if not permissions.may_post_monitoring(actor, version):
        raise PermissionDenied(
            f"You may not post monitoring of model '{version.model.name}': its owner and users "
            "granted change permission on it may."
        )
    if version.model.archived:
        raise Conflict(f"Model '{version.model.name}' is archived.", code="archived")
    if not points:
        raise ValidationError({"points": "Must be a non-empty list of points."})
    metrics = sorted({p.metric for p in points})
    beyond = _breaching(_bounds_of(version), points)
    version_id = version.pk
    ids = _points_insert(version_id, timezone.now(), points)
    breaching = [ids[i] for i in beyond]
    # Filed under the version's monitoring rather than the version itself, so that the
    # version's own trail (and its model card) is not one event per batch.
    audit_record(
        actor=actor,
        action="oversight.monitoring.recorded",
        object_type="oversight.monitoring",
        object_id=str(version_id),
        object_repr=f"monitoring of {version}",
        changes={
            "points": len(ids),
            "ids": [ids[0], ids[-1]],
            "metrics": metrics,
            "window": [
                min(p.window_start for p in points).isoformat(),
                max(p.window_end for p in points).isoformat(),
            ],
            "breaching": len(breaching),
        },
    )
    if breaching:
        from oversight.tasks import evaluate_breaches

        _on_commit(evaluate_breaches, version_id, breaching)
    return RecordedBatch(ids, breaching)


# --- monitoring: alerts and re-validation ------------------------------------------------------


@transaction.atomic
def monitoring_breaches_evaluate(*, version_id: int, point_ids: Sequence[int]) -> list[int]:
    """Open an alert per rule a point breaches (or count the breach on its open alert), and
    file a re-validation request where the rule says so. Run by a task after the points
    committed, by the system; idempotent (points an alert already counted are skipped).
    Returns the ids of the alerts opened."""
    version = (
        ModelVersion.objects.select_for_update(no_key=True)
        .select_related("model")
        .filter(pk=version_id)
        .first()
    )
    if version is None:
        return []
    points = list(MonitoringPoint.objects.filter(pk__in=point_ids, version=version).order_by("pk"))
    rules = rules_for(version)
    seen = dict(
        MonitoringAlert.objects.filter(version=version)
        .values("rule_id")
        .annotate(last=Max("last_point_id"))
        .values_list("rule_id", "last")
    )
    opened: list[MonitoringAlert] = []
    for rule in rules:
        hits = [
            p
            for p in points
            if p.metric == rule.metric
            and (not rule.segment or rule.segment == p.segment)
            and rule.breached_by(p.value)
            and p.pk > (seen.get(rule.pk) or 0)
        ]
        if not hits:
            continue
        alert = MonitoringAlert.objects.filter(
            version=version, rule=rule, status=AlertStatus.OPEN
        ).first()
        if alert is not None:
            MonitoringAlert.objects.filter(pk=alert.pk).update(
                breaches=alert.breaches + len(hits), last_point=hits[-1]
            )
            continue
        opened.append(_alert_open(version, rule, hits))
    return [a.pk for a in opened]


def _alert_open(version: ModelVersion, rule: ThresholdRule, hits: list[MonitoringPoint]):
    first = hits[0]
    alert = MonitoringAlert.objects.create(
        version=version,
        rule=rule,
        point=first,
        last_point=hits[-1],
        rule_text=str(rule)[:400],
        metric=first.metric,
        segment=first.segment,
        value=first.value,
        breaches=len(hits),
    )
    if rule.revalidate:
        request, note = _file_revalidation(version, alert)
        alert.revalidation_request, alert.revalidation_note = request, note
        alert.save(update_fields=["revalidation_request", "revalidation_note"])
    audit_record(
        actor=None,
        action="oversight.monitoring_alert.opened",
        target=alert,
        changes={
            "version": str(version),
            "rule": alert.rule_text,
            "metric": alert.metric,
            "segment": alert.segment,
            "value": alert.value,
            "point": first.pk,
            "revalidation_request": alert.revalidation_request_id,
            "revalidation_note": alert.revalidation_note,
        },
    )
    from oversight.tasks import notify_alert

    _on_commit(notify_alert, alert.pk)
    return alert


def _file_revalidation(version: ModelVersion, alert: MonitoringAlert) -> tuple[Any, str]:
    """File production → staging for the version as the system account, through the
    approvals service (its policy, gates, pending-request and approver rules apply). When
    approvals refuses — not in production, a request already pending, no one eligible to
    decide — the alert stays open and says why; nothing of the refused filing is written."""
    if version.stage != Stage.PRODUCTION:
        return None, f"Not filed: the version is in {version.stage}, not production."
    try:
        with transaction.atomic():
            request = approvals.promotion_request_file(
                actor=approvals.system_account(),
                version=version,
                to_stage=Stage.STAGING,
                justification=(
                    f"Monitoring alert #{alert.pk}: {alert.metric}"
                    f"{' on ' + alert.segment if alert.segment else ''} = {alert.value:g} "
                    f"breaches {alert.rule_text}. Re-validate before it stays in production."
                ),
            )
    except (Conflict, PermissionDenied, ValidationError) as exc:
        message = "; ".join(exc.messages if isinstance(exc, ValidationError) else [str(exc)])
        return None, f"Not filed: {message}"[:500]
    return request, ""


@transaction.atomic
def monitoring_alert_resolve(
    *, actor: AbstractBaseUser, alert: MonitoringAlert, comment: str
) -> MonitoringAlert:
    """Close an open alert with a comment (what was done about it)."""
    alert = MonitoringAlert.objects.select_related("version__model").get(pk=alert.pk)
    if not permissions.may_resolve_alert(actor, alert.version):
        raise PermissionDenied(
            "Resolving an alert needs change rights on the model or an approver role."
        )
    comment = _text(comment, "comment", "A comment", limit=10_000)
    now = timezone.now()
    updated = MonitoringAlert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.RESOLVED, resolved_at=now, resolved_by=actor, resolution_comment=comment
    )
    if updated != 1:
        raise Conflict("This alert is already resolved.", code="not_open")
    alert.refresh_from_db()
    audit_record(
        actor=actor,
        action="oversight.monitoring_alert.resolved",
        target=alert,
        changes={"status": [AlertStatus.OPEN, AlertStatus.RESOLVED], "comment": comment},
    )
    return alert


# --- threshold rules and policies ---------------------------------------------------------------

RULE_FIELDS = (
    "model",
    "risk_tier",
    "metric",
    "segment",
    "comparator",
    "threshold",
    "revalidate",
    "active",
    "description",
)


@transaction.atomic
def threshold_rule_create(*, actor: AbstractBaseUser, **fields: Any) -> ThresholdRule:
    """Add a threshold rule for one model or one risk tier (risk officers, superusers)."""
    _require(actor, permissions.EDIT_RULES, "threshold rules")
    unknown = sorted(set(fields) - set(RULE_FIELDS))
    if unknown:
        raise ValidationError({k: "Unknown field." for k in unknown})
    rule = ThresholdRule(**fields)
    rule.full_clean()
    rule.save()
    audit_record(
        actor=actor,
        action="oversight.threshold_rule.created",
        target=rule,
        changes={f: [None, _plain(getattr(rule, f))] for f in RULE_FIELDS},
    )
    return rule


@transaction.atomic
def threshold_rule_update(
    *, actor: AbstractBaseUser, rule: ThresholdRule, data: Mapping[str, Any]
) -> ThresholdRule:
    """Edit a threshold rule (alerts already open keep the rule text they fired under)."""
    _require(actor, permissions.EDIT_RULES, "threshold rules")
    unknown = sorted(set(data) - set(RULE_FIELDS))
    if unknown:
        raise ValidationError({k: "This field cannot be changed here." for k in unknown})
    rule = ThresholdRule.objects.select_for_update().get(pk=rule.pk)
    changes = {}
    for field, value in data.items():
        if getattr(rule, field) != value:
            changes[field] = [_plain(getattr(rule, field)), _plain(value)]
            setattr(rule, field, value)
    if not changes:
        return rule
    rule.full_clean()
    rule.save()
    audit_record(
        actor=actor, action="oversight.threshold_rule.updated", target=rule, changes=changes
    )
    return rule
