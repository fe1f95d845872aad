"""The pure workflow module: transition table, request states, default policies and quorum
arithmetic — no database."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals import workflow
from approvals.workflow import ARCHIVED, DEVELOPMENT, PRODUCTION, STAGING

RO, VAL = workflow.RISK_OFFICER, workflow.VALIDATOR


def test_transition_table_lists_exactly_the_allowed_moves():
    assert workflow.TRANSITIONS == {
        (DEVELOPMENT, STAGING): "promotion",
        (STAGING, PRODUCTION): "promotion",
        (PRODUCTION, ARCHIVED): "withdrawal",
        (ARCHIVED, PRODUCTION): "rollback",
        (ARCHIVED, STAGING): "re-validation",
        (PRODUCTION, STAGING): "re-validation",
    }


@pytest.mark.parametrize(
    "pair",
    [p for p in itertools.product(workflow.STAGES, repeat=2) if p not in workflow.TRANSITIONS],
)
def test_transition_missing_from_the_table_is_refused(pair):
    with pytest.raises(workflow.TransitionRefused):
        workflow.transition_kind(*pair)


def test_refusal_names_the_allowed_targets():
    with pytest.raises(workflow.TransitionRefused, match="staging"):
        workflow.transition_kind(DEVELOPMENT, PRODUCTION)


def test_only_a_pending_request_changes_status():
    assert workflow.can_change_status("pending", "approved")
    for final in ("approved", "rejected", "cancelled", "expired", "superseded"):
        assert not any(workflow.can_change_status(final, s) for s in workflow.REQUEST_STATUSES)


def test_default_policies_cover_every_target_stage_and_risk_tier():
    assert set(workflow.DEFAULT_POLICIES) == set(
        itertools.product(workflow.TARGET_STAGES, workflow.TIERS)
    )
    for policy in workflow.DEFAULT_POLICIES.values():
        assert workflow.required_errors(policy["required_approvals"]) == []


@pytest.mark.parametrize(
    ("stage", "tier", "required"),
    [
        (STAGING, "low", {VAL: 1}),
        (STAGING, "critical", {VAL: 1}),
        (PRODUCTION, "low", {VAL: 1, RO: 1}),
        (PRODUCTION, "medium", {VAL: 1, RO: 1}),
        (PRODUCTION, "high", {VAL: 2, RO: 1}),
        (PRODUCTION, "critical", {VAL: 1, RO: 2}),
        (ARCHIVED, "high", {RO: 1}),
    ],
)
def test_default_required_approvals(stage, tier, required):
    assert workflow.DEFAULT_POLICIES[(stage, tier)]["required_approvals"] == required


def test_quorum_is_met_only_when_every_slot_is_filled():
    required = {VAL: 2, RO: 1}
    assert not workflow.quorum_met(required, [VAL, VAL])
    assert not workflow.quorum_met(required, [VAL, RO])
    assert workflow.quorum_met(required, [VAL, RO, VAL])


def test_remaining_counts_open_slots_per_role():
    assert workflow.remaining({VAL: 2, RO: 1}, [VAL]) == {VAL: 1, RO: 1}


def test_pick_role_fills_the_first_open_role_the_person_holds():
    assert workflow.pick_role({VAL: 1, RO: 1}, [], {VAL, RO}) == VAL
    assert workflow.pick_role({VAL: 1, RO: 1}, [VAL], {VAL, RO}) == RO


def test_pick_role_is_none_when_the_persons_roles_are_full():
    assert workflow.pick_role({VAL: 1, RO: 1}, [VAL], {VAL}) is None
    assert workflow.pick_role({VAL: 1}, [], {RO}) is None


def test_slots_show_who_filled_each_in_order():
    slots = workflow.slots({VAL: 2, RO: 1}, [(RO, "rita", 1), (VAL, "vic", 2)])
    assert [(s.role, s.index, s.filled_by) for s in slots] == [
        (VAL, 1, "vic"),
        (VAL, 2, None),
        (RO, 1, "rita"),
    ]


@pytest.mark.parametrize(
    "required",
    [{"data-scientist": 1}, {VAL: -1}, {VAL: 9}, {VAL: "1"}, {VAL: True}, {VAL: 0}, [VAL]],
)
def test_required_approvals_must_name_approver_roles_and_sane_counts(required):
    assert workflow.required_errors(required)


@given(
    required=st.fixed_dictionaries({VAL: st.integers(0, 3), RO: st.integers(0, 3)}),
    approvals=st.lists(st.sets(st.sampled_from([VAL, RO]), min_size=1), max_size=8),
)
def test_quorum_arithmetic_one_person_one_slot(required, approvals):
    """Each person (a set of roles) fills at most one slot; the quorum is met exactly when
    every role has its count, and never exceeds it."""
    filled: list[str] = []
    for person_roles in approvals:
        role = workflow.pick_role(required, filled, person_roles)
        if role is not None:
            assert role in person_roles
            filled.append(role)
    for role, count in required.items():
        assert filled.count(role) <= count
    met = all(filled.count(r) >= n for r, n in required.items())
    assert workflow.quorum_met(required, filled) == met
