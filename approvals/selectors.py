"""Reads of the approvals workflow: visible requests, the approval queue, policy progress,
evidence gates and the stage history (including which version was where at a given time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import F, OuterRef, Q, QuerySet
from django.utils import timezone

from approvals import gates, workflow
from approvals.defaults import DECIDE_CODENAME
from approvals.models import (
    Outcome,
    PromotionPolicy,
    PromotionRequest,
    RequestStatus,
    StageTransition,
)
from approvals.permissions import SYSTEM_USERNAME, decide_refusal, user_roles
from audit import selectors as audit_selectors
from registry.models import RegisteredModel, Stage
from registry.permissions import can_view_model, object_grants, visibility

REQUEST_RELATED = ("version__model", "version__created_by", "requester", "replaces")


def requests_visible_to(user: Any) -> QuerySet[PromotionRequest]:
    """Requests about versions of the models the user may see."""
    base = PromotionRequest.objects.select_related(*REQUEST_RELATED)
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return base.none()
    condition = visibility(user, "version__model__")
    return base if condition is None else base.filter(condition)


def visible_request(
    user: Any, pk: Any, queryset: QuerySet | None = None
) -> PromotionRequest | None:
    """One request by id if the user may see its model (None otherwise, as if it did not
    exist): one keyed fetch, then the single-object check of registry.permissions."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if queryset is None:
        queryset = PromotionRequest.objects.all()
    request = queryset.select_related(*REQUEST_RELATED).filter(pk=pk).first()
    return request if request is not None and can_view_model(user, request.version.model) else None


def decidable_models(user: Any) -> QuerySet[RegisteredModel]:
    """Models the user is appointed to decide: the decide permission on the model (directly
    or through a group) or an appointment for its business unit."""
    from approvals.models import BusinessUnitAppointment

    if user.is_superuser:
        return RegisteredModel.objects.all()
    units = BusinessUnitAppointment.objects.filter(revoked_at__isnull=True).filter(
        Q(user=user) | Q(group__in=user.groups.all())
    )
    return RegisteredModel.objects.filter(
        object_grants(user, (DECIDE_CODENAME,), OuterRef("pk"))
        | Q(business_unit__in=units.values("business_unit"), business_unit__gt="")
    )


def awaiting(user: Any, *, now: datetime | None = None) -> QuerySet[PromotionRequest]:
    """Pending requests this user may decide now: a role the policy asks for with an open
    slot, appointed for the model (or deciding by the policy's fallback), not filed nor
    authored by them, not decided by them yet, not expired and still about the content and
    stage they were filed on."""
    roles = user_roles(user)
    if not roles:
        return PromotionRequest.objects.none()
    now = now or timezone.now()
    candidates = (
        requests_visible_to(user)
        .filter(
            status=RequestStatus.PENDING,
            expires_at__gt=now,
            content_digest=F("version__content_digest"),
            from_stage=F("version__stage"),
        )
        .exclude(requester=user)
        .exclude(version__created_by=user)
        .exclude(decisions__decider=user)
        .prefetch_related("decisions")
    )
    appointed = set(decidable_models(user).values_list("pk", flat=True))
    ids = [
        r.pk
        for r in candidates
        if (r.version.model_id in appointed or decide_refusal(user, r, r.version) is None)
        and workflow.pick_role(
            r.required, [d.role for d in r.decisions.all() if d.outcome == Outcome.APPROVE], roles
        )
        is not None
    ]
    return requests_visible_to(user).filter(pk__in=ids)


def progress(request: PromotionRequest) -> dict[str, Any]:
    """Each slot of the request's policy (role, filled by whom, when), what remains, and
    whether the quorum is met."""
    approvals = [
        (d.role, d.decider.get_username(), d.decided_at)
        for d in request.decisions.all()
        if d.outcome == Outcome.APPROVE
    ]
    required = request.required
    filled = [role for role, _, _ in approvals]
    return {
        "required": required,
        "slots": [
            {
                "role": slot.role,
                "index": slot.index,
                "filled_by": slot.filled_by,
                "filled_at": slot.filled_at,
            }
            for slot in workflow.slots(required, approvals)
        ],
        "remaining": workflow.remaining(required, filled),
        "complete": workflow.quorum_met(required, filled),
    }


def gate_status(request: PromotionRequest) -> list[gates.GateResult]:
    """The approval gates of the request, evaluated on the version as it is now."""
    return gates.evaluate(request.policy_snapshot.get("approval_gates", []), request.version)


def stage_history(model: RegisteredModel) -> QuerySet[StageTransition]:
    return StageTransition.objects.filter(model=model).select_related("version", "request")


def stages_as_of(model: RegisteredModel, as_of: datetime) -> list[dict[str, Any]]:
    """Each version that existed at `as_of`, with the stage it was in then and since when."""
    last: dict[int, StageTransition] = {}
    for transition in StageTransition.objects.filter(model=model, occurred_at__lte=as_of).order_by(
        "occurred_at", "id"
    ):
        last[transition.version_id] = transition
    rows = []
    for version in model.versions.filter(created_at__lte=as_of).order_by("version"):
        transition = last.get(version.pk)
        rows.append(
            {
                "version": version.version,
                "stage": transition.to_stage if transition else Stage.DEVELOPMENT,
                "since": transition.occurred_at if transition else version.created_at,
            }
        )
    return rows


def decision_blockers(
    user: Any, request: PromotionRequest, *, now: datetime | None = None
) -> dict[str, str]:
    """Why `user` cannot approve, and cannot reject, `request` right now, in plain words ("" for
    each action they may take). The decision service enforces the same rules under its lock;
    this is for explaining them before anyone presses a button."""
    version = request.version
    reason = decide_refusal(user, request, version)
    if not reason and request.status != RequestStatus.PENDING:
        reason = f"This request is {request.status}; it can no longer be decided."
    if not reason and (now or timezone.now()) >= request.expires_at:
        reason = "This request has expired; the requester must file a new one."
    if not reason and version.content_digest != request.content_digest:
        reason = (
            "The version's content changed after this request was filed; it can no longer "
            "be decided. The requester files a new one, which closes this one as superseded."
        )
    if not reason and version.stage != request.from_stage:
        reason = f"The version is now in {version.stage}; this request no longer applies."
    decisions = list(request.decisions.all())
    if not reason and any(d.decider_id == user.pk for d in decisions):
        reason = "You have already decided this request; one person fills one slot."
    if reason:
        return {"approve": reason, "reject": reason}
    filled = [d.role for d in decisions if d.outcome == Outcome.APPROVE]
    if workflow.pick_role(request.required, filled, user_roles(user)) is None:
        waiting = ", ".join(
            f"{n} {r}" for r, n in workflow.remaining(request.required, filled).items() if n
        )
        return {
            "approve": f"The slots your role fills are taken; this request waits for {waiting}.",
            "reject": "",
        }
    return {"approve": "", "reject": ""}


SYSTEM_NAME = "modelgov (system)"


def person_name(user: Any) -> str:
    """A person as documents name them: "Full Name (username)" where the user record has a
    name, else the username; the account the system files its own requests as, "modelgov
    (system)"."""
    if user.get_username() == SYSTEM_USERNAME:
        return SYSTEM_NAME
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    return f"{full} ({user.get_username()})" if full else user.get_username()


def approval_history(version: Any) -> list[dict[str, Any]]:
    """Every promotion request of a version, oldest first, with its decisions — the shape a
    model card's "Approvals" section reads."""
    requests = (
        PromotionRequest.objects.filter(version=version)
        .select_related("requester")
        .prefetch_related("decisions__decider")
        .order_by("created_at", "id")
    )
    return [
        {
            "id": r.pk,
            "from_stage": r.from_stage,
            "to_stage": r.to_stage,
            "status": r.status,
            "requester": r.requester.get_username(),
            "requester_name": person_name(r.requester),
            "created_at": r.created_at,
            "justification": r.justification,
            "content_digest": r.content_digest,
            "closed_at": r.closed_at,
            "closed_reason": r.closed_reason,
            "decisions": [
                {
                    "outcome": d.outcome,
                    "by": d.decider.get_username(),
                    "by_name": person_name(d.decider),
                    "role": d.role,
                    "at": d.decided_at,
                    "comment": d.comment,
                }
                for d in r.decisions.all()
            ],
        }
        for r in requests
    ]


HISTORY_PHRASES = {
    "approvals.promotion_request.filed": "filed the request",
    "approvals.promotion_decision.approved": "approved",
    "approvals.promotion_decision.rejected": "rejected",
    "approvals.promotion_request.cancelled": "cancelled the request",
    "approvals.promotion_request.expired": "the request expired",
    "approvals.promotion_request.superseded": "the request was superseded",
    "approvals.model_version.stage_changed": "changed the stage",
}


def request_history(request: PromotionRequest) -> list[dict[str, Any]]:
    """What happened to a request, in time order and plain words: who did what, when, with
    the comment or reason — read from the audit log (the request's events and the stage
    change it applied)."""
    events = audit_selectors.event_history(
        object_type="approvals.promotionrequest",
        object_id=request.pk,
        also=Q(action="approvals.model_version.stage_changed", changes__request=request.pk),
    )
    rows = []
    for event in events:
        changes = event.changes or {}
        what = HISTORY_PHRASES.get(event.action, event.action)
        details = ""
        if event.action == "approvals.promotion_request.filed":
            what = f"filed the request ({changes.get('from_stage')} → {changes.get('to_stage')})"
            details = changes.get("justification", "")
        elif event.action.startswith("approvals.promotion_decision."):
            what = f"{what} as {changes.get('role', 'approver')}"
            if changes.get("status", [None, None])[1] == workflow.APPROVED:
                what += " — quorum met, request approved"
            details = changes.get("comment", "")
        elif event.action == "approvals.model_version.stage_changed":
            old, new = (changes.get("stage") or ["?", "?"])[:2]
            what = f"moved {event.object_repr} from {old} to {new}"
        else:
            details = changes.get("reason", "")
        rows.append(
            {
                "at": event.occurred_at,
                "who": event.actor_username or SYSTEM_NAME,
                "what": what,
                "details": details,
            }
        )
    return rows


def approval_queue(user: Any) -> tuple[list[PromotionRequest], list[dict[str, Any]]]:
    """The reviewer's queue: the requests they may decide now, and apart from them those they
    could decide but for a failing approval gate (each with the gates named)."""
    ready, blocked = [], []
    pending = (
        awaiting(user)
        .select_related("version__model", "requester")
        .prefetch_related("decisions")
        .order_by("expires_at", "id")
    )
    for request in pending:
        failed = gates.failures(request.policy_snapshot.get("approval_gates", []), request.version)
        if failed:
            blocked.append({"request": request, "gates": failed})
        else:
            ready.append(request)
    return ready, blocked


def outstanding(request: PromotionRequest) -> str:
    """The slots still open, e.g. "1 risk-officer"."""
    filled = [d.role for d in request.decisions.all() if d.outcome == Outcome.APPROVE]
    left = workflow.remaining(request.required, filled)
    return ", ".join(f"{n} {role}" for role, n in sorted(left.items()) if n) or "none"


def policies_for(version: Any) -> list[dict[str, Any]]:
    """For each stage the version may be moved to next, the policy a request would be filed
    under: approvals it needs, and the gates to file and to approve, each with whether it
    holds for the version now (the filing page shows them before anything is filed)."""
    policies = {
        policy.to_stage: policy
        for policy in PromotionPolicy.objects.filter(
            risk_tier=version.model.risk_tier,
            to_stage__in=workflow.allowed_targets(version.stage),
        )
    }
    return [
        {
            "to_stage": stage,
            "required": ", ".join(
                f"{count} {role}" for role, count in sorted(policy.required_approvals.items())
            ),
            "filing_gates": gates.evaluate(policy.filing_gates, version),
            "approval_gates": gates.evaluate(policy.approval_gates, version),
            "expiry_days": policy.expiry_days,
        }
        for stage in workflow.allowed_targets(version.stage)
        if (policy := policies.get(stage)) is not None
    ]
