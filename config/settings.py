"""Pontis settings: one module, driven by environment variables.

The embedded default (no variables set) uses SQLite and kombu's filesystem
broker under ``var/``. Production sets ``PONTIS_ENV=production`` with
``DATABASE_URL``, ``CELERY_BROKER_URL``, ``DJANGO_SECRET_KEY`` and
``PONTIS_SECRET_KEYS``. README.md lists every variable.
"""

import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet

from config.env import ImproperEnvironment, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
TESTING = "pytest" in sys.modules or env_bool("PONTIS_TESTING")
# The test suite keeps its state apart so it never touches a running portal's files.
VAR_DIR = Path(env_str("PONTIS_VAR_DIR", str(BASE_DIR / "var" / ("test" if TESTING else ""))))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PONTIS_ENV = env_str("PONTIS_ENV", "development")
if PONTIS_ENV not in {"development", "production"}:
    raise ImproperEnvironment(f"PONTIS_ENV must be development or production, not {PONTIS_ENV!r}")
PRODUCTION = PONTIS_ENV == "production"


def _local_secret(filename: str, make) -> str:
    """A development secret generated once and kept under var/ (never used in production)."""
    path = VAR_DIR / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperEnvironment("DJANGO_SECRET_KEY is required in production")
    SECRET_KEY = _local_secret("django_secret_key", lambda: secrets.token_urlsafe(50))

# Fernet keys for credentials at rest; the first encrypts, all decrypt (rotation).
PONTIS_SECRET_KEYS = env_list("PONTIS_SECRET_KEYS")
if not PONTIS_SECRET_KEYS:
    if PRODUCTION:
        raise ImproperEnvironment("PONTIS_SECRET_KEYS is required in production")
    PONTIS_SECRET_KEYS = [_local_secret("fernet_key", lambda: Fernet.generate_key().decode())]

DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])
if TESTING:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "axes",
    "apps.core",
    "apps.accounts",
    "apps.catalog",
    "apps.testing",
    "apps.mappings",
    "apps.reconciliation",
    "apps.demo_partner",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'pontis.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60 if PRODUCTION else 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker share one file: wait for locks, write-ahead log.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that a real worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "catalog:home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sign-in guessing: five failures for one user name from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = env_int("PONTIS_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PONTIS_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("PONTIS_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"

# Request bodies: JSON and form posts are bounded; spec uploads have their own cap.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("PONTIS_MAX_BODY_BYTES", 5 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
PONTIS_SPEC_MAX_BYTES = env_int("PONTIS_SPEC_MAX_BYTES", 5 * 1024 * 1024)

# Outbound HTTP (apps.core.egress).
PONTIS_EGRESS_CONNECT_TIMEOUT = float(env_str("PONTIS_EGRESS_CONNECT_TIMEOUT", "5"))
PONTIS_EGRESS_READ_TIMEOUT = float(env_str("PONTIS_EGRESS_READ_TIMEOUT", "30"))
PONTIS_EGRESS_MAX_RESPONSE_BYTES = env_int("PONTIS_EGRESS_MAX_RESPONSE_BYTES", 10 * 1024 * 1024)
PONTIS_EGRESS_MAX_REDIRECTS = env_int("PONTIS_EGRESS_MAX_REDIRECTS", 5)
PONTIS_EGRESS_TOTAL_TIMEOUT = float(env_str("PONTIS_EGRESS_TOTAL_TIMEOUT", "60"))

# Jobs: a running job whose heartbeat is older than this is reaped.
PONTIS_JOB_LEASE_SECONDS = env_int("PONTIS_JOB_LEASE_SECONDS", 120)
# Scheduled test runs: a cron expression may not fire more often than this.
PONTIS_SCHEDULE_MIN_INTERVAL_MINUTES = env_int("PONTIS_SCHEDULE_MIN_INTERVAL_MINUTES", 5)

# Demo partner API (apps.demo_partner) token; the demo endpoints carry it encrypted.
PONTIS_DEMO_PARTNER_TOKEN = env_str("PONTIS_DEMO_PARTNER_TOKEN", "demo-partner-token")

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tests run tasks in-process unless they start a real worker (tests/conftest.py).
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "reap-stale-jobs": {"task": "apps.core.tasks.reap_stale_jobs", "schedule": 30.0},
    "run-due-test-schedules": {"task": "apps.testing.tasks.run_due_schedules", "schedule": 60.0},
    "run-due-reconciliations": {
        "task": "apps.reconciliation.tasks.run_due_reconciliations",
        "schedule": 60.0,
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.PontisPermission"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["apps.accounts.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env_str("PONTIS_API_RATE", "600/min")},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "Pontis API",
    "DESCRIPTION": "Interface catalog, accounts and jobs of the Pontis integration delivery portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "SystemKindEnum": "apps.catalog.models.SystemKind",
        "SpecKindEnum": "apps.catalog.models.SpecKind",
        "LifecycleStatusEnum": "apps.catalog.models.LifecycleStatus",
        "JobStatusEnum": "apps.core.models.JobStatus",
        "CriticalityEnum": "apps.catalog.models.Criticality",
        "OutcomeEnum": "apps.testing.models.Outcome",
        "ManualOutcomeEnum": "apps.testing.manual.ManualOutcome",
        "SpecStatusEnum": "apps.mappings.models.SpecStatus",
        "PayloadFormatEnum": "apps.mappings.models.PayloadFormat",
        "SchemaPartEnum": "apps.mappings.models.SchemaPart",
        "RuleKindEnum": "apps.mappings.models.RuleKind",
    },
}

# Security headers; production turns on the HTTPS-only settings.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "text")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "apps.core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"axes": {"level": "WARNING"}},
}

# Contract-test evidence: response bodies are stored up to this size (masked).
PONTIS_EVIDENCE_MAX_BODY_BYTES = env_int("PONTIS_EVIDENCE_MAX_BODY_BYTES", 64 * 1024)
# The largest (decoded) response body a test case reads and checks; a larger one errors.
PONTIS_TEST_MAX_RESPONSE_BYTES = env_int("PONTIS_TEST_MAX_RESPONSE_BYTES", 10 * 1024 * 1024)
# The longest Retry-After a contract-test worker honours by waiting; a longer one defers the
# run (back to the queue until then), at most PONTIS_TEST_MAX_DEFERRALS times.
PONTIS_TEST_MAX_RETRY_AFTER = float(env_str("PONTIS_TEST_MAX_RETRY_AFTER", "10"))
PONTIS_TEST_MAX_DEFERRALS = env_int("PONTIS_TEST_MAX_DEFERRALS", 3)
# Requests in a row that find an endpoint unavailable (502/503/504, no connection, timeout)
# before the rest of the run stops calling it.
PONTIS_TEST_CIRCUIT_THRESHOLD = env_int("PONTIS_TEST_CIRCUIT_THRESHOLD", 5)
# Test cases of one run sent at the same time (each endpoint's rate limit still applies).
PONTIS_TEST_CONCURRENCY = env_int("PONTIS_TEST_CONCURRENCY", 16)
# The largest evidence file a tester may attach to a manual result (at most 10 files per result).
PONTIS_EVIDENCE_MAX_UPLOAD_BYTES = env_int("PONTIS_EVIDENCE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
# Reconciliation reads: the statement timeout of every SQL read (in seconds), and
# the only directory whose SQLite files a data source may name (they are read on the server).
# The largest file a reconciliation file source may hold.
PONTIS_MAX_UPLOAD_BYTES = env_int("PONTIS_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS = env_int("PONTIS_RECON_STATEMENT_TIMEOUT_SECONDS", 300)
PONTIS_RECON_SQLITE_DIR = env_str("PONTIS_RECON_SQLITE_DIR", str(VAR_DIR / "datasets"))
