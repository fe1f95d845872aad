"""Demo model card for `manage.py seed_demo`: demo-validator generates the card of
churn-predictor v2 (rendered here, in-process) and, having read it, approves the pending
production request; demo-risk's approval completes it. Idempotent: with a card of the current
content, or a decision by demo-validator already there, nothing new is made.

credit-limit v1 (see oversight.demo) is carried to production here, where its approval needs
a card; then oversight's monitoring history is added and a final card documents it all."""

from approvals import services as approvals
from approvals.models import PromotionRequest, RequestStatus
from modelcards import selectors, services
from oversight import demo as oversight_demo
from registry.models import ModelVersion


def seed(users: dict) -> None:
    _churn(users)
    _credit_limit(users)


def _churn(users: dict) -> None:
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


def _credit_limit(users: dict) -> None:
    validator, risk = users["demo-validator"], users["demo-risk"]
    version = ModelVersion.objects.filter(model__name=oversight_demo.MODEL, version=1).first()
    if version is None:
        return
    pending = PromotionRequest.objects.filter(
        version=version, to_stage="production", status=RequestStatus.PENDING
    ).first()
    if pending is not None and version.stage == "staging":
        if selectors.ready_card(version) is None:
            card, _ = services.model_card_request(actor=validator, version=version)
            services.model_card_render(card_id=card.pk)
        for approver, comment in (
            (validator, "Validation report and card reviewed; conditions of use accepted."),
            (risk, "Residual risk acceptable under the conditions of use."),
        ):
            approvals.promotion_decide(
                actor=approver, request=pending, outcome="approve", comment=comment
            )
        version.refresh_from_db()
    oversight_demo.seed_production(users)
    # The card of record: validation, monitoring, the alert and the re-validation request.
    latest = selectors.ready_card(version)
    if (
        latest is None
        or latest.created_at < version.monitoring_alerts.latest("opened_at").opened_at
    ):
        card, _ = services.model_card_request(actor=risk, version=version, force=True)
        services.model_card_render(card_id=card.pk)
