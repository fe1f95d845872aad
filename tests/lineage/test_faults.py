"""A fault in the mapping code itself (an exception it does not expect, e.g. a shape of event
nobody foresaw) must not hold up every event after the one that meets it: when other events
of the batch map, the events that meet it are rejected, logged and audited, and can be mapped
again once the fault is fixed. When no event of the batch maps, the fault is taken for the
code's (a broken release) and the batch stays pending."""

import logging
import uuid

import pytest

from audit.models import AuditEvent
from lineage import services
from lineage.models import Edge, LineageEvent
from tests.lineage.conftest import run_event

pytestmark = pytest.mark.django_db

POISON = "poison"  # the job whose events the faulty mapping code fails on


@pytest.fixture
def deferred(settings):
    settings.LINEAGE_MAP_INLINE = False
    return settings


@pytest.fixture
def faulty(monkeypatch):
    """Mapping code that fails (KeyError, after writing) on any slice holding an event of the
    job POISON; `faulty.fixed()` puts the real code back."""
    real = services._map_batch

    def mapping(actor, items, ledger=None):
        out = real(actor, items, ledger)  # written first: the failed attempt must roll back
        if any(parsed.job_name == POISON for _, parsed in items):
            raise KeyError("columnLineage")
        return out

    monkeypatch.setattr(services, "_map_batch", mapping)

    class Switch:
        @staticmethod
        def fixed():
            monkeypatch.setattr(services, "_map_batch", real)

    return Switch


def _map_noting_warnings(caplog):
    """Map what is pending; the result and the warnings the mapper logged meanwhile."""
    with caplog.at_level(logging.WARNING, logger="lineage.services"):
        result = services.lineage_events_map()
    return result, [r for r in caplog.records if r.levelno == logging.WARNING]


def _runs_in_graph():
    return set(
        Edge.objects.filter(source__startswith="run:").values_list("source", flat=True).distinct()
    )


def test_an_event_the_mapping_code_fails_on_is_rejected_and_the_others_map(
    post, deferred, faulty, caplog
):
    runs = [uuid.uuid4() for _ in range(3)]
    for run_id, job, hour in zip(runs, ["first", POISON, "last"], [9, 10, 11], strict=True):
        event = run_event(
            run_id=run_id,
            job=job,
            outputs=[("s3://lake", job)],
            time=f"2026-11-01T{hour:02d}:00:00Z",
        )
        assert post(event).status_code == 201

    with caplog.at_level(logging.ERROR, logger="lineage.services"):
        result = services.lineage_events_map()

    assert (result.mapped, result.rejected) == (2, 1)
    rejected = LineageEvent.objects.get(state="rejected")
    assert rejected.job_name == POISON
    assert "internal error: KeyError" in rejected.reason and "map it again" in rejected.reason
    assert set(LineageEvent.objects.filter(state="mapped").values_list("job_name", flat=True)) == {
        "first",
        "last",
    }
    # the failed attempt's writes are gone; the others' stand
    assert _runs_in_graph() == {f"run:{runs[0]}", f"run:{runs[2]}"}
    audited = AuditEvent.objects.get(action="lineage.event.rejected")
    assert audited.object_id == str(rejected.pk)
    assert audited.changes["reason"] == rejected.reason
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(logged) == 1 and str(rejected.pk) in logged[0].getMessage()
    assert logged[0].exc_info[0] is KeyError  # the trace is in the log, not in the reason


def test_a_fault_no_event_of_the_batch_escapes_fails_the_batch_and_nothing_is_rejected(
    post, deferred, faulty
):
    for hour in (9, 10):
        event = run_event(
            job=POISON, outputs=[("s3://lake", f"t{hour}")], time=f"2026-11-01T{hour:02d}:00:00Z"
        )
        assert post(event).status_code == 201
    audited = AuditEvent.objects.count()

    with pytest.raises(KeyError):
        services.lineage_events_map()

    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"pending"}
    assert not Edge.objects.exists()
    assert AuditEvent.objects.count() == audited


def test_a_faulty_event_of_one_poster_is_set_aside_when_another_posters_events_map(
    api, post, deferred, faulty, pipeline, django_user_model
):
    """Posters are mapped in separate slices: the check is over the whole batch."""
    from django.contrib.auth.models import Group

    other = django_user_model.objects.create_user("other-pipeline")
    other.groups.add(Group.objects.get(name="pipeline"))
    assert post(run_event(job=POISON, time="2026-11-01T09:00:00Z")).status_code == 201
    response = api(other).post(
        "/api/v1/lineage", run_event(job="fine", time="2026-11-01T10:00:00Z"), format="json"
    )
    assert response.status_code == 201, response.content

    result = services.lineage_events_map()

    assert (result.mapped, result.rejected) == (1, 1)
    states = dict(LineageEvent.objects.values_list("job_name", "state"))
    assert states == {POISON: "rejected", "fine": "mapped"}


def test_a_faulty_event_alone_waits_then_is_set_aside_and_maps_again_once_fixed(
    post, deferred, faulty, pipeline
):
    run_id = uuid.uuid4()
    event = run_event(
        run_id=run_id, job=POISON, outputs=[("s3://lake", "out")], time="2026-11-01T09:00:00Z"
    )
    assert post(event).status_code == 201
    with pytest.raises(KeyError):  # alone in its batch: nothing tells it from a broken release
        services.lineage_events_map()
    assert LineageEvent.objects.get().state == "pending"

    assert post(run_event(job="fine", time="2026-11-01T10:00:00Z")).status_code == 201
    assert services.lineage_events_map().rejected == 1
    poison = LineageEvent.objects.get(job_name=POISON)
    assert poison.state == "rejected"

    faulty.fixed()
    again = services.lineage_events_remap(actor=pipeline, ids=[poison.pk])
    assert [event.state for event in again] == ["pending"]  # with workers: mapped later
    assert services.lineage_events_map().mapped == 1
    poison.refresh_from_db()
    assert poison.state == "mapped" and poison.reason == ""
    assert f"run:{run_id}" in _runs_in_graph()


def test_an_event_the_parser_fails_on_when_mapped_is_set_aside_too(post, deferred, monkeypatch):
    """Stored events are parsed again when mapped (a later release may read them otherwise
    than the one that accepted them)."""
    real = services.parse_event

    def parse(payload, *args, **kwargs):
        if payload["job"]["name"] == POISON:
            raise TypeError("unhashable type: 'dict'")
        return real(payload, *args, **kwargs)

    for job, hour in ((POISON, 9), ("fine", 10)):
        event = run_event(
            job=job, outputs=[("s3://lake", job)], time=f"2026-11-01T{hour:02d}:00:00Z"
        )
        assert post(event).status_code == 201
    monkeypatch.setattr(services, "parse_event", parse)  # accepted with the real one

    result = services.lineage_events_map()

    assert (result.mapped, result.rejected) == (1, 1)
    assert dict(LineageEvent.objects.values_list("job_name", "state")) == {
        POISON: "rejected",
        "fine": "mapped",
    }
    assert "internal error: TypeError" in LineageEvent.objects.get(job_name=POISON).reason


def test_inline_a_failed_mapping_leaves_the_event_stored_and_pending_and_the_post_stands(
    post, settings, faulty, caplog
):
    """The embedded default maps in the request: the event is stored whatever the mapping
    does, so the client gets its 201 and does not send it again."""
    assert settings.LINEAGE_MAP_INLINE
    with caplog.at_level(logging.ERROR, logger="lineage.services"):
        response = post(run_event(job=POISON))

    assert response.status_code == 201, response.content
    assert LineageEvent.objects.get().state == "pending"
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)

    faulty.fixed()
    post(run_event(job="next", time="2026-11-02T09:00:00Z"))  # the next post maps both
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"mapped"}


def test_a_connection_error_is_not_a_fault_the_batch_fails_and_stays_pending(
    post, deferred, monkeypatch
):
    """InterfaceError (a closed connection) is no error of the events: nothing is rejected,
    even when only one event's mapping met it."""
    from django.db import InterfaceError

    real = services._map_batch

    def closed(actor, items, ledger=None):
        if any(parsed.job_name == "a" for _, parsed in items):
            raise InterfaceError("connection already closed")
        return real(actor, items, ledger)

    for job in ("a", "b"):
        assert post(run_event(job=job, outputs=[("s3://lake", job)])).status_code == 201
    monkeypatch.setattr(services, "_map_batch", closed)
    with pytest.raises(InterfaceError):
        services.lineage_events_map()
    assert set(LineageEvent.objects.values_list("state", flat=True)) == {"pending"}


def test_a_fault_beside_a_refusal_is_set_aside_with_it(post, deferred, faulty, monkeypatch):
    """No event maps, but not every event met a fault: the refusal is the event's own, so the
    batch is not taken for a broken release; both are rejected, each with its reason."""
    real = services.parse_event

    def parse(payload, *args, **kwargs):
        if payload["job"]["name"] == "refused":
            raise services.EventInvalid([{"field": "job", "message": "refused now"}])
        return real(payload, *args, **kwargs)

    assert post(run_event(job=POISON, time="2026-11-01T09:00:00Z")).status_code == 201
    assert post(run_event(job="refused", time="2026-11-01T10:00:00Z")).status_code == 201
    monkeypatch.setattr(services, "parse_event", parse)

    result = services.lineage_events_map()

    assert (result.mapped, result.rejected) == (0, 2)
    reasons = dict(LineageEvent.objects.values_list("job_name", "reason"))
    assert "internal error: KeyError" in reasons[POISON]
    assert reasons["refused"] == "job: refused now"


def test_a_fault_only_events_mapped_together_meet_is_logged(post, deferred, monkeypatch, caplog):
    real = services._map_batch

    def together(actor, items, ledger=None):
        if len(items) > 1:
            raise ZeroDivisionError("only in company")
        return real(actor, items, ledger)

    for job in ("a", "b"):
        assert post(run_event(job=job, outputs=[("s3://lake", job)])).status_code == 201
    monkeypatch.setattr(services, "_map_batch", together)
    result, logged = _map_noting_warnings(caplog)
    assert (result.mapped, result.rejected) == (2, 0)
    assert len(logged) == 1 and logged[0].exc_info[0] is ZeroDivisionError


def test_one_faulty_event_among_many_is_found_in_a_few_attempts(
    post, deferred, faulty, monkeypatch
):
    """The batch is halved, older half first, down to the event concerned: not mapped again one
    event at a time (which costs a batch of a thousand a thousand attempts)."""
    for index in range(16):
        job = POISON if index == 5 else f"job-{index}"
        event = run_event(job=job, outputs=[("s3://lake", job)], time=f"2026-11-01T09:{index:02d}Z")
        assert post(event).status_code == 201
    attempts = []
    mapping = services._map_batch
    monkeypatch.setattr(
        services,
        "_map_batch",
        lambda actor, items, ledger=None: (
            attempts.append(len(items)) or mapping(actor, items, ledger)
        ),
    )

    result = services.lineage_events_map()

    assert (result.mapped, result.rejected) == (15, 1)
    assert LineageEvent.objects.get(state="rejected").job_name == POISON
    assert len(_runs_in_graph()) == 15
    assert len(attempts) <= 1 + 2 * 4  # two halves a level, four levels down from 16
    assert attempts.count(1) <= 2  # the event concerned, and the one beside it


def test_each_event_mapped_apart_is_judged_after_the_older_ones_that_stand(post, deferred):
    """A refusal that depends on what was mapped before: a run id taken by an older event's
    job refuses the newer event naming another job, whichever half each lands in (the older
    half is mapped first)."""
    shared = uuid.uuid4()
    for index in range(8):
        run_id, job = uuid.uuid4(), f"job-{index}"
        if index in (2, 6):
            run_id, job = shared, f"shared-{index}"
        event = run_event(
            run_id=run_id, job=job, outputs=[("s3://lake", job)], time=f"2026-11-01T09:0{index}Z"
        )
        assert post(event).status_code == 201

    result = services.lineage_events_map()

    assert (result.mapped, result.rejected) == (7, 1)
    rejected = LineageEvent.objects.get(state="rejected")
    assert rejected.job_name == "shared-6"
    assert "belongs to another job" in rejected.reason
    assert LineageEvent.objects.get(job_name="shared-2").state == "mapped"


@pytest.fixture
def refusing(monkeypatch):
    """Mapping code that refuses (as the graph refuses a cycle, once it has done the work) any
    part holding an event of a job in `refusing.jobs`, and counts its attempts."""
    real = services._map_batch

    class Refusing:
        jobs: set[str] = set()
        attempts: list[int] = []

    def mapping(actor, items, ledger=None):
        Refusing.attempts.append(len(items))
        out = real(actor, items, ledger)
        if any(parsed.job_name in Refusing.jobs for _, parsed in items):
            raise services.CycleRefused(["dataset:a:x#1", "run:r", "dataset:a:x#1"])
        return out

    monkeypatch.setattr(services, "_map_batch", mapping)
    return Refusing


@pytest.mark.parametrize("refused", [range(16), range(0, 16, 2), (3, 12)])
def test_many_refused_events_cost_about_one_attempt_each_as_one_at_a_time_did(
    post, deferred, refusing, refused
):
    refusing.jobs = {f"job-{index}" for index in refused}
    for index in range(16):
        job = f"job-{index}"
        event = run_event(job=job, outputs=[("s3://lake", job)], time=f"2026-11-01T09:{index:02d}Z")
        assert post(event).status_code == 201

    result = services.lineage_events_map()

    assert (result.mapped, result.rejected) == (16 - len(refused), len(refused))
    assert set(
        LineageEvent.objects.filter(state="rejected").values_list("job_name", flat=True)
    ) == (refusing.jobs)
    # one at a time: the batch, then each event (17); halving adds at most two parts a level
    assert len(refusing.attempts) <= 17 + 2 * 4


def test_a_fault_met_in_company_below_a_refusal_is_logged(post, deferred, monkeypatch, caplog):
    real = services._map_batch

    def mapping(actor, items, ledger=None):
        if any(parsed.job_name == "refused" for _, parsed in items):
            raise services.CycleRefused(["dataset:a:x#1", "run:r", "dataset:a:x#1"])
        if len(items) > 1:
            raise ZeroDivisionError("only in company")
        return real(actor, items, ledger)

    for minute, job in enumerate(("a", "b", "c", "refused")):
        event = run_event(job=job, outputs=[("s3://lake", job)], time=f"2026-11-01T09:0{minute}Z")
        assert post(event).status_code == 201
    monkeypatch.setattr(services, "_map_batch", mapping)

    result, warned = _map_noting_warnings(caplog)

    assert (result.mapped, result.rejected) == (3, 1)
    assert len(warned) == 1 and warned[0].exc_info[0] is ZeroDivisionError
