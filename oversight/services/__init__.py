"""Every write of oversight: validation reports and findings, monitoring points, alerts and
the re-validation requests they file, threshold rules and policies, periodic reviews.

Each public service takes keyword arguments and an explicit actor (None: the system, as in
Celery tasks), runs in one transaction and records one audit event per committed change.
E-mails and alert evaluation are queued after commit.
"""

from oversight.services.monitoring import (
    RecordedBatch,
    monitoring_alert_resolve,
    monitoring_breaches_evaluate,
    monitoring_points_record,
    rules_for,
    threshold_rule_create,
    threshold_rule_update,
)
from oversight.services.reviews import (
    add_months,
    oversight_policy_update,
    periodic_review_complete,
    periodic_reviews_open,
    review_due_at,
)
from oversight.services.validation import (
    finding_close,
    finding_record,
    validation_report_create,
)

__all__ = [
    "RecordedBatch",
    "add_months",
    "finding_close",
    "finding_record",
    "monitoring_alert_resolve",
    "monitoring_breaches_evaluate",
    "monitoring_points_record",
    "oversight_policy_update",
    "periodic_review_complete",
    "periodic_reviews_open",
    "review_due_at",
    "rules_for",
    "threshold_rule_create",
    "threshold_rule_update",
    "validation_report_create",
]
