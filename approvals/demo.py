"""Demo approvals for `manage.py seed_demo`: the demo validators and risk officers may decide
the demo models' promotions (two of each, as the high and critical tiers' production policies
need two validators or two risk officers); churn-predictor v2 is in staging with a production
request filed (see modelcards.demo for its card and the validator's approval), and
credit-scoring v2 waits in demo-validator's queue for staging.
Idempotent: a version that has requests already is left alone."""

from django.contrib.auth import get_user_model

from approvals import permissions, services
from approvals.models import PromotionRequest
from registry.models import ModelVersion, RegisteredModel

DEMO_MODELS = ("credit-scoring", "churn-predictor", "fraud-detector")
DEMO_APPROVERS = ("demo-validator", "demo-validator-2", "demo-risk", "demo-risk-2")


def grant_demo_approvers(users: dict, model: RegisteredModel) -> None:
    """Let every demo approver decide the model's promotions (granted by the first superuser,
    as an administrator would appoint them)."""
    admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    if admin is None:
        return
    for name in DEMO_APPROVERS:
        approver = users[name]
        if not permissions.holds_decide_permission(approver, model):
            services.decide_permission_grant(actor=admin, model=model, grantee=approver)


def seed(users: dict) -> None:
    scientist = users["demo-scientist"]
    validator = users["demo-validator"]
    for model in RegisteredModel.objects.filter(name__in=DEMO_MODELS):
        grant_demo_approvers(users, model)

    churn = _version("churn-predictor", 2)
    if churn is not None and not PromotionRequest.objects.filter(version=churn).exists():
        staging = services.promotion_request_file(
            actor=scientist,
            version=churn,
            to_stage="staging",
            justification="Out-of-time AUC 0.81 on the latest quarter; ready for shadow runs.",
        )
        services.promotion_decide(
            actor=validator,
            request=staging,
            outcome="approve",
            comment="Reproduced the evaluation; metrics and lineage check out.",
        )
        # Approving it needs a model card of this content: modelcards' demo generates one,
        # then demo-validator approves, and demo-risk's approval completes it.
        services.promotion_request_file(
            actor=scientist,
            version=churn,
            to_stage="production",
            justification="Four weeks in staging without drift; replaces the manual rules.",
        )

    credit = _version("credit-scoring", 2)
    if credit is not None and not PromotionRequest.objects.filter(version=credit).exists():
        services.promotion_request_file(
            actor=scientist,
            version=credit,
            to_stage="staging",
            justification="Retrained on 2026 applications; KS improved from 0.51 to 0.52.",
        )


def _version(model_name: str, number: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(model__name=model_name, version=number).first()
