"""Demo model card for `manage.py seed_demo`: demo-validator generates the card of
churn-predictor v2 (rendered here, in-process) and, having read it, approves the pending
production request; demo-risk's approval completes it. Idempotent: with a card of the current
content, or a decision by demo-validator already there, nothing new is made."""

from approvals import services as approvals
from approvals.models import PromotionRequest, RequestStatus
from modelcards import selectors, services
from registry.models import ModelVersion


def seed(users: dict) -> None:
    validator = users["demo-validator"]
    version = ModelVersion.objects.filter(model__name="churn-predictor", version=2).first()
    if version is None:
        return
    if selectors.ready_card(version) is None:
        card, _ = services.model_card_request(actor=validator, version=version)
        services.model_card_render(card_id=card.pk)
    pending = PromotionRequest.objects.filter(
        version=version, to_stage="production", status=RequestStatus.PENDING
    ).first()
    if pending is not None and not pending.decisions.filter(decider=validator).exists():
        approvals.promotion_decide(
            actor=validator,
            request=pending,
            outcome="approve",
            comment="Read the model card; staging results match validation, no drift alerts.",
        )
