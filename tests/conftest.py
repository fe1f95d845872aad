"""Persona fixtures and shared helpers. Test data is built through the real services."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, transaction
from rest_framework.test import APIClient

from core import context
from registry import services

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
SHA = "a" * 64


def require_postgres() -> None:
    """Skip on SQLite (the embedded default), but fail when CI says services are required."""
    if connection.vendor != "postgresql":
        message = (
            "needs PostgreSQL (row locks, concurrent writers); run with DATABASE_URL=postgres://…"
        )
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("postgres"):
            item.fixturenames.insert(0, "_postgres_only")


@pytest.fixture
def _postgres_only():
    require_postgres()


@pytest.fixture
def latest_schema():
    """For a test that migrates the database back to check a migration: every app's latest
    migration applied again afterwards, whichever the test stopped at, for the tests after."""
    yield
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture(autouse=True)
def _fresh_context():
    """Each test starts with its own request context, as each request would."""
    with context.bound(channel="system"):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_counts():
    """Each test starts with no requests counted against the API's rate limits (the cache is
    the process's own memory, config/settings_test.py: counts would carry from one test to
    the next)."""
    from django.core.cache import cache

    cache.clear()


def ensure_roles() -> None:
    """Re-create the role groups after a transactional test's flush emptied the database.

    The groups come from data migrations; a `transaction=True` test truncates every table
    afterwards, so later tests would find none. Re-running the migrations' RunPython steps
    (every migration named *_roles) restores exactly what `migrate` creates.
    """
    import importlib
    import pkgutil

    from django.apps import apps
    from django.db.migrations.operations import RunPython

    if Group.objects.filter(name="pipeline").exists():
        return
    for app_config in apps.get_app_configs():
        try:
            package = importlib.import_module(f"{app_config.name}.migrations")
        except ModuleNotFoundError:
            continue
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if info.name.endswith("_roles"):
                module = importlib.import_module(f"{package.__name__}.{info.name}")
                for operation in module.Migration.operations:
                    if isinstance(operation, RunPython):
                        operation.code(apps, None)


def _user(username: str, role: str | None = None, **extra):
    ensure_roles()
    user = get_user_model().objects.create_user(
        username=username,
        password="pw-" + username,
        email=f"{username}@example.com",
        is_staff=True,
        **extra,
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def owner(db):
    """The data scientist who owns the model under test."""
    return _user("owner-scientist", "data-scientist")


@pytest.fixture
def other_scientist(db):
    return _user("other-scientist", "data-scientist")


@pytest.fixture
def pipeline(db):
    return _user("pipeline-bot", "pipeline")


@pytest.fixture
def validator(db):
    return _user("validator", "model-validator")


@pytest.fixture
def risk_officer(db):
    return _user("risk-officer-1", "risk-officer")


@pytest.fixture
def risk_officer_2(db):
    return _user("risk-officer-2", "risk-officer")


@pytest.fixture
def auditor(db):
    return _user("auditor", "auditor")


@pytest.fixture
def outsider(db):
    """Authenticated, in no role group."""
    return _user("outsider")


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(
        username="root", password="pw-root", email="root@example.com"
    )


@pytest.fixture
def api() -> Callable[..., APIClient]:
    """api(user) → a client authenticated as that user (None → anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def token_client(db) -> Callable[..., APIClient]:
    """token_client(user) → a client sending a real Bearer token minted by the service."""

    def make(user) -> APIClient:
        with context.bound(channel="cli"):
            _, plain = services.api_token_issue(actor=None, user=user, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        return client

    return make


@pytest.fixture
def credit_model(owner):
    """A registered model owned by `owner`."""
    return services.registered_model_create(
        actor=owner,
        name="credit-scoring",
        risk_tier="high",
        business_unit="Retail Lending",
        tags=["credit", "regulated"],
        description="PD model.",
    )


@pytest.fixture
def credit_version(owner, credit_model):
    """Version 1 of the credit model, with governed fields set."""
    return services.model_version_create(
        actor=owner,
        model=credit_model,
        artifact_uri="s3://models/credit/1",
        artifact_sha256=SHA,
        framework="xgboost",
        parameters={"depth": 6},
        metrics={"auc": 0.87},
        intended_use="Loan decisions.",
    )


@pytest.fixture
def app_role(db):
    """as_app() → a cursor whose statements (and the ORM's, inside the block) run as the
    PostgreSQL role `manage.py audit_db_role` describes: what the application runs as in
    production. A failing statement rolls the block back; the role is dropped afterwards."""
    require_postgres()
    name = connection.settings_dict["NAME"].lower()
    role = re.sub(r"[^a-z0-9_]", "_", f"modelgov_app_{name}")[:63]
    out = StringIO()
    call_command("audit_db_role", role, stdout=out)

    def drop() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone():
                cursor.execute(f"DROP OWNED BY {role}")
                cursor.execute(f"DROP ROLE {role}")

    drop()
    with connection.cursor() as cursor:
        for statement in out.getvalue().splitlines():
            if statement and not statement.startswith("--"):
                cursor.execute(statement)

    @contextlib.contextmanager
    def as_app():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL ROLE {role}")
            yield cursor
            cursor.execute("RESET ROLE")

    yield as_app
    drop()
