"""modelgov settings. Every value comes from the environment (see README, "Configuration")."""

import os
import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
# Where the embedded default keeps its database, keys, files and collected static files: var/
# beside the code in a checkout; VAR_DIR names another (an installed package's code is not
# the place for data).
VAR_DIR = Path(os.environ.get("VAR_DIR") or BASE_DIR / "var").expanduser()
if not VAR_DIR.is_absolute():  # every process must find the same data, wherever it starts
    raise ImproperlyConfigured(f"VAR_DIR must be an absolute path, not '{VAR_DIR}'.")

env = environ.Env()
# The keys `make setup` generated live in var/.env, so every `manage.py` command finds them from
# any shell; variables already in the environment win. ENV_FILE names another file ("" for none).
ENV_FILE = os.environ.get("ENV_FILE", str(VAR_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "insecure-development-key-never-use-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: run `make setup` (it writes var/.env), or set the "
            "SECRET_KEY environment variable to a long random string (DEBUG=1 for local "
            "development only)."
        )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
MAX_REQUEST_BYTES = env.int("MAX_REQUEST_BYTES", default=5 * 1024 * 1024)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "guardian",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "core",
    "audit",
    "registry",
    "lineage",
    "approvals",
    "oversight",
    "modelcards",
    "mlflow_api",
    "webhooks",
]

MIDDLEWARE = [
    "core.middleware.RequestContextMiddleware",
    "core.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Each app's templates live in its package; core's are searched first, so that its
        # admin/base_site.html replaces django.contrib.admin's (an app listed before core).
        "DIRS": [BASE_DIR / "core" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
if "DATABASE_URL" not in os.environ:  # the embedded default's database lives in VAR_DIR
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'modelgov.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers proceed during a write; IMMEDIATE takes the write lock at BEGIN, so two
    # writers queue instead of failing with "database is locked" on lock upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # Persistent connections: a new PostgreSQL connection per request (Django's default) forks
    # a backend and warms its caches each time, which cost more than a lineage event itself.
    # Health-checked before reuse; 0 restores one connection per request.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # No JIT compilation: it pays off for long analytic scans, and costs a graph query or a
    # keyed lookup tens of milliseconds of compiling for nothing.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    # Server-side parameter binding, and prepared statements: psycopg prepares a statement a
    # connection has run DB_PREPARE_THRESHOLD times (every request runs the same few), and
    # the server stops re-planning it. Django leaves preparation off unless it is set here.
    # Behind PgBouncer in transaction mode (without max_prepared_statements), set
    # DB_PREPARE_THRESHOLD=off.
    DATABASES["default"]["OPTIONS"].setdefault(
        "server_side_binding", env.bool("DB_SERVER_SIDE_BINDING", default=True)
    )
    _prepare = env.str("DB_PREPARE_THRESHOLD", default="5").strip().lower()
    if _prepare not in ("off", "none", "") and not _prepare.isdigit():
        raise ImproperlyConfigured(
            f"DB_PREPARE_THRESHOLD is {_prepare!r}: a number of executions (0 or more), or 'off'."
        )
    DATABASES["default"]["OPTIONS"].setdefault(
        "prepare_threshold", int(_prepare) if _prepare.isdigit() else None
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "core.backends.PermissionBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user; every endpoint needs a login.
GUARDIAN_RAISE_403 = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

KNOX_TOKEN_MODEL = "registry.ApiToken"
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)
# knox's own migrations create its default token table even when the model is swapped for
# ours; skipping them keeps a stray table (and its foreign key to users) out of the schema.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Bearer",
    "TOKEN_TTL": timedelta(days=API_TOKEN_DEFAULT_DAYS),
    "AUTO_REFRESH": False,
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
}

# --- Security -------------------------------------------------------------------------------
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# Served over TLS (behind a proxy that terminates it): cookies only over TLS, plain HTTP
# redirected (but the health check, which load balancers probe over HTTP), and HSTS.
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=BEHIND_TLS_PROXY)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if BEHIND_TLS_PROXY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES

# Content-Security-Policy on every response (django-csp): nothing but this origin's own
# scripts, styles, images and fonts; no inline script, no plugins, no framing, forms post only
# here. The admin and the Swagger UI (drf-spectacular-sidecar, served locally; its start-up
# script a separate file) run under it; the docs page alone also allows its template's inline
# <style> (config/urls.py). CSP_REPORT_ONLY=1 sends it as a report-only header instead.
_CSP = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
if env.bool("CSP_REPORT_ONLY", default=False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP

# Names no one may register (answered like a name held by a model the caller cannot see).
MODEL_NAMES_RESERVED = frozenset(
    env.list("MODEL_NAMES_RESERVED", default=["admin", "api", "latest", "new", "none", "null"])
)

# --- Audit ----------------------------------------------------------------------------------
# Key for HMAC-signed checkpoints (`manage.py audit_checkpoint`); keep a copy with the auditors.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
# Seal right after each commit that recorded events (non-blocking); the beat task sweeps too.
AUDIT_SEAL_ON_COMMIT = env.bool("AUDIT_SEAL_ON_COMMIT", default=True)
# …at most once per this many seconds per process (later commits and the beat task catch up).
# Without a broker no beat runs: every commit seals, or the last events would wait for the
# next commit.
AUDIT_SEAL_INTERVAL = env.float(
    "AUDIT_SEAL_INTERVAL", default=0.2 if env.str("CELERY_BROKER_URL", default="") else 0.0
)
CELERY_BEAT_SCHEDULE = {
    "audit-seal": {"task": "audit.tasks.seal_audit_log", "schedule": 1.0},
    "approvals-expire": {"task": "approvals.tasks.expire_promotion_requests", "schedule": 300.0},
    "lineage-map": {"task": "lineage.tasks.map_lineage_events", "schedule": 5.0},
    "oversight-reviews": {"task": "oversight.tasks.open_periodic_reviews", "schedule": 3600.0},
    "webhooks-deliver-due": {"task": "webhooks.tasks.deliver_due_webhooks", "schedule": 30.0},
    "modelcards-requeue-stalled": {
        "task": "modelcards.tasks.requeue_stalled_model_cards",
        "schedule": 60.0,
    },
}

# --- Model cards ----------------------------------------------------------------------------
# A card `rendering` (or `queued`, for a re-request) this long without finishing has lost its
# worker: the beat task re-queues it, a re-request replaces it. Longer than the render task's
# hard time limit (150 s), so a live render is never taken over.
MODEL_CARD_STALE_SECONDS = env.int("MODEL_CARD_STALE_SECONDS", default=300)
# Stalled attempts before the card fails for good.
MODEL_CARD_MAX_ATTEMPTS = env.int("MODEL_CARD_MAX_ATTEMPTS", default=3)

# --- E-mail (promotion notifications) -------------------------------------------------------
# Console by default (development); set EMAIL_BACKEND and EMAIL_HOST… for real delivery.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="modelgov@localhost")

# --- Lineage --------------------------------------------------------------------------------
LINEAGE_MAX_INFLATED_BYTES = env.int("LINEAGE_MAX_INFLATED_BYTES", default=20 * 1024 * 1024)
MAX_INFLATED_BYTES = LINEAGE_MAX_INFLATED_BYTES  # any gzip request body (core.api's parser)
LINEAGE_MAX_BATCH_EVENTS = env.int("LINEAGE_MAX_BATCH_EVENTS", default=500)
LINEAGE_MAX_DATASETS = env.int("LINEAGE_MAX_DATASETS", default=100)
LINEAGE_MAX_FACET_DEPTH = env.int("LINEAGE_MAX_FACET_DEPTH", default=64)
# One event's size as received (canonical JSON), whether posted alone or in a batch (422 beyond).
LINEAGE_MAX_EVENT_BYTES = env.int("LINEAGE_MAX_EVENT_BYTES", default=2 * 1024 * 1024)
# Accepted events are mapped into the graph after commit, this many per transaction.
LINEAGE_MAP_BATCH = env.int("LINEAGE_MAP_BATCH", default=1000)
LINEAGE_MAX_DEPTH = env.int("LINEAGE_MAX_DEPTH", default=50)
LINEAGE_MAX_NODES = env.int("LINEAGE_MAX_NODES", default=5000)

# --- Webhooks -------------------------------------------------------------------------------
# Key encrypting webhook signing secrets at rest (default: SECRET_KEY; changing it makes
# stored secrets unreadable — rotate them).
WEBHOOK_SECRET_KEY = env.str("WEBHOOK_SECRET_KEY", default="")
# Host names or CIDR networks webhooks may target although internal (loopback, private…).
WEBHOOK_ALLOWED_TARGETS = env.list("WEBHOOK_ALLOWED_TARGETS", default=[])
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)

# Model aliases that name the version in a stage and so move only by approved promotions.
GOVERNED_ALIASES = {
    alias: "production"
    for alias in env.list("GOVERNED_ALIASES", default=["champion", "production"])
    if alias
}

# --- Oversight (monitoring, periodic review) -------------------------------------------------
OVERSIGHT_MAX_POINTS = env.int("OVERSIGHT_MAX_POINTS", default=1000)
OVERSIGHT_REVIEW_NOTICE_DAYS = env.int("OVERSIGHT_REVIEW_NOTICE_DAYS", default=30)

# --- I18N / static / media ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["config.formats"]  # times to the second, with the zone
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "media/"
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Cache and rate limits ------------------------------------------------------------------
# The cache holds the counts behind the API's rate limits. CACHE_URL (redis://host:6379/N)
# shares them between processes and machines; without it each process counts on its own, so
# gunicorn's workers each allow the full rate.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}


def _rate(name: str, default: str) -> str | None:
    """A rate limit from the environment: 1 to 10,000 requests per second, minute, hour or
    day, per caller (`30/minute`); None for `off`."""
    value = env.str(name, default=default).strip().lower()
    if value == "off":
        return None
    match = re.fullmatch(r"(\d+)/(s|secs?|seconds?|m|mins?|minutes?|h|hours?|d|days?)", value)
    if not match or not 1 <= int(match[1]) <= 10_000:
        raise ImproperlyConfigured(
            f"{name} is {value!r}: 1 to 10000 requests per second, minute, hour or day "
            "(e.g. 30/minute), or 'off'."
        )
    return f"{int(match[1])}/{match[2]}"


# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["core.api.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Mapping rejected events again re-runs the mapper over up to 1,000 events a request: a
    # poster re-sending events the mapper keeps refusing would keep it busy for everyone.
    "DEFAULT_THROTTLE_RATES": {"lineage-remap": _rate("LINEAGE_REMAP_RATE", "30/minute")},
    "STRICT_JSON": True,
    # `format` is a real query parameter of lineage exports, not a renderer override.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "modelgov API",
    "DESCRIPTION": (
        "Governance and model-lineage registry. Authenticate with `Authorization: Bearer "
        "<token>` (mint one with `manage.py issue_token`). Errors share one body shape: "
        '`{"errors": [{"field": ..., "message": ..., "code": ...}]}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "registry.models.Stage",
        "RiskTierEnum": "registry.models.RiskTier",
        "RunStateEnum": "registry.models.RunState",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_EAGER = not CELERY_BROKER_URL
# No broker configured: tasks run eagerly, in-process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = CELERY_TASK_EAGER
if CELERY_TASK_EAGER:
    CELERY_BROKER_URL = "memory://localhost/"  # a host named: kombu warns without one
CELERY_TASK_EAGER_PROPAGATES = True
# Map accepted lineage events inline, right after they are stored (the embedded default, so
# the graph shows them at once); otherwise a worker maps them after commit.
LINEAGE_MAP_INLINE = env.bool("LINEAGE_MAP_INLINE", default=CELERY_TASK_EAGER)
# With workers: at most one immediate and one delayed mapping task per this many seconds per
# process (each task maps everything pending).
LINEAGE_MAP_TRIGGER_INTERVAL = env.float("LINEAGE_MAP_TRIGGER_INTERVAL", default=0.1)
# Mapping tasks have a queue of their own: while events keep arriving faster than a batch
# maps, web processes send more of them than the worker runs (each maps everything pending,
# so the rest find little or nothing), and model cards, notifications and webhook deliveries
# must not wait behind that backlog. A worker started without -Q consumes both queues.
CELERY_TASK_QUEUES = (Queue("celery"), Queue("lineage"))
CELERY_TASK_ROUTES = {"lineage.tasks.map_lineage_events": {"queue": "lineage"}}
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_TIMEZONE = "UTC"
# Redis hands an unacknowledged task (its worker died) to another worker after this long.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # How often a worker sweeps for such tasks (seconds × throttle); kombu's defaults.
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
}
# A worker process that grew past this (KiB) is replaced after its task: hostile documents
# cannot keep memory; the tasks' own soft and hard time limits bound their time.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", default=512_000)

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.logging.RequestContextFilter"}},
    "formatters": {"keyvalue": {"()": "core.logging.KeyValueFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "keyvalue",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # WeasyPrint narrates every rendering step at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
