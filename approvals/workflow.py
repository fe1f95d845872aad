"""The promotion workflow as plain data and arithmetic: the transition table, request states,
the default policies and quorum counting. No database and no Django models here, so every
rule can be read in one place and tested without a database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# --- stages and the transition table ---------------------------------------------------------

DEVELOPMENT = "development"
STAGING = "staging"
PRODUCTION = "production"
ARCHIVED = "archived"
STAGES = (DEVELOPMENT, STAGING, PRODUCTION, ARCHIVED)

PROMOTION = "promotion"
WITHDRAWAL = "withdrawal"
ROLLBACK = "rollback"
REVALIDATION = "re-validation"

# The one list of allowed stage changes: (from, to) → kind. Anything else is refused (409).
# A version leaving production because another one replaced it is archived as part of that
# other promotion (same transaction), not through a request of its own.
TRANSITIONS: dict[tuple[str, str], str] = {
    (DEVELOPMENT, STAGING): PROMOTION,
    (STAGING, PRODUCTION): PROMOTION,
    (PRODUCTION, ARCHIVED): WITHDRAWAL,
    (ARCHIVED, PRODUCTION): ROLLBACK,
    (ARCHIVED, STAGING): REVALIDATION,
    # Monitoring found the production version out of bounds: back to staging, if approved.
    (PRODUCTION, STAGING): REVALIDATION,
}
# Stages a request may target; one policy per (target stage, risk tier).
TARGET_STAGES = (STAGING, PRODUCTION, ARCHIVED)


class TransitionRefused(Exception):
    """A stage change that the transition table does not list."""


def allowed_targets(from_stage: str) -> list[str]:
    return [to for (frm, to) in TRANSITIONS if frm == from_stage]


def transition_kind(from_stage: str, to_stage: str) -> str:
    """The kind of an allowed transition; TransitionRefused for anything else."""
    kind = TRANSITIONS.get((from_stage, to_stage))
    if kind is None:
        targets = allowed_targets(from_stage)
        allowed = ", ".join(targets) if targets else "nothing"
        raise TransitionRefused(
            f"A version in {from_stage} cannot move to {to_stage}; from {from_stage} it may "
            f"move to: {allowed}."
        )
    return kind


# --- request states ---------------------------------------------------------------------------

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
CANCELLED = "cancelled"
EXPIRED = "expired"
SUPERSEDED = "superseded"
REQUEST_STATUSES = (PENDING, APPROVED, REJECTED, CANCELLED, EXPIRED, SUPERSEDED)
# Only a pending request changes; every other status is final.
REQUEST_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, CANCELLED, EXPIRED, SUPERSEDED}),
}


def can_change_status(current: str, new: str) -> bool:
    return new in REQUEST_STATUS_TRANSITIONS.get(current, frozenset())


# --- roles and default policies ---------------------------------------------------------------

VALIDATOR = "model-validator"
RISK_OFFICER = "risk-officer"
# Roles that may fill approval slots, in the order slots are listed and filled.
APPROVER_ROLES = (VALIDATOR, RISK_OFFICER)
MAX_PER_ROLE = 5

TIERS = ("low", "medium", "high", "critical")
GATES_PRODUCTION = ["training_lineage", "metrics_present", "model_card_fields"]
GATES_STAGING = ["metrics_present"]
# Registered by the modelcards app: approvers decide on a generated card of the very content
# they approve (a policy naming it without that app installed fails closed).
MODEL_CARD_GATE = "model_card_current"


def _policy(
    required: dict[str, int], gates: list[str], expiry_days: int, approve_also: tuple = ()
) -> dict[str, Any]:
    return {
        "required_approvals": dict(required),
        "filing_gates": list(gates),
        "approval_gates": [*gates, *approve_also],
        "expiry_days": expiry_days,
    }


def _production(required: dict[str, int]) -> dict[str, Any]:
    return _policy(required, GATES_PRODUCTION, 30, approve_also=(MODEL_CARD_GATE,))


DEFAULT_POLICIES: dict[tuple[str, str], dict[str, Any]] = {
    **{(STAGING, tier): _policy({VALIDATOR: 1}, GATES_STAGING, 30) for tier in TIERS},
    (PRODUCTION, "low"): _production({VALIDATOR: 1, RISK_OFFICER: 1}),
    (PRODUCTION, "medium"): _production({VALIDATOR: 1, RISK_OFFICER: 1}),
    (PRODUCTION, "high"): _production({VALIDATOR: 2, RISK_OFFICER: 1}),
    (PRODUCTION, "critical"): _production({VALIDATOR: 1, RISK_OFFICER: 2}),
    **{(ARCHIVED, tier): _policy({RISK_OFFICER: 1}, [], 7) for tier in TIERS},
}


def required_errors(required: Any) -> list[str]:
    """What is wrong with a `required_approvals` mapping (empty list when it is valid)."""
    if not isinstance(required, Mapping):
        return ["Must be an object mapping a role to a number of approvals."]
    errors = []
    for role, count in required.items():
        if role not in APPROVER_ROLES:
            errors.append(f"Unknown approver role '{role}'; use {' or '.join(APPROVER_ROLES)}.")
        if isinstance(count, bool) or not isinstance(count, int):
            errors.append(f"The count for '{role}' must be a whole number.")
        elif not 0 <= count <= MAX_PER_ROLE:
            errors.append(f"The count for '{role}' must be between 0 and {MAX_PER_ROLE}.")
    if not errors and sum(required.values()) < 1:
        errors.append("At least one approval must be required.")
    return errors


# --- quorum arithmetic --------------------------------------------------------------------------


def ordered_roles(required: Mapping[str, int]) -> list[str]:
    """Roles of a policy in slot order (approver roles first, then any other, sorted)."""
    known = [r for r in APPROVER_ROLES if r in required]
    return known + sorted(r for r in required if r not in APPROVER_ROLES)


def remaining(required: Mapping[str, int], filled_roles: Iterable[str]) -> dict[str, int]:
    """Open slots per role, given the roles of the approvals recorded so far."""
    filled = Counter(filled_roles)
    return {
        role: max(0, required[role] - filled[role])
        for role in ordered_roles(required)
        if required[role] > 0
    }


def quorum_met(required: Mapping[str, int], filled_roles: Iterable[str]) -> bool:
    return not any(remaining(required, filled_roles).values())


def pick_role(
    required: Mapping[str, int], filled_roles: Iterable[str], person_roles: Iterable[str]
) -> str | None:
    """The slot role a person's approval fills: the first role (in slot order) that they hold
    and that still has an open slot; None when none does. One approval fills one slot."""
    held = set(person_roles)
    for role, open_slots in remaining(required, filled_roles).items():
        if open_slots and role in held:
            return role
    return None


@dataclass(frozen=True)
class Slot:
    role: str
    index: int
    filled_by: str | None = None
    filled_at: Any = None


def slots(required: Mapping[str, int], approvals: Sequence[tuple[str, str, Any]]) -> list[Slot]:
    """Every slot of a policy, filled in order by approvals given as (role, who, when)."""
    by_role: dict[str, list[tuple[str, Any]]] = {}
    for role, who, when in approvals:
        by_role.setdefault(role, []).append((who, when))
    out = []
    for role in ordered_roles(required):
        filled = by_role.get(role, [])
        for index in range(required[role]):
            who, when = filled[index] if index < len(filled) else (None, None)
            out.append(Slot(role=role, index=index + 1, filled_by=who, filled_at=when))
    return out
