"""Configuration, logging, health, demo data and the OpenAPI schema."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from registry.models import Dataset, ModelVersion, RegisteredModel, Run

ROOT = Path(__file__).resolve().parent.parent


def _django_check(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    ours = ("SECRET_KEY", "DEBUG", "CACHE_URL", "LINEAGE_REMAP_RATE")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    result = _django_check({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_refusal_is_one_clear_line_on_stderr_and_a_non_zero_exit():
    result = _django_check({"DEBUG": "0"})
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: SECRET_KEY is not set")
    assert "Traceback" not in result.stderr


def test_a_command_failing_at_run_time_says_so_in_one_line(tmp_path):
    empty = f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}"
    result = subprocess.run(
        [sys.executable, "manage.py", "issue_token", "demo-pipeline", "--name", "x"],
        cwd=ROOT,
        env={**os.environ, "SECRET_KEY": "k" * 50, "DATABASE_URL": empty},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: no such table: auth_user (OperationalError)"
    ]


def test_the_secret_key_is_read_from_the_env_file_make_setup_writes(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=" + "f" * 50 + "\n")
    result = _django_check({"DEBUG": "0", "ENV_FILE": str(env_file)})
    assert result.returncode == 0, result.stderr
    env_file.write_text("")
    assert _django_check({"DEBUG": "0", "ENV_FILE": str(env_file)}).returncode != 0


def test_starts_with_a_secret_key():
    result = _django_check({"SECRET_KEY": "k" * 50})
    assert result.returncode == 0, result.stderr


def test_debug_is_off_by_default():
    from django.conf import settings

    assert settings.DEBUG is False


@pytest.mark.django_db
def test_every_response_carries_a_request_id(api):
    response = api().get("/api/v1/health")
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_a_valid_incoming_request_id_is_kept(client):
    response = client.get("/api/v1/health", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


@pytest.mark.django_db
def test_a_hostile_incoming_request_id_is_replaced(client):
    response = client.get("/api/v1/health", HTTP_X_REQUEST_ID="a b\nc")
    assert response["X-Request-ID"] != "a b\nc"


@pytest.mark.django_db
def test_log_lines_of_a_request_carry_its_request_id(client, caplog):
    from core.logging import KeyValueFormatter, RequestContextFilter

    caplog.handler.addFilter(RequestContextFilter())
    with caplog.at_level(logging.INFO, logger="modelgov.request"):
        response = client.get("/api/v1/health", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 200
    lines = [KeyValueFormatter().format(r) for r in caplog.records if r.name == "modelgov.request"]
    assert lines and all("request_id=req-42" in line for line in lines)
    assert 'msg="request method=GET path=/api/v1/health status=200"' in lines[0]


@pytest.mark.django_db
def test_health_reports_eager_broker_without_a_broker(api):
    body = api().get("/api/v1/health").json()
    assert body == {"status": "ok", "database": "ok", "broker": "eager"}


@pytest.mark.django_db
def test_health_reports_an_unreachable_broker_as_503(api, settings):
    from celery import current_app

    settings.CELERY_TASK_EAGER = False
    original = current_app.conf.broker_url
    current_app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = api().get("/api/v1/health")
    finally:
        current_app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["broker"] == "unreachable"


@pytest.mark.django_db
def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    counts = [m.objects.count() for m in (RegisteredModel, ModelVersion, Dataset, Run)]
    call_command("seed_demo")
    assert [m.objects.count() for m in (RegisteredModel, ModelVersion, Dataset, Run)] == counts
    assert counts[0] >= 3 and counts[1] >= 3
    out = capsys.readouterr().out
    for username in (
        "admin",
        "demo-scientist",
        "demo-pipeline",
        "demo-validator",
        "demo-risk",
        "demo-auditor",
    ):
        assert username in out


@pytest.mark.django_db
def test_seed_demo_users_hold_their_roles(client):
    call_command("seed_demo")
    from django.contrib.auth import get_user_model

    roles = {
        u.username: [g.name for g in u.groups.all()]
        for u in get_user_model().objects.prefetch_related("groups")
    }
    assert roles["demo-risk"] == ["risk-officer"]
    assert roles["demo-validator"] == ["model-validator"]
    assert client.login(username="demo-auditor", password="modelgov-demo")


def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.json"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--format",
        "openapi-json",
        "--file",
        str(out),
    )
    schema = json.loads(out.read_text())
    assert "/api/v1/models/{model_name}/versions/" in schema["paths"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.django_db
def test_swagger_ui_is_served_from_local_assets(client, superuser):
    client.force_login(superuser)
    html = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()


def test_an_sqlite_too_old_for_insert_returning_is_named_by_the_system_check():
    from core.checks import sqlite_version_errors

    (error,) = sqlite_version_errors("3.31.1")
    assert error.id == "core.E001" and "3.31.1" in error.msg and "3.35.0" in error.msg
    assert sqlite_version_errors("3.35.0") == []
    assert sqlite_version_errors("3.45.1") == []


# The production settings README's "Security model" documents: behind a TLS proxy.
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Kq-production-like-secret-key-with-enough-variety-0123456789",
    "ALLOWED_HOSTS": "modelgov.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://modelgov.example.com",
    "BEHIND_TLS_PROXY": "1",
    "CACHE_URL": "redis://cache:6379/1?socket_connect_timeout=1&socket_timeout=1",
}


def _deploy_check(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    ours = ("SECRET_KEY", "DEBUG", "CACHE_URL", "LINEAGE_REMAP_RATE")
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_settings():
    result = _deploy_check(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_a_deployment_without_tls():
    result = _deploy_check({**PRODUCTION_ENV, "BEHIND_TLS_PROXY": "0"})
    assert result.returncode != 0
    assert "security.W004" in result.stderr  # no HSTS


@pytest.mark.parametrize("cache_url", [None, "locmemcache://", "dummycache://"])
def test_check_deploy_flags_rate_limits_counted_per_process(cache_url):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "CACHE_URL"}
    if cache_url is not None:
        env["CACHE_URL"] = cache_url
    result = _deploy_check(env)
    assert result.returncode != 0
    assert "core.W001" in result.stderr and "lineage-remap" in result.stderr


def test_check_deploy_is_quiet_about_the_cache_when_nothing_is_rate_limited():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "CACHE_URL"}
    result = _deploy_check({**env, "LINEAGE_REMAP_RATE": "off"})
    assert result.returncode == 0, result.stdout + result.stderr


def _database_options(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    return _settings_read(
        "json.dumps(settings.DATABASES['default']['OPTIONS'])",
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused", **env_overrides},
    )


def _settings_read(
    expression: str, env_overrides: dict[str, str], without: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Print `expression` (of `settings`) from a fresh process with this environment."""
    env = {k: v for k, v in os.environ.items() if k not in without}
    env.update(
        {
            "SECRET_KEY": "settings-test",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env_overrides,
        }
    )
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, django; from django.conf import settings; django.setup(); "
            f"print({expression})",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("given", "expected"), [(None, 5), ("0", 0), ("12", 12), ("off", None), ("", None)]
)
def test_postgresql_prepares_repeated_statements_unless_told_not_to(given, expected):
    result = _database_options({} if given is None else {"DB_PREPARE_THRESHOLD": given})
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout.strip().splitlines()[-1])
    assert options["prepare_threshold"] == expected
    assert options["server_side_binding"] is True


def test_a_prepare_threshold_that_is_not_a_number_is_refused_in_one_line():
    result = _database_options({"DB_PREPARE_THRESHOLD": "sometimes"})
    assert result.returncode != 0
    assert "DB_PREPARE_THRESHOLD is 'sometimes'" in result.stderr


def test_mapping_tasks_have_a_queue_of_their_own_that_a_worker_consumes_by_default():
    """Other tasks never wait behind a backlog of mapping tasks, and a worker started as the
    README says (no -Q) still maps."""
    from config.celery import app
    from lineage.tasks import map_lineage_events

    assert app.amqp.router.route({}, map_lineage_events.name)["queue"].name == "lineage"
    assert app.amqp.router.route({}, "modelcards.tasks.render_model_card")["queue"].name == (
        "celery"
    )
    assert {"celery", "lineage"} <= set(app.amqp.queues)


def _setting(name: str, env_overrides: dict[str, str]) -> str:
    result = _settings_read(f"repr(settings.{name})", env_overrides, ("CELERY_BROKER_URL", name))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, "0.0"),  # no broker, no beat: every commit seals
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, "0.2"),
        ({"AUDIT_SEAL_INTERVAL": "1.5"}, "1.5"),
    ],
)
def test_the_audit_is_sealed_on_every_commit_when_no_beat_runs(given, expected):
    assert _setting("AUDIT_SEAL_INTERVAL", given) == expected


@pytest.mark.django_db
def test_admin_pages_name_an_icon_that_is_served(client):
    page = client.get("/admin/login/").content.decode()
    assert '<link rel="icon" type="image/svg+xml" href="/static/core/favicon.svg">' in page
    from django.contrib.staticfiles import finders

    assert finders.find("core/favicon.svg")


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, "'30/minute'"), ("5/hour", "'5/hour'"), ("off", "None"), (" 100/S ", "'100/s'")],
)
def test_mapping_events_again_is_limited_per_caller_unless_told_not_to(given, expected):
    env = {} if given is None else {"LINEAGE_REMAP_RATE": given}
    read = _settings_read(
        "repr(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['lineage-remap'])",
        env,
        ("CELERY_BROKER_URL", "LINEAGE_REMAP_RATE"),
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip().splitlines()[-1] == expected


def test_a_rate_that_is_not_one_stops_the_start_with_one_line_naming_it():
    result = _settings_read("1", {"LINEAGE_REMAP_RATE": "lots"})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("django.core.exceptions.ImproperlyConfigured: LINEAGE_REMAP_RATE is")
    assert "'lots'" in last and "or 'off'" in last


@pytest.mark.parametrize(
    ("given", "expected", "per_seconds"),
    [
        ("30/m", "30/m", (30, 60)),
        ("30/minutes", "30/minutes", (30, 60)),
        ("1/sec", "1/sec", (1, 1)),
        ("007/hours", "7/hours", (7, 3600)),
        ("10000/day", "10000/day", (10_000, 86_400)),
    ],
)
def test_each_form_of_rate_taken_is_read_by_the_throttle_as_meant(
    monkeypatch, given, expected, per_seconds
):
    from rest_framework.throttling import SimpleRateThrottle

    from config.settings import _rate

    monkeypatch.setenv("SOME_RATE", given)
    assert _rate("SOME_RATE", "1/s") == expected
    assert SimpleRateThrottle.parse_rate(None, expected) == per_seconds


@pytest.mark.parametrize(
    "given",
    ["", "lots", "30", "30/", "/minute", "30/ minute", "30 /minute", "1/5m", "30/ms", "30/month"]
    + ["0/minute", "10001/day", "-1/s", "1.5/s", "30/minute/x", "none"],
)
def test_a_rate_that_would_not_limit_as_meant_is_refused(monkeypatch, given):
    """Refused, not read as something else: an empty value (a template left unfilled) is not
    `off`, 0 would refuse every request while promising a retry, and DRF reads only the first
    letter of a period (`30/month` would be 30 a minute)."""
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import _rate

    monkeypatch.setenv("SOME_RATE", given)
    with pytest.raises(ImproperlyConfigured, match="SOME_RATE is"):
        _rate("SOME_RATE", "1/s")


def test_rate_counts_are_the_process_own_unless_a_cache_url_names_a_shared_cache():
    default = _settings_read("settings.CACHES['default']['BACKEND']", {}, ("CACHE_URL",))
    assert default.stdout.strip().splitlines()[-1] == (
        "django.core.cache.backends.locmem.LocMemCache"
    )
    shared = _setting("CACHES['default']", {"CACHE_URL": "redis://127.0.0.1:6379/3"})
    assert "django.core.cache.backends.redis.RedisCache" in shared
    assert "redis://127.0.0.1:6379/3" in shared
