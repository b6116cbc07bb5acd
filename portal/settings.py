"""Settings for the portal, read from the environment with laptop defaults.

Nothing here needs a configured server on a laptop: SQLite, the checkout's own Redis
(portal.localbroker, started by ./dev and the tests) and a SECRET_KEY file, all under var/. Production sets DATABASE_URL, REDIS_URL and SECRET_KEY
(see docker-compose.yml). Reading the settings only reads: the commands that run on the
laptop defaults create var/ (portal.localstate).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.management.utils import get_random_secret_key

from portal import localbroker

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


def envbool(name, default=False):
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def envint(name, default):
    return int(os.environ.get(name, default))


def _secret_key():
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    if SECRET_KEY_FILE.exists():
        return SECRET_KEY_FILE.read_text().strip()
    # Enough for one process (a test run, a one-off command); the demo writes the file before
    # it starts its web server, workers and beat, so that they share one key.
    return get_random_secret_key()


SECRET_KEY_FILE = VAR_DIR / "secret_key"
SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_filters",
    "csp",
    "axes",
    "portal",
    "workers",
    "deployments",
    "topology",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.DomainErrorMiddleware",
    # Last, as its documentation asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several Celery worker processes write next to the web server: WAL lets readers
    # run beside the writer, IMMEDIATE takes the write lock at BEGIN so two writers
    # queue on busy_timeout instead of failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }
    # A file, not memory, so that worker processes started by tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The component editor posts a field per cell of the lists it shows as rows (a task
# definition with a few containers of forty variables each passes Django's 1,000); the
# request's size stays bounded by DATA_UPLOAD_MAX_MEMORY_SIZE.
DATA_UPLOAD_MAX_NUMBER_FIELDS = envint("PORTAL_MAX_FORM_FIELDS", 20_000)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
# django-axes refuses a sign-in while the username, or the address it comes from, is locked
# out; the model backend then checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("PORTAL_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("PORTAL_LOGIN_COOLOFF_MINUTES", 15))
# A username guessed at from one address, and an address guessing across usernames. Not a
# username on its own: anyone could then lock a known user (an admin) out from anywhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # the audit log records failures and lockouts (portal.logins)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
# WhiteNoise serves what collectstatic gathered into STATIC_ROOT, compressed and under
# content-hashed names (cached for ever by browsers). The image collects at build time,
# the demo before it serves.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- HTTP security ---------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx sends the token from the page (hx-headers); this stays default
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# PORTAL_HTTPS: the portal is reached over HTTPS only (off for the laptop demo on plain
# http://localhost). Secure cookies, a redirect of plain HTTP and HSTS.
PORTAL_HTTPS = envbool("PORTAL_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PORTAL_HTTPS
SECURE_SSL_REDIRECT = PORTAL_HTTPS
SECURE_HSTS_SECONDS = envint("PORTAL_HSTS_SECONDS", 31_536_000) if PORTAL_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = PORTAL_HTTPS
# PORTAL_TLS_PROXY: a proxy in front terminates TLS. Only behind a proxy that sets these
# headers itself (never passing a client's own through): X-Forwarded-Proto says whether the
# client used HTTPS, the last X-Forwarded-For address is the client's (for login throttling).
if envbool("PORTAL_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    AXES_IPWARE_PROXY_COUNT = 1
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
# Scripts and styles from our own static files only: no inline <script>, style attribute,
# event handler or eval (htmx runs with allowEval off). Graphviz draws the topology as
# inline SVG with presentation attributes, which this allows; data: for its embedded images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Celery -----------------------------------------------------------------------
# Production: REDIS_URL. Laptop: a Redis server of the checkout's own on a unix socket
# under var/ (portal.localbroker; ./dev and the test suite start it).
REDIS_URL = os.environ.get("REDIS_URL") or localbroker.url(VAR_DIR)
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600),
    # Messages name rows of one database: databases that share a Redis do not share queues.
    "global_keyprefix": os.environ.get(
        "PORTAL_BROKER_KEY_PREFIX", f"portal.{Path(str(DATABASES['default']['NAME'])).name}:"
    ),
}
# A plain `celery -A portal worker` suits actions, which spend their time waiting on
# AWS: threads, many of them (celery's own defaults are prefork with one per core).
CELERY_WORKER_POOL = os.environ.get("CELERY_WORKER_POOL", "threads")
CELERY_WORKER_CONCURRENCY = envint("CELERY_WORKER_CONCURRENCY", 32)
if CELERY_WORKER_POOL == "prefork":
    # Celery closes a child's database connections, and their pool, as each task starts
    # and ends (celery.fixups.django), unless told to reuse them: a child keeps its one
    # connection instead, checked before each task (workers/signals.py).
    CELERY_DB_REUSE_MAX = envint("CELERY_DB_REUSE_MAX", 1000)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 900)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 960)
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
# Threads of a worker process (threads or solo pool) besides Celery's, that start the
# actions its dispatch rounds unblock without a message through the broker (0: none,
# every action goes through the broker). Each may hold a database connection.
PORTAL_WORKER_LOCAL_THREADS = envint("PORTAL_WORKER_LOCAL_THREADS", 8)

# --- Portal behaviour -------------------------------------------------------------
PORTAL_DEFAULT_REGION = os.environ.get("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
# The most actions of one apply in flight: the window starts at the width of the ready
# set up to this, halves when AWS throttles and grows by one per action that was not.
PORTAL_APPLY_CONCURRENCY = envint("PORTAL_APPLY_CONCURRENCY", 64)
# ACTIVE revisions a task-definition family keeps after an apply (rollbacks need them).
PORTAL_TASK_DEFINITION_KEEP = envint("PORTAL_TASK_DEFINITION_KEEP", 5)
PORTAL_WORKER_HEARTBEAT_STALE_SECONDS = envint("PORTAL_WORKER_HEARTBEAT_STALE_SECONDS", 120)
# How late a queued row's message may be before the reaper takes it for lost and sends it
# again (unset: three times the heartbeat limit).
PORTAL_LOST_MESSAGE_GRACE_SECONDS = envint("PORTAL_LOST_MESSAGE_GRACE_SECONDS", 0)
PORTAL_AUDIT_RETENTION_DAYS = envint("PORTAL_AUDIT_RETENTION_DAYS", 365)

# --- AWS --------------------------------------------------------------------------
# botocore's retry mode and attempts per call (throttling, transient errors).
PORTAL_AWS_RETRY_MODE = os.environ.get("PORTAL_AWS_RETRY_MODE", "standard")
PORTAL_AWS_MAX_ATTEMPTS = envint("PORTAL_AWS_MAX_ATTEMPTS", 8)
# Seconds between two polls of a resource that is changing state, and the default bound.
PORTAL_AWS_POLL_SECONDS = float(os.environ.get("PORTAL_AWS_POLL_SECONDS", "5"))
PORTAL_AWS_WAIT_TIMEOUT = float(os.environ.get("PORTAL_AWS_WAIT_TIMEOUT", "1800"))
# How long a delete keeps retrying while AWS says the resource is still in use.
PORTAL_AWS_IN_USE_TIMEOUT = float(os.environ.get("PORTAL_AWS_IN_USE_TIMEOUT", "300"))
# A stack without TimeoutInMinutes: how long to wait for it to settle.
PORTAL_AWS_STACK_TIMEOUT = float(os.environ.get("PORTAL_AWS_STACK_TIMEOUT", "3600"))
# How long an action's task polls a changing resource itself before it goes back to the
# queue to check again later (a stack, a DB instance, an ECS deployment can take an hour).
PORTAL_ACTION_WAIT_HOLD_SECONDS = float(os.environ.get("PORTAL_ACTION_WAIT_HOLD_SECONDS", "20"))
# How long a create retries while EC2 does not see an id it was just given yet.
PORTAL_AWS_VISIBILITY_TIMEOUT = float(os.environ.get("PORTAL_AWS_VISIBILITY_TIMEOUT", "60"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "portal.secrets.MaskSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["mask_secrets"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Background runs
# On Postgres a worker process keeps its database connections open between tasks in a
# pool its threads share (one per thread at most); off, every task opens its own, as
# Celery alone does.
PORTAL_WORKER_DB_POOL = envbool("PORTAL_WORKER_DB_POOL", True)
# How often a worker writes its heartbeat, and a running stage its own.
PORTAL_HEARTBEAT_SECONDS = float(os.environ.get("PORTAL_HEARTBEAT_SECONDS", "10"))
PORTAL_STAGE_BEAT_SECONDS = float(os.environ.get("PORTAL_STAGE_BEAT_SECONDS", "1"))
# How many times an action or a stage is started before the reaper stops requeueing it.
PORTAL_ACTION_MAX_ATTEMPTS = envint("PORTAL_ACTION_MAX_ATTEMPTS", 3)
PORTAL_STAGE_MAX_ATTEMPTS = envint("PORTAL_STAGE_MAX_ATTEMPTS", 3)
PORTAL_REFRESH_EVERY_SECONDS = float(os.environ.get("PORTAL_REFRESH_EVERY_SECONDS", "900"))

# --- Notifications ----------------------------------------------------------------
# Links in notifications point here (the address users reach the portal at).
PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:8000")
PORTAL_NOTIFY_MAX_TARGETS = envint("PORTAL_NOTIFY_MAX_TARGETS", 20)  # per workspace
PORTAL_NOTIFY_TIMEOUT_SECONDS = float(os.environ.get("PORTAL_NOTIFY_TIMEOUT_SECONDS", "10"))
# Attempts per delivery, and the first wait between two (doubling, at most 15 minutes).
PORTAL_NOTIFY_MAX_ATTEMPTS = envint("PORTAL_NOTIFY_MAX_ATTEMPTS", 5)
PORTAL_NOTIFY_RETRY_SECONDS = float(os.environ.get("PORTAL_NOTIFY_RETRY_SECONDS", "30"))
# Email: SMTP when EMAIL_HOST is set; on a laptop the worker prints the messages.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = envint("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", bool(EMAIL_HOST))
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("PORTAL_EMAIL_FROM", "portal@localhost")
