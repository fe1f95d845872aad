"""Every write path records exactly one audit event, with the right actor, channel and object."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from registry import services
from registry.models import ApiToken, Dataset

pytestmark = pytest.mark.django_db


def _new_events(before: int):
    return list(AuditEvent.objects.order_by("id")[before:])


@pytest.fixture
def world(owner, pipeline, credit_version):
    job = services.job_create(actor=pipeline, namespace="airflow", name="train")
    run = services.run_create(actor=pipeline, job=job)
    dataset = services.dataset_create(actor=pipeline, namespace="s3://lake", name="events")
    feature = services.feature_create(actor=pipeline, dataset=dataset, name="age")
    return {"job": job, "run": run, "dataset": dataset, "feature": feature}


API_WRITES = [
    (
        "owner",
        "post",
        "/api/v1/models/",
        {"name": "new-model"},
        "registry.registered_model.created",
        "registry.registeredmodel",
    ),
    (
        "owner",
        "patch",
        "/api/v1/models/credit-scoring/",
        {"description": "d"},
        "registry.registered_model.updated",
        "registry.registeredmodel",
    ),
    (
        "owner",
        "delete",
        "/api/v1/models/credit-scoring/",
        None,
        "registry.registered_model.archived",
        "registry.registeredmodel",
    ),
    (
        "owner",
        "post",
        "/api/v1/models/credit-scoring/versions/",
        {},
        "registry.model_version.created",
        "registry.modelversion",
    ),
    (
        "owner",
        "patch",
        "/api/v1/models/credit-scoring/versions/1/",
        {"limitations": "l"},
        "registry.model_version.updated",
        "registry.modelversion",
    ),
    (
        "owner",
        "post",
        "/api/v1/models/credit-scoring/grants/",
        {"user": "pipeline-bot", "permission": "view_registeredmodel"},
        "registry.permission.granted",
        "registry.registeredmodel",
    ),
    (
        "pipeline",
        "post",
        "/api/v1/datasets/",
        {"namespace": "s3://x", "name": "y"},
        "registry.dataset.created",
        "registry.dataset",
    ),
    (
        "pipeline",
        "patch",
        "/api/v1/datasets/{dataset}/",
        {"description": "d"},
        "registry.dataset.updated",
        "registry.dataset",
    ),
    (
        "pipeline",
        "delete",
        "/api/v1/datasets/{dataset}/",
        None,
        "registry.dataset.archived",
        "registry.dataset",
    ),
    (
        "pipeline",
        "post",
        "/api/v1/datasets/{dataset}/versions/",
        {"version": "v9"},
        "registry.dataset_version.created",
        "registry.datasetversion",
    ),
    (
        "pipeline",
        "post",
        "/api/v1/features/",
        {"dataset": "{dataset}", "name": "income"},
        "registry.feature.created",
        "registry.feature",
    ),
    (
        "pipeline",
        "patch",
        "/api/v1/features/{feature}/",
        {"pii": True},
        "registry.feature.updated",
        "registry.feature",
    ),
    (
        "pipeline",
        "delete",
        "/api/v1/features/{feature}/",
        None,
        "registry.feature.archived",
        "registry.feature",
    ),
    (
        "pipeline",
        "post",
        "/api/v1/jobs/",
        {"namespace": "a", "name": "b"},
        "registry.job.created",
        "registry.job",
    ),
    (
        "pipeline",
        "patch",
        "/api/v1/jobs/{job}/",
        {"description": "d"},
        "registry.job.updated",
        "registry.job",
    ),
    ("pipeline", "delete", "/api/v1/jobs/{job}/", None, "registry.job.archived", "registry.job"),
    ("pipeline", "post", "/api/v1/runs/", {"job": "{job}"}, "registry.run.created", "registry.run"),
    (
        "pipeline",
        "patch",
        "/api/v1/runs/{run}/",
        {"state": "COMPLETE"},
        "registry.run.updated",
        "registry.run",
    ),
]


def _fill(value, world):
    if isinstance(value, str):
        for key, obj in world.items():
            value = value.replace("{" + key + "}", str(obj.pk))
        return int(value) if value.isdigit() else value
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    "who,method,url,payload,action,object_type",
    API_WRITES,
    ids=[f"{w[1]} {w[2]}" for w in API_WRITES],
)
def test_each_api_write_records_one_event(
    request, api, world, who, method, url, payload, action, object_type
):
    user = request.getfixturevalue(who)
    before = AuditEvent.objects.count()
    client = api(user)
    call = getattr(client, method)
    response = (
        call(_fill(url, world), _fill(payload, world), format="json")
        if payload is not None
        else call(_fill(url, world))
    )
    assert response.status_code < 300, response.content
    events = _new_events(before)
    assert [(e.action, e.actor_id, e.channel, e.object_type) for e in events] == [
        (action, user.pk, "api", object_type)
    ]


def test_token_minting_and_revocation_record_one_event_each(client, superuser, pipeline):
    client.force_login(superuser)
    before = AuditEvent.objects.count()
    client.post("/admin/registry/apitoken/add/", {"user": pipeline.pk, "name": "t", "days": 5})
    token = ApiToken.objects.get()
    client.post("/admin/registry/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    events = _new_events(before)
    assert [(e.action, e.actor_id, e.channel, e.object_id) for e in events] == [
        ("registry.api_token.issued", superuser.pk, "admin", token.token_key),
        ("registry.api_token.revoked", superuser.pk, "admin", token.token_key),
    ]


def test_admin_edits_record_one_event_with_the_admin_channel(client, owner, credit_model):
    client.force_login(owner)
    before = AuditEvent.objects.count()
    response = client.post(
        f"/admin/registry/registeredmodel/{credit_model.pk}/change/",
        {
            "description": "from the admin",
            "owner": owner.pk,
            "business_unit": "Retail",
            "risk_tier": "high",
            "tags": '["credit", "regulated"]',
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    events = _new_events(before)
    assert [(e.action, e.actor_id, e.channel, e.object_id) for e in events] == [
        ("registry.registered_model.updated", owner.pk, "admin", str(credit_model.pk))
    ]


def test_admin_archive_action_records_one_event_per_object(client, pipeline, world):
    from django.contrib.auth.models import Permission

    pipeline.user_permissions.add(Permission.objects.get(codename="view_dataset"))
    client.force_login(pipeline)
    before = AuditEvent.objects.count()
    client.post(
        "/admin/registry/dataset/",
        {"action": "archive_dataset", "_selected_action": [world["dataset"].pk]},
    )
    events = _new_events(before)
    assert [(e.action, e.channel) for e in events] == [("registry.dataset.archived", "admin")]
    assert Dataset.objects.get().archived


def test_group_membership_change_in_the_admin_is_recorded_with_its_actor(
    client, superuser, outsider
):
    client.force_login(superuser)
    before = AuditEvent.objects.count()
    group = Group.objects.get(name="auditor")
    response = client.post(
        f"/admin/auth/user/{outsider.pk}/change/",
        {
            "username": outsider.username,
            "email": outsider.email,
            "is_active": "on",
            "is_staff": "on",
            "groups": [group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    events = [
        (e.action, e.actor_id, e.channel, e.changes.get("groups")) for e in _new_events(before)
    ]
    assert ("auth.membership.added", superuser.pk, "admin", ["auditor"]) in events, events
    assert sum(1 for e in events if e[0].startswith("auth.membership")) == 1


def test_a_role_created_changed_and_deleted_in_the_admin_is_recorded_with_its_actor(
    client, superuser
):
    from django.contrib.auth.models import Permission

    client.force_login(superuser)
    view = Permission.objects.get(codename="view_registeredmodel")
    before = AuditEvent.objects.count()
    response = client.post(
        "/admin/auth/group/add/", {"name": "reviewers", "permissions": [view.pk]}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    role = Group.objects.get(name="reviewers")
    assert list(role.permissions.all()) == [view]
    response = client.post(
        f"/admin/auth/group/{role.pk}/change/", {"name": "model-reviewers", "permissions": []}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    response = client.post(f"/admin/auth/group/{role.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Group.objects.filter(pk=role.pk).exists()
    events = [(e.action, e.actor_id, e.channel, e.changes) for e in _new_events(before)]
    assert events == [
        (
            "auth.group.created",
            superuser.pk,
            "admin",
            {"name": [None, "reviewers"], "permissions": [None, ["view_registeredmodel"]]},
        ),
        (
            "auth.group.updated",
            superuser.pk,
            "admin",
            {
                "name": ["reviewers", "model-reviewers"],
                "permissions": [["view_registeredmodel"], []],
            },
        ),
        (
            "auth.group.deleted",
            superuser.pk,
            "admin",
            {"name": "model-reviewers", "permissions": [], "members": []},
        ),
    ]


def test_sign_in_failure_and_sign_out_are_recorded(client, owner):
    before = AuditEvent.objects.count()
    client.post("/admin/login/", {"username": owner.username, "password": "wrong"})
    client.post("/admin/login/", {"username": owner.username, "password": "pw-" + owner.username})
    client.post("/admin/logout/")
    events = [(e.action, e.actor_id, e.channel) for e in _new_events(before)]
    assert events == [
        ("auth.login.failed", None, "auth"),
        ("auth.login.succeeded", owner.pk, "auth"),
        ("auth.logout", owner.pk, "auth"),
    ]


def test_revoking_a_grant_through_the_api_records_one_event(api, owner, pipeline, credit_model):
    client = api(owner)
    grant = {"user": pipeline.username, "permission": "view_registeredmodel"}
    client.post("/api/v1/models/credit-scoring/grants/", grant, format="json")
    before = AuditEvent.objects.count()
    response = client.post("/api/v1/models/credit-scoring/grants/revoke/", grant, format="json")
    assert response.status_code == 200, response.content
    events = _new_events(before)
    assert [(e.action, e.actor_id, e.channel, e.object_id) for e in events] == [
        ("registry.permission.revoked", owner.pk, "api", str(credit_model.pk))
    ]


def test_adding_in_the_admin_records_one_event(client, pipeline):
    client.force_login(pipeline)
    before = AuditEvent.objects.count()
    response = client.post(
        "/admin/registry/job/add/", {"namespace": "airflow", "name": "nightly", "description": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    events = _new_events(before)
    assert [(e.action, e.actor_id, e.channel, e.object_repr) for e in events] == [
        ("registry.job.created", pipeline.pk, "admin", "airflow:nightly")
    ]


def test_creating_a_user_in_the_admin_records_one_event_with_its_actor(client, superuser):
    client.force_login(superuser)
    before = AuditEvent.objects.count()
    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "newcomer",
            "password1": "a-long-Passphrase-42",
            "password2": "a-long-Passphrase-42",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    events = _new_events(before)
    assert [(e.action, e.actor_id, e.channel, e.object_repr) for e in events] == [
        ("auth.user.created", superuser.pk, "admin", "newcomer")
    ]
    assert "password" not in events[0].changes


def test_minting_a_token_on_the_command_line_records_one_event(pipeline):
    from django.core.management import call_command

    before = AuditEvent.objects.count()
    call_command("issue_token", pipeline.username, "--name", "airflow", stdout=StringIO())
    events = _new_events(before)
    assert [(e.action, e.actor_id, e.channel, e.object_repr) for e in events] == [
        ("registry.api_token.issued", None, "cli", f"airflow for {pipeline.username}")
    ]


def test_the_registry_history_link_lists_that_objects_events(client, superuser, credit_model):
    client.force_login(superuser)
    page = client.get(f"/admin/registry/registeredmodel/{credit_model.pk}/change/")
    link = f"/admin/registry/registeredmodel/{credit_model.pk}/history/"
    assert f'href="{link}"' in page.content.decode()  # also the History button's
    redirect = client.get(link)
    assert redirect.status_code == 302
    assert redirect["Location"] == (
        f"/admin/audit/auditevent/?object_type=registry.registeredmodel&object_id={credit_model.pk}"
    )
    history = client.get(
        "/admin/audit/auditevent/",
        {"object_type": "registry.registeredmodel", "object_id": credit_model.pk},
    )
    assert history.status_code == 200
    assert "registry.registered_model.created" in history.content.decode()
    assert list(history.context["cl"].queryset) == list(
        AuditEvent.objects.filter(
            object_type="registry.registeredmodel", object_id=str(credit_model.pk)
        )
    )


def test_the_history_of_an_object_tells_a_non_auditor_where_it_is(client, owner, credit_model):
    client.force_login(owner)
    page = client.get(f"/admin/registry/registeredmodel/{credit_model.pk}/history/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "recorded in the audit log" in text and "ask one for this record" in text
    assert "/admin/audit/auditevent/" not in text  # a link they could not follow
    assert client.get("/admin/audit/auditevent/").status_code == 403


def test_the_history_of_a_hidden_object_is_not_told(client, outsider, credit_model):
    client.force_login(outsider)
    page = client.get(f"/admin/registry/registeredmodel/{credit_model.pk}/history/")
    assert page.status_code == 302  # the admin's "does not exist", as for its change page
    assert "recorded in the audit log" not in page.content.decode()


def test_a_promotion_requests_a_model_cards_and_a_webhooks_history_are_their_audit_events(
    client, auditor, owner, validator, credit_version, superuser, settings, tmp_path, monkeypatch
):
    from approvals import services as approvals
    from modelcards import services as cards
    from webhooks import services as webhooks

    settings.MEDIA_ROOT = str(tmp_path)
    request = approvals.promotion_request_file(
        actor=owner, version=credit_version, to_stage="staging", justification="Validated."
    )
    card, _ = cards.model_card_request(actor=auditor, version=credit_version)
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: ["93.184.215.14"])  # no DNS here
    hook, _ = webhooks.webhook_create(
        actor=superuser, name="ops", url="http://hooks.test/modelgov", events=[]
    )
    client.force_login(auditor)
    for path, object_type, action in (
        (
            f"/admin/approvals/promotionrequest/{request.pk}/history/",
            "approvals.promotionrequest",
            "approvals.promotion_request.filed",
        ),
        (
            f"/admin/modelcards/modelcard/{card.pk}/history/",
            "modelcards.modelcard",
            "modelcards.model_card.requested",
        ),
        (
            f"/admin/webhooks/webhook/{hook.pk}/history/",
            "webhooks.webhook",
            "webhooks.webhook.created",
        ),
    ):
        if path.startswith("/admin/webhooks/"):
            client.force_login(superuser)  # webhooks are the superuser's
        response = client.get(path)
        assert response.status_code == 302, path
        listed = client.get(response["Location"])
        assert f"object_type={object_type}" in response["Location"]
        assert action in listed.content.decode(), (path, action)
