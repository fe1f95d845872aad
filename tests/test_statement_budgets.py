"""Statement budgets of the registry endpoints: the SQL statements one request may cost.

Each test makes one request with a real Bearer token (one statement to authenticate, as in
production) and counts every statement Django sends (BEGIN/COMMIT and savepoints included
where the backend sends them), once with 1 and once with 20 related rows (versions, aliases,
labels, tags, grants, approvers, matching models): a budget that held only for few rows would
fail the second run. Work queued after commit (audit sealing, notification tasks) runs outside
the test's transaction and is not counted.

The note above each budget says what its statements are. The common parts:
  token    the token and its user, one SELECT with a join (authentication);
  perms    the caller's global permissions, user and group: one SELECT (a UNION), cached for
           the request (core.backends), asked only when owning the model does not decide;
  audit    per audited change: the actor's kind (the caller's roles, read once per request
           and shared with every role check), the event INSERT and, for the events webhooks
           may be subscribed to, whether anyone subscribes (one EXISTS; the batch's
           subscriptions only when someone does) (owned by the audit and webhook apps);
  BEGIN / COMMIT  a service's transaction (a savepoint and its release inside the test's
           transaction: the same count).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import services as approvals
from registry import services
from registry.services import model_permission_grant
from tests.conftest import _user

pytestmark = pytest.mark.django_db

ROWS = [1, 20]
API = "/api/v1"
DOOR = "/api/2.0/mlflow"


def statements(call):
    """(response, the SQL statements the call sent)."""
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code in (200, 201), response.content[:500]
    return response, [q["sql"] for q in captured.captured_queries]


def within(sql: list[str], budget: int) -> None:
    listing = "\n".join(f"  {s[:160]}" for s in sql)
    assert len(sql) <= budget, f"{len(sql)} statements, budget {budget}:\n{listing}"


@pytest.fixture
def client_of(token_client):
    """client_of(user) → a token client that has made one request already (the token's
    `last_used_at` is then fresh, so later requests do not write it)."""

    def make(user):
        client = token_client(user)
        assert client.get(f"{API}/models/?page_size=1").status_code == 200
        return client

    return make


@pytest.fixture
def others(db):
    """others(n) → n users (data scientists) to grant things to."""

    made = []

    def make(n):
        people = [_user(f"colleague-{len(made) + i}", "data-scientist") for i in range(n)]
        made.extend(people)
        return people

    return make


def _versions(owner, model, n, **extra):
    return [
        services.model_version_create(
            actor=owner, model=model, artifact_uri=f"s3://m/{i}", metrics={"auc": 0.8}, **extra
        )
        for i in range(n)
    ]


def _richly_related(owner, model, n, others):
    """n versions, n aliases, n labels on the model and the last version, n grants."""
    versions = _versions(owner, model, n)
    for i, version in enumerate(versions):
        services.model_alias_set(actor=owner, model=model, alias=f"a{i}", version=version)
    for i in range(n):
        services.registered_model_label_set(actor=owner, model=model, key=f"k{i}", value="v")
        services.model_version_label_set(actor=owner, version=versions[-1], key=f"k{i}", value="v")
    for user in others(n):
        model_permission_grant(
            actor=owner, model=model, grantee=user, permission="view_registeredmodel"
        )
    return versions


# --- models -------------------------------------------------------------------------------


# token, perms (a data scientist has no global view), COUNT and the page: visibility as EXISTS
# in the same statement, the latest version a subquery on the page's rows (no query per row).
@pytest.mark.parametrize("n", ROWS)
def test_model_list(client_of, owner, other_scientist, n):
    for i in range(n):
        model = services.registered_model_create(actor=owner, name=f"m{i}", tags=["t"])
        _versions(owner, model, 2)
        # Granted models are visible too, through the same EXISTS.
        theirs = services.registered_model_create(actor=other_scientist, name=f"theirs{i}")
        model_permission_grant(
            actor=other_scientist, model=theirs, grantee=owner, permission="view_registeredmodel"
        )
    client = client_of(owner)
    response, sql = statements(lambda: client.get(f"{API}/models/"))
    assert response.json()["count"] == 2 * n
    within(sql, 4)


# token, the model by name with its owner and latest version: the owner sees it, no more.
@pytest.mark.parametrize("n", ROWS)
def test_model_detail(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(lambda: client.get(f"{API}/models/credit-scoring/"))
    assert response.json()["latest_version"] == n
    within(sql, 2)


# token, perms (add permission), BEGIN, the name taken?, the owner's foreign-key check
# (full_clean), savepoint, INSERT, release, audit (3), COMMIT.
@pytest.mark.parametrize("n", ROWS)
def test_model_create(client_of, owner, n):
    for i in range(n):
        services.registered_model_create(actor=owner, name=f"m{i}")
    client = client_of(owner)
    response, sql = statements(
        lambda: client.post(f"{API}/models/", {"name": "new-model"}, format="json")
    )
    within(sql, 12)


# token, the model by name, BEGIN, the model locked, the owner's foreign-key check, savepoint,
# UPDATE, release, audit (2: no webhook event), COMMIT; the owner read before is reused.
@pytest.mark.parametrize("n", ROWS)
def test_model_update(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(
        lambda: client.patch(f"{API}/models/credit-scoring/", {"description": "new"}, format="json")
    )
    within(sql, 11)


# --- versions -----------------------------------------------------------------------------


# token, the model by name, COUNT and the page (model, creator and run joined).
@pytest.mark.parametrize("n", ROWS)
def test_version_list(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(lambda: client.get(f"{API}/models/credit-scoring/versions/"))
    assert response.json()["count"] == n
    within(sql, 4)


# token, the version by model name and number with its model, owner, creator and run.
@pytest.mark.parametrize("n", ROWS)
def test_version_detail(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(lambda: client.get(f"{API}/models/credit-scoring/versions/{n}/"))
    within(sql, 2)


# A grantee is not the owner: token, the version, perms (no global view), one EXISTS over
# the object grants (to the user and to their groups).
@pytest.mark.parametrize("n", ROWS)
def test_version_detail_through_a_grant(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    (grantee,) = others(1)
    model_permission_grant(
        actor=owner, model=credit_model, grantee=grantee, permission="view_registeredmodel"
    )
    client = client_of(grantee)
    response, sql = statements(lambda: client.get(f"{API}/models/credit-scoring/versions/{n}/"))
    within(sql, 4)


# token, the model by name, BEGIN, the model locked, the last number, two foreign-key checks
# of full_clean (model, creator), INSERT, audit (3), COMMIT.
@pytest.mark.parametrize("n", ROWS)
def test_version_create(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(
        lambda: client.post(
            f"{API}/models/credit-scoring/versions/", {"artifact_uri": "s3://x"}, format="json"
        )
    )
    assert response.json()["version"] == n + 1
    within(sql, 12)


# token, the version, BEGIN, the version locked with its model, two foreign-key checks
# (full_clean), the stored stage and digest, UPDATE, audit (2), COMMIT; the related rows read
# before are reused for the answer.
@pytest.mark.parametrize("n", ROWS)
def test_version_update(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(
        lambda: client.patch(
            f"{API}/models/credit-scoring/versions/{n}/", {"limitations": "Few."}, format="json"
        )
    )
    within(sql, 11)


# --- aliases --------------------------------------------------------------------------------


# token, the model, stored aliases (with their version numbers), versions in governed stages.
@pytest.mark.parametrize("n", ROWS)
def test_alias_list(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(lambda: client.get(f"{API}/models/credit-scoring/aliases/"))
    assert len(response.json()) == n
    within(sql, 4)


# token, the model, the version by number, BEGIN, the model locked, the alias, INSERT, audit
# (2), COMMIT, then the aliases as listed (2).
@pytest.mark.parametrize("n", ROWS)
def test_alias_set(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(
        lambda: client.post(
            f"{API}/models/credit-scoring/aliases/", {"alias": "new", "version": 1}, format="json"
        )
    )
    within(sql, 12)


# token, the model, BEGIN, the model locked, the alias, DELETE, audit (2), COMMIT, then the
# aliases as listed (2).
@pytest.mark.parametrize("n", ROWS)
def test_alias_delete(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(lambda: client.delete(f"{API}/models/credit-scoring/aliases/a0/"))
    within(sql, 11)


# --- search -------------------------------------------------------------------------------


def _many_models(owner, other_scientist, n):
    for i in range(n):
        services.registered_model_create(actor=owner, name=f"fraud-{i}", tags=["fraud"])
        services.registered_model_create(actor=other_scientist, name=f"fraud-x{i}", tags=["fraud"])


# token, perms, COUNT and the page.
@pytest.mark.parametrize("n", ROWS)
def test_search_by_name(client_of, owner, other_scientist, n):
    _many_models(owner, other_scientist, n)
    client = client_of(owner)
    response, sql = statements(lambda: client.get(f"{API}/models/", {"name": "raud"}))
    assert response.json()["count"] == n
    within(sql, 4)


# token, perms, COUNT and the page.
@pytest.mark.parametrize("n", ROWS)
def test_search_by_tag(client_of, owner, other_scientist, n):
    _many_models(owner, other_scientist, n)
    client = client_of(owner)
    response, sql = statements(lambda: client.get(f"{API}/models/", {"tag": "fraud"}))
    assert response.json()["count"] == n
    within(sql, 4)


# --- promotions -----------------------------------------------------------------------------


@pytest.fixture
def appointed(validator, credit_model, others):
    """appointed(n) → n validators (the `validator` fixture first) appointed for the model."""

    def make(n):
        people = [validator] + [_user(f"validator-{i}", "model-validator") for i in range(1, n)]
        for person in people:
            approvals.decide_permission_grant(actor=None, model=credit_model, grantee=person)
        return people

    return make


# token, the version with its model, BEGIN, the version locked with its model, a pending
# request?, the policy, can anyone decide (one EXISTS per role the policy asks for), savepoint,
# INSERT, release, audit (3), COMMIT; the request as it now stands (request, decisions).
@pytest.mark.parametrize("n", ROWS)
def test_promotion_request(client_of, owner, credit_model, appointed, n):
    appointed(n)
    _versions(owner, credit_model, n)
    client = client_of(owner)
    response, sql = statements(
        lambda: client.post(
            f"{API}/models/credit-scoring/versions/{n}/promotions",
            {"to_stage": "staging", "justification": "Validated."},
            format="json",
        )
    )
    within(sql, 16)


# token, the request with its version and model, perms (global view); BEGIN, the request
# locked (reading its model id), the model and the version locked, the caller's roles, their
# appointment (one statement), earlier decisions, INSERT decision, UPDATE request, audit (2:
# the actor's kind comes from the roles read before);
# the stage: savepoint, UPDATE, release, INSERT transition, audit (2); COMMIT; the request as
# it now stands (request, decisions, deciders).
@pytest.mark.parametrize("n", ROWS)
def test_promotion_approve(client_of, owner, validator, credit_model, appointed, n):
    people = appointed(n)
    versions = _versions(owner, credit_model, n)
    request = approvals.promotion_request_file(
        actor=owner, version=versions[-1], to_stage="staging", justification="Validated."
    )
    client = client_of(people[0])
    response, sql = statements(
        lambda: client.post(
            f"{API}/promotions/{request.pk}/approve", {"comment": "Checked."}, format="json"
        )
    )
    assert response.json()["status"] == "approved"
    within(sql, 25)


# --- the MLflow door ------------------------------------------------------------------------


# token, the version with its model, stored aliases, pending promotions (none: no decisions).
@pytest.mark.parametrize("n", ROWS)
def test_mlflow_get_version(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(
        lambda: client.get(
            f"{DOOR}/model-versions/get", {"name": "credit-scoring", "version": str(n)}
        )
    )
    assert len(response.json()["model_version"]["tags"]) == n
    within(sql, 4)


# token, the model, then the service as in the native create (10), then the message (stored
# aliases, pending promotions).
@pytest.mark.parametrize("n", ROWS)
def test_mlflow_create_version(client_of, owner, credit_model, others, n):
    _richly_related(owner, credit_model, n, others)
    client = client_of(owner)
    response, sql = statements(
        lambda: client.post(
            f"{DOOR}/model-versions/create",
            {"name": "credit-scoring", "source": "s3://x"},
            format="json",
        )
    )
    within(sql, 14)
