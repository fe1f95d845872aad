"""Default oversight policies (review interval per risk tier), created by the migrations and
restored after a database flush (tests), never overwriting an edited policy."""

from __future__ import annotations

DEFAULT_REVIEW_MONTHS = {"critical": 6, "high": 12, "medium": 24, "low": 36}


def ensure_policies(apps) -> int:
    Policy = apps.get_model("oversight", "OversightPolicy")
    existing = set(Policy.objects.values_list("risk_tier", flat=True))
    missing = [
        Policy(risk_tier=tier, review_interval_months=months)
        for tier, months in DEFAULT_REVIEW_MONTHS.items()
        if tier not in existing
    ]
    Policy.objects.bulk_create(missing)
    return len(missing)
