"""Mapping rejected events again: once what refused an event has changed, its poster (or an
operator) puts it back to pending and it is mapped as when it was posted."""

import uuid

import pytest
from django.contrib.auth.models import Permission

from audit.models import AuditEvent
from lineage import services
from lineage.models import LineageEvent
from registry.models import ModelVersion, RegisteredModel
from registry.services import (
    model_permission_grant,
    model_permission_revoke,
    registered_model_rename,
)
from tests.lineage.conftest import dataset, run_event

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/lineage/remap"
CHANGE = "change_registeredmodel"


def _remap_in_admin(client, ids):
    """The admin's action on the raw event list, as an operator runs it."""
    return client.post(
        "/admin/lineage/lineageevent/",
        {"action": "remap", "_selected_action": ids},
        follow=True,
    )


@pytest.fixture
def rejected(settings, owner, pipeline, credit_model, post):
    """The pipeline's event registering a version of the credit model, accepted while the
    pipeline could change the model and rejected when mapped: the grant was withdrawn in
    between."""
    model_permission_grant(actor=owner, model=credit_model, grantee=pipeline, permission=CHANGE)
    settings.LINEAGE_MAP_INLINE = False
    facet = {"name": credit_model.name, "sha256": "a" * 64}
    event = run_event(run_id=uuid.uuid4(), outputs=[dataset("s3://m", "pd", modelgov_model=facet)])
    assert post(event).status_code == 201
    model_permission_revoke(actor=owner, model=credit_model, grantee=pipeline, permission=CHANGE)
    assert services.lineage_events_map().rejected == 1
    settings.LINEAGE_MAP_INLINE = True
    return LineageEvent.objects.get()


def _unchanged(event, audited_before):
    event.refresh_from_db()
    assert event.state == "rejected" and event.reason
    assert AuditEvent.objects.count() == audited_before
    assert not AuditEvent.objects.filter(action="lineage.events.remapped").exists()


def test_the_poster_maps_its_rejected_event_again_once_the_cause_is_gone(
    api, owner, pipeline, credit_model, rejected
):
    reason = rejected.reason
    assert credit_model.name in reason
    model_permission_grant(actor=owner, model=credit_model, grantee=pipeline, permission=CHANGE)
    listed = api(pipeline).get("/api/v1/events/lineage?state=rejected&mine=true").json()
    assert [m["id"] for m in listed["mapping"]] == [rejected.pk]

    response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "remapped": 1,
        "mapping": [{"id": rejected.pk, "state": "mapped", "reason": ""}],
    }
    rejected.refresh_from_db()
    assert rejected.state == "mapped" and rejected.reason == ""
    assert ModelVersion.objects.filter(model=credit_model, artifact_sha256="a" * 64).exists()
    (audited,) = AuditEvent.objects.filter(action="lineage.events.remapped")
    assert audited.actor == pipeline
    assert audited.changes == {
        "state": ["rejected", "pending"],
        "events": [rejected.pk],
        "reasons": {str(rejected.pk): reason},
    }
    # mapped as the poster, as when it was posted
    assert AuditEvent.objects.filter(action="lineage.events.mapped", actor=pipeline).exists()


def test_an_event_mapped_again_after_its_model_was_renamed_registers_with_that_model(
    api, owner, pipeline, credit_model, rejected
):
    model_permission_grant(actor=owner, model=credit_model, grantee=pipeline, permission=CHANGE)
    old_name = credit_model.name
    registered_model_rename(actor=owner, model=credit_model, new_name="credit-scoring-v2")

    response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["mapping"] == [{"id": rejected.pk, "state": "mapped", "reason": ""}]
    assert ModelVersion.objects.filter(model=credit_model, artifact_sha256="a" * 64).exists()
    assert not RegisteredModel.objects.filter(name=old_name).exists()


def test_a_refusal_after_a_rename_names_the_model_as_the_event_does(
    api, owner, pipeline, credit_model, rejected
):
    """The poster may no longer change (nor see) the model: the reason must not tell it the
    model's new name."""
    old_name = credit_model.name
    registered_model_rename(actor=owner, model=credit_model, new_name="quiet-rename")

    response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")

    (entry,) = response.json()["mapping"]
    assert entry["state"] == "rejected"
    assert old_name in entry["reason"] and "quiet-rename" not in entry["reason"]
    assert not RegisteredModel.objects.filter(name=old_name).exists()


def test_an_event_still_refused_is_rejected_again_with_its_reason(api, pipeline, rejected):
    response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")
    assert response.status_code == 200
    (entry,) = response.json()["mapping"]
    assert entry["state"] == "rejected" and "credit-scoring" in entry["reason"]
    assert AuditEvent.objects.filter(action="lineage.event.rejected").count() == 2


def test_with_workers_the_event_waits_pending_for_them(api, pipeline, rejected, settings):
    settings.LINEAGE_MAP_INLINE = False
    response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")
    assert response.status_code == 200
    assert response.json()["mapping"] == [{"id": rejected.pk, "state": "pending", "reason": ""}]


def test_an_operator_may_map_anyones_rejected_events_again(api, superuser, rejected):
    response = api(superuser).post(URL, {"ids": [rejected.pk]}, format="json")
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="lineage.events.remapped").actor == superuser


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"ids": "1"},
        {"ids": ["one"]},
        {"ids": [0]},
        {"ids": [-3]},
        {"ids": [2**63]},
        {"ids": [1.5]},
        {"ids": list(range(1, 1002))},
        [1],
    ],
    ids=lambda body: str(body)[:30],
)
def test_malformed_requests_are_refused_and_change_nothing(api, pipeline, rejected, body):
    before = AuditEvent.objects.count()
    response = api(pipeline).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"]
    _unchanged(rejected, before)


def test_an_empty_body_is_refused(api, pipeline, rejected):
    before = AuditEvent.objects.count()
    response = api(pipeline).post(URL, content_type="application/json")
    assert response.status_code == 400
    _unchanged(rejected, before)


def test_unknown_ids_are_404_and_nothing_is_remapped(api, pipeline, rejected):
    before = AuditEvent.objects.count()
    response = api(pipeline).post(URL, {"ids": [rejected.pk, rejected.pk + 1000]}, format="json")
    assert response.status_code == 404
    (error,) = response.json()["errors"]
    assert error["field"] == "ids" and str(rejected.pk + 1000) in error["message"]
    _unchanged(rejected, before)


def test_an_event_that_is_not_rejected_is_409_and_nothing_is_remapped(
    api, pipeline, rejected, post
):
    post(run_event(job="fine", outputs=[("s3://x", "fine")]))
    mapped = LineageEvent.objects.get(state="mapped")
    before = AuditEvent.objects.count()
    response = api(pipeline).post(URL, {"ids": [rejected.pk, mapped.pk]}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {
            "field": "ids",
            "message": f"Only rejected events are mapped again; event {mapped.pk} is mapped.",
            "code": "conflict",
        }
    ]
    _unchanged(rejected, before)


def test_someone_elses_event_is_403_for_a_poster(api, owner, rejected, superuser):
    # the owner may read the event (it names the owner's model) but did not post it
    before = AuditEvent.objects.count()
    response = api(owner).post(URL, {"ids": [rejected.pk]}, format="json")
    assert response.status_code == 403
    assert "posted by someone else" in response.json()["errors"][0]["message"]
    _unchanged(rejected, before)


def test_an_event_the_caller_may_not_see_is_404_not_403(api, other_scientist, rejected):
    """It names a model the caller may not see: to them it does not exist."""
    before = AuditEvent.objects.count()
    assert api(other_scientist).post(URL, {"ids": [rejected.pk]}, format="json").status_code == 404
    _unchanged(rejected, before)


def test_a_poster_that_lost_the_pipeline_permission_may_not(api, pipeline, rejected):
    pipeline.groups.clear()
    pipeline.user_permissions.add(Permission.objects.get(codename="view_edge"))
    before = AuditEvent.objects.count()
    response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")
    assert response.status_code == 403
    assert "lineage.add_lineageevent" in response.json()["errors"][0]["message"]
    _unchanged(rejected, before)


def test_roles_without_lineage_read_and_anonymous_callers_are_refused(
    api, outsider, rejected, client
):
    before = AuditEvent.objects.count()
    assert api(outsider).post(URL, {"ids": [rejected.pk]}, format="json").status_code == 403
    assert (
        client.post(URL, {"ids": [rejected.pk]}, content_type="application/json").status_code == 401
    )
    _unchanged(rejected, before)


def test_the_admin_action_maps_selected_rejected_events_again(client, superuser, rejected):
    client.force_login(superuser)
    response = _remap_in_admin(client, [rejected.pk])
    assert response.status_code == 200
    html = response.content.decode()
    assert "1 event(s) put back to pending: 1 rejected now." in html
    assert f"Event #{rejected.pk} was rejected again: You may not register versions" in html
    # the list shows why (shortened), so an operator can choose what to map again
    assert "You may not register versions of a model named &#x27;credit-scoring&#x27;" in html
    assert AuditEvent.objects.get(action="lineage.events.remapped").actor == superuser


def test_the_admin_action_names_a_few_reasons_and_points_to_the_list_for_more(
    client, superuser, rejected, monkeypatch
):
    from lineage import admin as lineage_admin

    monkeypatch.setattr(lineage_admin, "REASONS_SHOWN", 0)
    client.force_login(superuser)
    html = _remap_in_admin(client, [rejected.pk]).content.decode()
    assert "was rejected again" not in html
    assert "1 more rejected again: filter the list by state to read why." in html


def test_the_admin_action_refuses_what_the_service_refuses(client, owner, rejected):
    client.force_login(owner)  # staff, may read the event, did not post it
    before = AuditEvent.objects.count()  # after the login's own audit event
    response = _remap_in_admin(client, [rejected.pk])
    assert "posted by someone else" in response.content.decode()
    _unchanged(rejected, before)


def test_the_service_refuses_an_empty_list(pipeline):
    from core.errors import Invalid

    with pytest.raises(Invalid):
        services.lineage_events_remap(actor=pipeline, ids=[])
    assert not AuditEvent.objects.filter(action="lineage.events.remapped").exists()


def test_own_and_someone_elses_events_together_are_403_and_nothing_is_remapped(
    api, pipeline, owner, rejected, post
):
    # the owner's own rejected event: a cycle over versions
    v = {"version": {"_producer": "x", "_schemaURL": "y", "datasetVersion": "1"}}
    a, b = dataset("s3://o", "a", **v), dataset("s3://o", "b", **v)
    for inputs, outputs in (([a], [b]), ([b], [a])):
        api(owner).post("/api/v1/lineage", run_event(inputs=inputs, outputs=outputs), format="json")
    owners = LineageEvent.objects.get(state="rejected", submitted_by=owner)
    before = AuditEvent.objects.count()
    response = api(owner).post(URL, {"ids": [owners.pk, rejected.pk]}, format="json")
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == (
        f"You may map again only events you posted; event {rejected.pk} was posted by someone else."
    )
    _unchanged(rejected, before)
    owners.refresh_from_db()
    assert owners.state == "rejected"


def test_an_unknown_id_is_404_before_someone_elses_is_403(api, owner, rejected):
    before = AuditEvent.objects.count()
    response = api(owner).post(URL, {"ids": [rejected.pk, 10**9]}, format="json")
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"] == f"Unknown lineage event {10**9}."
    _unchanged(rejected, before)


def test_the_remap_permission_reaches_only_events_its_holder_may_read(
    api, other_scientist, rejected
):
    """Holding lineage.change_lineageevent does not show events naming a model one may not
    see: to the holder such an event does not exist."""
    other_scientist.user_permissions.add(Permission.objects.get(codename="change_lineageevent"))
    before = AuditEvent.objects.count()
    response = api(other_scientist).post(URL, {"ids": [rejected.pk]}, format="json")
    assert response.status_code == 404
    _unchanged(rejected, before)


def test_the_remap_permission_reaches_events_of_others_it_may_read(api, other_scientist, rejected):
    # with the global view of models (as validators have), the event is visible
    other_scientist.user_permissions.add(
        Permission.objects.get(codename="change_lineageevent"),
        Permission.objects.get(codename="view_registeredmodel"),
    )
    response = api(other_scientist).post(URL, {"ids": [rejected.pk]}, format="json")
    assert response.status_code == 200
    assert AuditEvent.objects.get(action="lineage.events.remapped").actor == other_scientist


def test_many_ids_are_listed_shortly(api, pipeline, rejected):
    before = AuditEvent.objects.count()
    ids = [rejected.pk, *range(10**6, 10**6 + 25)]
    response = api(pipeline).post(URL, {"ids": ids}, format="json")
    assert response.status_code == 404
    message = response.json()["errors"][0]["message"]
    assert message.startswith("Unknown lineage events 1000000, 1000001,")
    assert message.endswith("1000009 and 15 more.")
    _unchanged(rejected, before)


@pytest.fixture
def two_per_minute(monkeypatch):
    # DRF's throttles read their rates once, when imported: set the rate where they read it
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "lineage-remap", "2/minute")


def test_past_the_rate_a_caller_is_refused_429_and_nothing_is_remapped(
    api, pipeline, superuser, rejected, two_per_minute
):
    audited = AuditEvent.objects.count()
    unknown = rejected.pk + 1000
    for _ in range(2):  # refused requests count too
        assert api(pipeline).post(URL, {"ids": [unknown]}, format="json").status_code == 404

    response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")

    assert response.status_code == 429, response.content
    assert 0 < int(response["Retry-After"]) <= 60
    (error,) = response.json()["errors"]
    assert error["code"] == "throttled" and "throttled" in error["message"]
    _unchanged(rejected, audited)
    # each caller has a count of its own
    assert api(superuser).post(URL, {"ids": [rejected.pk]}, format="json").status_code == 200


def test_the_rate_is_counted_before_the_body_is_read(api, pipeline, rejected, two_per_minute):
    for _ in range(2):
        api(pipeline).post(URL, {"ids": [rejected.pk + 1000]}, format="json")
    response = api(pipeline).post(URL, "not json", content_type="application/json")
    assert response.status_code == 429


def test_the_admin_action_counts_against_the_callers_rate(
    api, client, superuser, rejected, two_per_minute
):
    for _ in range(2):
        assert (
            api(superuser).post(URL, {"ids": [rejected.pk + 1000]}, format="json").status_code
            == 404
        )
    client.force_login(superuser)
    audited = AuditEvent.objects.count()  # after the login's own audit event

    response = _remap_in_admin(client, [rejected.pk])

    assert "Too many requests to map events again (LINEAGE_REMAP_RATE)" in response.content.decode()
    _unchanged(rejected, audited)


def test_the_api_counts_the_admin_actions(api, client, superuser, rejected, two_per_minute):
    client.force_login(superuser)
    for _ in range(2):  # ids of no event
        response = _remap_in_admin(client, [rejected.pk + 1000])
        assert "None of the selected events is there to map again." in response.content.decode()
    audited = AuditEvent.objects.count()
    assert api(superuser).post(URL, {"ids": [rejected.pk]}, format="json").status_code == 429
    _unchanged(rejected, audited)


def test_an_unreachable_cache_is_503_and_nothing_is_remapped(api, pipeline, rejected, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    audited = AuditEvent.objects.count()

    response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")

    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    assert response.json()["errors"][0] == {
        "field": None,
        "message": "Cache unavailable; retry later.",
        "code": "unavailable",
    }
    _unchanged(rejected, audited)


def test_an_unreachable_cache_is_said_in_the_admin_and_nothing_is_remapped(
    client, superuser, rejected, settings
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    client.force_login(superuser)
    audited = AuditEvent.objects.count()  # after the login's own audit event

    response = _remap_in_admin(client, [rejected.pk])

    assert response.status_code == 200
    assert (
        "The cache that counts the remap limit (CACHE_URL) is unavailable; nothing was mapped "
        "again." in response.content.decode()
    )
    _unchanged(rejected, audited)


def test_with_a_shared_cache_the_counts_live_in_it(
    api, pipeline, rejected, two_per_minute, settings
):
    """CACHE_URL naming Redis: the counts live there, not in the memory of the process that
    answered, so every process that reads them counts against one rate."""
    import os

    import redis

    url = os.environ.get("CELERY_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"needs Redis at {url}")
        pytest.skip(f"needs Redis at {url}")
    prefix = f"remap-test-{uuid.uuid4().hex}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
        }
    }
    client = redis.Redis.from_url(url)
    try:
        for _ in range(2):
            api(pipeline).post(URL, {"ids": [rejected.pk + 1000]}, format="json")
        assert client.keys(f"{prefix}:*throttle_lineage-remap_{pipeline.pk}")
        response = api(pipeline).post(URL, {"ids": [rejected.pk]}, format="json")
        assert response.status_code == 429
    finally:
        for key in client.keys(f"{prefix}:*"):
            client.delete(key)


def test_the_admin_action_maps_nothing_the_user_may_not_see(client, other_scientist, rejected):
    client.force_login(other_scientist)
    audited = AuditEvent.objects.count()
    response = _remap_in_admin(client, [rejected.pk])
    assert response.status_code == 200
    assert "None of the selected events is there to map again." in response.content.decode()
    _unchanged(rejected, audited)


def test_the_admin_action_says_why_an_event_is_not_mapped_again(client, superuser, rejected):
    rejected.state = "mapped"
    rejected.save(update_fields=["state"])
    client.force_login(superuser)
    response = _remap_in_admin(client, [rejected.pk])
    html = response.content.decode()
    assert (
        f'<li class="warning">Only rejected events are mapped again; event {rejected.pk} is '
        "mapped.</li>"
    ) in html
