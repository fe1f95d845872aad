"""Every write of the promotion workflow — the only code that changes a model version's stage
— and of who may decide it (approvers appointed per model or business unit, the system
account).

Each service takes keyword arguments and an explicit actor, runs in one transaction, checks
permissions inside, and records one audit event per committed change:

- filing, cancelling, rejecting, expiring, superseding: one event each;
- an approval: one event for the decision (which, when it completes the quorum, also records
  the request becoming approved), plus one `approvals.model_version.stage_changed` event per
  version whose stage the quorum changed — the promoted version, and the version it took
  out of production when there was one.

State changes happen under row locks (request → model → versions, always in that order) and
conditional updates, re-checked inside the lock; a change that lost a race is a Conflict
(409). Notifications are queued after commit.

On PostgreSQL triggers refuse any change of `registry_modelversion.stage` that is not the
consequence of a request approved in the same transaction, and any change of a request's
status that the workflow does not allow (migration approvals/0005).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import gates, workflow
from approvals.defaults import DECIDE_CODENAME
from approvals.models import (
    BusinessUnitAppointment,
    Outcome,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RequestStatus,
    StageTransition,
)
from approvals.permissions import (
    SYSTEM_USERNAME,
    decide_refusal,
    is_system_account,
    may_file,
    roles_short_of_deciders,
    user_roles,
)
from audit.services import audit_record
from core.errors import Conflict
from registry.models import ModelVersion, RegisteredModel, Stage
from registry.permissions import can_view_model, grantee_label
from registry.services import object_permission_assign, object_permission_remove

logger = logging.getLogger(__name__)

MAX_TEXT = 10_000
POLICY_FIELDS = (
    "required_approvals",
    "filing_gates",
    "approval_gates",
    "expiry_days",
    "fallback",
)


# --- shared mechanics ------------------------------------------------------------------------


def _on_commit(task: Any, *args: Any) -> None:
    """Queue a task once the transaction commits; a failure to queue is logged, never raised
    into the request that already committed."""
    transaction.on_commit(partial(task.delay, *args), robust=True)


def _text(value: Any, field: str, what: str) -> str:
    text = (value or "").strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError({field: f"{what} is required."}, code="required")
    if len(text) > MAX_TEXT:
        raise ValidationError({field: f"At most {MAX_TEXT} characters."}, code="max_length")
    return text


def _close(request: PromotionRequest, status: str, reason: str, now: datetime) -> None:
    """Move a pending request to a final status (conditional update under the row lock)."""
    if not workflow.can_change_status(request.status, status):
        raise Conflict(f"This request is {request.status}; it cannot become {status}.")
    updated = PromotionRequest.objects.filter(pk=request.pk, status=RequestStatus.PENDING).update(
        status=status, closed_at=now, closed_reason=reason[:500]
    )
    if updated != 1:
        raise Conflict("This request changed meanwhile; reload it.", code="not_pending")
    request.status, request.closed_at, request.closed_reason = status, now, reason[:500]


def basis_changed(request: PromotionRequest, version: ModelVersion) -> str:
    """Why a pending request no longer applies to its version ("" while it does): the
    version's content changed, or its stage, after the request was filed."""
    if version.content_digest != request.content_digest:
        return (
            "The version's content changed after this request was filed "
            f"(digest {request.content_digest[:12]}… is now {version.content_digest[:12]}…)."
        )
    if version.stage != request.from_stage:
        return (
            f"The version moved from {request.from_stage} to {version.stage} after this "
            "request was filed."
        )
    return ""


def _supersede(
    request: PromotionRequest, reason: str, now: datetime, actor: Any = None
) -> Conflict:
    """Close a request whose basis changed; the Conflict to raise once this is committed."""
    _close(request, RequestStatus.SUPERSEDED, reason, now)
    audit_record(
        actor=actor,
        action="approvals.promotion_request.superseded",
        target=request,
        changes={"status": [workflow.PENDING, workflow.SUPERSEDED], "reason": reason},
    )
    return Conflict(f"{reason} The request is superseded; file a new one.", code="superseded")


def _policy_for(to_stage: str, risk_tier: str) -> PromotionPolicy:
    policy = PromotionPolicy.objects.filter(to_stage=to_stage, risk_tier=risk_tier).first()
    if policy is None:
        raise Conflict(
            f"No promotion policy covers moves to {to_stage} for {risk_tier}-risk models; "
            "an administrator must define one.",
            code="no_policy",
        )
    return policy


def _gate_conflict(failed: list[gates.GateResult], doing: str) -> Conflict:
    details = " ".join(f"{r.label}: {r.message}" for r in failed)
    return Conflict(f"Cannot {doing}: the evidence is incomplete. {details}", code="gate_failed")


# --- filing -----------------------------------------------------------------------------------


CANCEL_REFUSED = "Only the person who filed this request may cancel it."


def file_refused(model: RegisteredModel) -> str:
    """Why someone who sees the model may not file promotions of its versions."""
    return (
        f"You may not file promotions of model '{model.name}': its owner, users granted "
        "change permission on it and its approvers may."
    )


@transaction.atomic
def promotion_request_file(
    *, actor: AbstractBaseUser, version: ModelVersion, to_stage: str, justification: str
) -> PromotionRequest:
    """File a request to move `version` to `to_stage` under the policy for its risk tier.

    The policy (required approvals, gates, expiry) and the version's content digest are
    snapshotted: later policy edits do not change a filed request, and a content change
    supersedes it.
    """
    version = (
        ModelVersion.objects.select_for_update(no_key=True)
        .select_related("model")
        .get(pk=version.pk)
    )
    model = version.model
    sees = can_view_model(actor, model) or is_system_account(actor)
    if not sees or not may_file(actor, version):
        raise PermissionDenied(file_refused(model))
    justification = _text(justification, "justification", "A justification")
    if to_stage not in workflow.STAGES:
        raise ValidationError({"to_stage": f"Unknown stage '{to_stage}'."}, code="invalid_choice")
    try:
        workflow.transition_kind(version.stage, to_stage)
    except workflow.TransitionRefused as exc:
        raise Conflict(str(exc), code="transition_refused", field="to_stage") from exc
    if model.archived:
        raise Conflict(f"Model '{model.name}' is archived; its versions are not promoted.")
    pending = (
        PromotionRequest.objects.select_for_update(no_key=True)
        .filter(version=version, status=RequestStatus.PENDING)
        .first()
    )
    if pending is not None and basis_changed(pending, version):
        # it can no longer be decided: the new request replaces it (was: refused until it
        # expired or its requester cancelled it)
        _supersede(pending, basis_changed(pending, version), timezone.now(), actor)
        pending = None
    if pending is not None:
        raise Conflict(
            f"{version} already has a pending request (#{pending.pk}); it must be decided, "
            "cancelled or expire first.",
            code="pending_exists",
        )
    policy = _policy_for(to_stage, model.risk_tier)
    failed = gates.failures(policy.filing_gates, version)
    if failed:
        raise _gate_conflict(failed, "file this request")
    replaces = None
    if to_stage == Stage.PRODUCTION:
        replaces = (
            ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION)
            .exclude(pk=version.pk)
            .first()
        )
    now = timezone.now()
    request = PromotionRequest(
        version=version,
        from_stage=version.stage,
        to_stage=to_stage,
        requester=actor,
        justification=justification,
        policy_snapshot=policy.snapshot(),
        content_digest=version.content_digest,
        replaces=replaces,
        expires_at=now + timedelta(days=policy.expiry_days),
    )
    _require_someone_can_decide(request, version)
    try:
        with transaction.atomic():
            request.save()
    except IntegrityError as exc:  # another filing for this version won the race
        raise Conflict(f"{version} already has a pending request.", code="pending_exists") from exc
    audit_record(
        actor=actor,
        action="approvals.promotion_request.filed",
        target=request,
        changes={
            "version": str(version),
            "from_stage": request.from_stage,
            "to_stage": to_stage,
            "kind": workflow.transition_kind(request.from_stage, to_stage),
            "content_digest": request.content_digest,
            "policy": request.policy_snapshot,
            "replaces": str(replaces) if replaces else None,
            "expires_at": request.expires_at.isoformat(),
            "justification": justification,
        },
    )
    from approvals.tasks import notify_request_filed

    _on_commit(notify_request_filed, request.pk)
    return request


def _require_someone_can_decide(request: PromotionRequest, version: ModelVersion) -> None:
    """Refuse (409) a request that could never be decided: a role it needs has no one who may
    decide it, or fewer people than its slots (one person fills one slot), among those
    appointed for the model, or the role's members where the policy falls back to them;
    never counting the requester nor the version's creator."""
    short = roles_short_of_deciders(request, version)
    if not short:
        return
    model = version.model
    unit = f" or its business unit '{model.business_unit}'" if model.business_unit else ""
    how = (
        f'`manage.py appoint_approver --user NAME {model.name}` or `--business-unit "'
        f'{model.business_unit}"`'
        if model.business_unit
        else f"`manage.py appoint_approver --user NAME {model.name}`"
    )
    nobody = [found.roles[0] for found in short if found.people == 0]
    if nobody:
        roles = " and ".join(f"'{r}'" for r in nobody)
        raise Conflict(
            f"No one can decide this request: the role {roles} has no appointed approver for "
            f"model '{model.name}'{unit} other than the requester and the version's creator, "
            f"and no one else may decide for it. An administrator appoints one with {how}.",
            code="no_approver",
            field="to_stage",
        )
    found = short[0]
    roles = " and ".join(f"'{r}'" for r in found.roles)
    raise Conflict(
        f"This request could never be decided: the role{'s' if len(found.roles) > 1 else ''} "
        f"{roles} need{'' if len(found.roles) > 1 else 's'} {found.slots} approvals"
        f"{' together' if len(found.roles) > 1 else ''}, and only {found.people} "
        f"{'person' if found.people == 1 else 'people'} may give one for model "
        f"'{model.name}'{unit} (one person fills one slot; neither the requester nor the "
        f"version's creator counts). An administrator appoints more with {how}.",
        code="no_approver",
        field="to_stage",
    )


# --- deciding ---------------------------------------------------------------------------------


def promotion_decide(
    *, actor: AbstractBaseUser, request: PromotionRequest, outcome: str, comment: str
) -> PromotionDecision:
    """Approve or reject a pending request; the approval that meets the quorum applies the
    transition in the same transaction.

    Refusals: 403 for who the actor is (the requester, the version's creator, no role, no
    object permission); 409 for what the request's state forbids (not pending, already
    decided by this person, no open slot for their roles, evidence gates failing). An expired
    request, a request whose version content changed since filing, and a production request
    overtaken by another version reaching production are closed (expired / superseded) —
    that change is committed — and the decision is then refused with 409.
    """
    decision, refusal = _decide(
        actor=actor, request_id=request.pk, outcome=outcome, comment=comment
    )
    if refusal is not None:
        raise refusal
    return decision


@transaction.atomic
def _decide(
    *, actor: AbstractBaseUser, request_id: int, outcome: str, comment: str
) -> tuple[PromotionDecision | None, Conflict | None]:
    if outcome not in Outcome.values:
        raise ValidationError({"outcome": "Must be approve or reject."}, code="invalid_choice")
    comment = _text(comment, "comment", "A comment")
    # Locks in the order request → model → version; the request's row lock alone, with its
    # version's model id read in the same statement.
    request = (
        PromotionRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("version")
        .get(pk=request_id)
    )
    model = RegisteredModel.objects.select_for_update(no_key=True).get(pk=request.version.model_id)
    version = ModelVersion.objects.select_for_update(no_key=True).get(pk=request.version_id)
    version.model = model
    request.version = version
    if not can_view_model(actor, model):
        raise PermissionDenied("You may not see this model.")
    refusal = decide_refusal(actor, request, version)
    if refusal is not None:
        raise PermissionDenied(refusal)
    if request.status != RequestStatus.PENDING:
        raise Conflict(
            f"This request is already {request.status}; it can no longer be decided.",
            code="not_pending",
        )
    now = timezone.now()
    if now >= request.expires_at:
        _close(request, RequestStatus.EXPIRED, "Not decided before it expired.", now)
        audit_record(
            actor=None,
            action="approvals.promotion_request.expired",
            target=request,
            changes={
                "status": [workflow.PENDING, workflow.EXPIRED],
                "noticed_by": actor.get_username(),
            },
        )
        return None, Conflict(
            f"This request expired at {request.expires_at:%Y-%m-%d %H:%M} UTC; file a new one.",
            code="expired",
        )
    changed = basis_changed(request, version)
    if changed:
        return None, _supersede(request, changed, now, actor)
    decided = list(request.decisions.values_list("decider_id", "outcome", "role"))
    if any(decider_id == actor.pk for decider_id, _, _ in decided):
        raise Conflict(
            "You have already decided this request; one person fills one slot.",
            code="already_decided",
        )
    required = request.required
    approvals = [role for _, outcome, role in decided if outcome == Outcome.APPROVE]
    roles = user_roles(actor)
    if outcome == Outcome.REJECT:
        role = next(r for r in workflow.ordered_roles(required) if r in roles and required[r])
        return _reject(actor, request, version, role, comment, now), None

    role = workflow.pick_role(required, approvals, roles)
    if role is None:
        open_slots = {r: n for r, n in workflow.remaining(required, approvals).items() if n}
        waiting = ", ".join(f"{n} {r}" for r, n in open_slots.items())
        raise Conflict(
            f"The slots your role fills are taken; this request waits for {waiting}.",
            code="slot_filled",
        )
    failed = gates.failures(request.policy_snapshot.get("approval_gates", []), version)
    if failed:
        raise _gate_conflict(failed, "approve")
    final = workflow.quorum_met(required, [*approvals, role])
    if final and request.to_stage == Stage.PRODUCTION:
        current = _production_version(model, exclude=version)
        if current is not None and current.pk != request.replaces_id:
            return None, _supersede(
                request,
                f"Version {current.version} of '{model.name}' reached production after this "
                "request was filed; approvers have not weighed replacing it.",
                now,
                actor,
            )
    decision = PromotionDecision.objects.create(
        request=request,
        decider=actor,
        outcome=Outcome.APPROVE,
        role=role,
        comment=comment,
        content_digest=version.content_digest,
        decided_at=now,
    )
    changes: dict[str, Any] = {
        "decision": decision.pk,
        "outcome": Outcome.APPROVE,
        "role": role,
        "comment": comment,
        "content_digest": version.content_digest,
        "remaining": workflow.remaining(required, [*approvals, role]),
    }
    if final:
        _close(request, RequestStatus.APPROVED, "Quorum met.", now)
        changes["status"] = [workflow.PENDING, workflow.APPROVED]
    audit_record(
        actor=actor,
        action="approvals.promotion_decision.approved",
        target=request,
        changes=changes,
    )
    if final:
        _apply_transition(actor, request, model, version, now)
        from approvals.tasks import notify_request_decided

        _on_commit(notify_request_decided, request.pk)
    return decision, None


def _reject(
    actor: Any,
    request: PromotionRequest,
    version: ModelVersion,
    role: str,
    comment: str,
    now: datetime,
) -> PromotionDecision:
    decision = PromotionDecision.objects.create(
        request=request,
        decider=actor,
        outcome=Outcome.REJECT,
        role=role,
        comment=comment,
        content_digest=version.content_digest,
        decided_at=now,
    )
    _close(request, RequestStatus.REJECTED, f"Rejected by {actor.get_username()}.", now)
    audit_record(
        actor=actor,
        action="approvals.promotion_decision.rejected",
        target=request,
        changes={
            "decision": decision.pk,
            "outcome": Outcome.REJECT,
            "role": role,
            "comment": comment,
            "content_digest": version.content_digest,
            "status": [workflow.PENDING, workflow.REJECTED],
        },
    )
    from approvals.tasks import notify_request_decided

    _on_commit(notify_request_decided, request.pk)
    return decision


def _production_version(model: RegisteredModel, exclude: ModelVersion) -> ModelVersion | None:
    return (
        ModelVersion.objects.select_for_update(no_key=True)
        .filter(model=model, stage=Stage.PRODUCTION)
        .exclude(pk=exclude.pk)
        .first()
    )


def _apply_transition(
    actor: Any,
    request: PromotionRequest,
    model: RegisteredModel,
    version: ModelVersion,
    now: datetime,
) -> None:
    """Change the stage (archiving the model's previous production version first)."""
    if request.to_stage == Stage.PRODUCTION:
        previous = _production_version(model, exclude=version)
        if previous is not None:
            _set_stage(actor, previous, Stage.ARCHIVED, request, now)
            stale = PromotionRequest.objects.select_for_update(no_key=True).filter(
                version=previous, status=RequestStatus.PENDING
            )
            for other in stale:
                _supersede(
                    other,
                    f"Version {version.version} replaced this version in production.",
                    now,
                    actor,
                )
    _set_stage(actor, version, request.to_stage, request, now)


def _set_stage(
    actor: Any, version: ModelVersion, to_stage: str, request: PromotionRequest, now: datetime
) -> None:
    from_stage = version.stage
    try:
        with transaction.atomic():
            updated = ModelVersion.objects.filter(pk=version.pk, stage=from_stage).update(
                stage=to_stage, updated_at=now
            )
    except IntegrityError as exc:  # one_production_version_per_model
        raise Conflict(
            f"Another version of '{version.model.name}' is in production; one production "
            "version per model.",
            code="production_taken",
        ) from exc
    if updated != 1:
        raise Conflict(f"{version} changed stage meanwhile; reload it.", code="stage_changed")
    version.stage = to_stage
    StageTransition.objects.create(
        version=version,
        model_id=version.model_id,
        from_stage=from_stage,
        to_stage=to_stage,
        request=request,
        occurred_at=now,
    )
    audit_record(
        actor=actor,
        action="approvals.model_version.stage_changed",
        target=version,
        changes={"stage": [from_stage, to_stage], "request": request.pk},
    )


# --- cancelling and expiring -------------------------------------------------------------------


@transaction.atomic
def promotion_request_cancel(
    *, actor: AbstractBaseUser, request: PromotionRequest, reason: str = ""
) -> PromotionRequest:
    """The requester withdraws their pending request."""
    request = PromotionRequest.objects.select_for_update(no_key=True).get(pk=request.pk)
    if request.requester_id != getattr(actor, "pk", None):
        raise PermissionDenied(CANCEL_REFUSED)
    if request.status != RequestStatus.PENDING:
        raise Conflict(
            f"This request is already {request.status}; only a pending request can be cancelled.",
            code="not_pending",
        )
    reason = (reason or "").strip()[:500]
    _close(
        request, RequestStatus.CANCELLED, reason or "Cancelled by the requester.", timezone.now()
    )
    audit_record(
        actor=actor,
        action="approvals.promotion_request.cancelled",
        target=request,
        changes={"status": [workflow.PENDING, workflow.CANCELLED], "reason": reason},
    )
    return request


def promotion_requests_expire(*, actor: Any = None, now: datetime | None = None) -> int:
    """Expire every pending request past its expiry, each in its own transaction (one audit
    event each); returns how many expired. Run by Celery beat; safe to run concurrently."""
    now = now or timezone.now()
    due = PromotionRequest.objects.filter(
        status=RequestStatus.PENDING, expires_at__lte=now
    ).values_list("pk", flat=True)
    return sum(_expire_one(actor, pk, now) for pk in list(due))


@transaction.atomic
def _expire_one(actor: Any, request_id: int, now: datetime) -> int:
    request = (
        PromotionRequest.objects.select_for_update(no_key=True)
        .filter(pk=request_id, status=RequestStatus.PENDING, expires_at__lte=now)
        .first()
    )
    if request is None:  # decided or expired meanwhile
        return 0
    _close(request, RequestStatus.EXPIRED, "Not decided before it expired.", now)
    audit_record(
        actor=actor,
        action="approvals.promotion_request.expired",
        target=request,
        changes={"status": [workflow.PENDING, workflow.EXPIRED]},
    )
    return 1


# --- policies ----------------------------------------------------------------------------------


def _gate_list_errors(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ["Must be a list of gate names."]
    known = gates.known_gates()
    errors = [
        f"Unknown gate '{v}'; known: {', '.join(sorted(known))}." for v in value if v not in known
    ]
    if len(set(value)) != len(value):
        errors.append("A gate is listed twice.")
    return errors


@transaction.atomic
def policy_update(
    *, actor: AbstractBaseUser, policy: PromotionPolicy, data: Mapping[str, Any]
) -> PromotionPolicy:
    """Edit a policy's required approvals, gates or expiry (audited). Requests already filed
    keep the snapshot they were filed under."""
    if not getattr(actor, "is_authenticated", False) or not actor.has_perm(
        "approvals.change_promotionpolicy"
    ):
        raise PermissionDenied("You may not change promotion policies.")
    unknown = sorted(set(data) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({k: "This field cannot be changed here." for k in unknown})
    policy = PromotionPolicy.objects.select_for_update().get(pk=policy.pk)
    errors: dict[str, list[str]] = {}
    if "required_approvals" in data:
        if problems := workflow.required_errors(data["required_approvals"]):
            errors["required_approvals"] = problems
    for field in ("filing_gates", "approval_gates"):
        if field in data and (problems := _gate_list_errors(data[field])):
            errors[field] = problems
    if "fallback" in data and data["fallback"] not in ("role", "none"):
        errors["fallback"] = ["Must be 'role' (every member of the role) or 'none'."]
    if "expiry_days" in data:
        days = data["expiry_days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
            errors["expiry_days"] = ["Must be a whole number of days from 1 to 365."]
    if errors:
        raise ValidationError(errors)
    changes = {}
    for field in POLICY_FIELDS:
        if field in data and getattr(policy, field) != data[field]:
            changes[field] = [getattr(policy, field), data[field]]
            setattr(policy, field, data[field])
    if not changes:
        return policy
    policy.save()
    audit_record(
        actor=actor, action="approvals.promotion_policy.updated", target=policy, changes=changes
    )
    return policy


# --- approvers and the system account ---------------------------------------------------


def system_account() -> Any:
    """The account the system files its own requests as (approvals.permissions describes
    it), created on first use. Not audited: it is no one's change."""
    user, created = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": True, "is_staff": False, "first_name": "modelgov"},
    )
    if created:
        user.set_unusable_password()
        user.last_name = "(system)"
        user.save(update_fields=["password", "last_name"])
    return user


def _require_superuser(actor: Any) -> None:
    """A superuser, or None for the command line (whoever runs manage.py is trusted)."""
    if actor is None:
        return
    if not (getattr(actor, "is_authenticated", False) and actor.is_superuser):
        raise PermissionDenied("Only an administrator (superuser) may appoint approvers.")


def decide_permission_grant(
    *, actor: Any, model: RegisteredModel, grantee: AbstractBaseUser | Group
) -> None:
    """Let a user or group decide the promotions of one model (administrators only: the
    model's owners choosing their own approvers would defeat independence)."""
    _require_superuser(actor)
    object_permission_assign(
        actor=actor,
        model=model,
        grantee=grantee,
        codename=DECIDE_CODENAME,
        already=f"{grantee_label(grantee)} may already decide promotions of this model.",
    )


def decide_permission_revoke(
    *, actor: Any, model: RegisteredModel, grantee: AbstractBaseUser | Group
) -> None:
    """Withdraw a grant made with decide_permission_grant (administrators only)."""
    _require_superuser(actor)
    object_permission_remove(
        actor=actor,
        model=model,
        grantee=grantee,
        codename=DECIDE_CODENAME,
        missing=f"{grantee_label(grantee)} holds no grant to decide promotions of this model.",
    )


@transaction.atomic
def business_unit_appointment_grant(
    *, actor: Any, business_unit: str, grantee: AbstractBaseUser | Group
) -> Any:
    """Let a user or group decide the promotions of every model of a business unit, now and
    later (administrators only). Audited."""
    _require_superuser(actor)
    business_unit = business_unit.strip()
    if not business_unit:
        raise ValidationError({"business_unit": "Name a business unit."})
    who = {"group": grantee} if isinstance(grantee, Group) else {"user": grantee}
    active = BusinessUnitAppointment.objects.filter(revoked_at__isnull=True)
    if active.filter(business_unit=business_unit, **who).exists():
        raise Conflict(
            f"{grantee_label(grantee)} is already appointed for business unit '{business_unit}'."
        )
    appointment = BusinessUnitAppointment.objects.create(business_unit=business_unit, **who)
    audit_record(
        actor=actor,
        action="approvals.business_unit_appointment.granted",
        target=appointment,
        changes={"business_unit": business_unit, "grantee": grantee_label(grantee)},
    )
    return appointment


@transaction.atomic
def business_unit_appointment_revoke(
    *, actor: Any, business_unit: str, grantee: AbstractBaseUser | Group
) -> None:
    """Withdraw a business-unit appointment (administrators only). Audited; the row stays,
    marked revoked."""
    _require_superuser(actor)
    who = {"group": grantee} if isinstance(grantee, Group) else {"user": grantee}
    appointment = (
        BusinessUnitAppointment.objects.select_for_update()
        .filter(business_unit=business_unit.strip(), revoked_at__isnull=True, **who)
        .first()
    )
    if appointment is None:
        raise Conflict(
            f"{grantee_label(grantee)} is not appointed for business unit '{business_unit}'."
        )
    audit_record(
        actor=actor,
        action="approvals.business_unit_appointment.revoked",
        target=appointment,
        changes={"business_unit": appointment.business_unit, "grantee": grantee_label(grantee)},
    )
    appointment.revoked_at = timezone.now()
    appointment.save(update_fields=["revoked_at"])
