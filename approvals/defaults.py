"""The default promotion policies and the decide permission, created by the migrations and
restored after a database flush (tests), never overwriting an edited policy."""

from __future__ import annotations

from approvals import workflow

DECIDE_CODENAME = "decide_promotion"
DECIDE_NAME = "Can decide promotion requests of this model"


def ensure_decide_permission(apps) -> None:
    """`registry.decide_promotion`, on the content type of registry.RegisteredModel."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    content_type, _ = ContentType.objects.get_or_create(
        app_label="registry", model="registeredmodel"
    )
    Permission.objects.get_or_create(
        content_type=content_type, codename=DECIDE_CODENAME, defaults={"name": DECIDE_NAME}
    )


def ensure_policies(apps) -> int:
    """Create the default policy of every (target stage, risk tier) that has none."""
    Policy = apps.get_model("approvals", "PromotionPolicy")
    existing = set(Policy.objects.values_list("to_stage", "risk_tier"))
    missing = [
        Policy(to_stage=stage, risk_tier=tier, **values)
        for (stage, tier), values in workflow.DEFAULT_POLICIES.items()
        if (stage, tier) not in existing
    ]
    Policy.objects.bulk_create(missing)
    return len(missing)
