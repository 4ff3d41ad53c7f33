"""Settings for kumamachi, read from environment variables.

DJANGO_ENV=production switches to the hardened configuration, which refuses to start
without DJANGO_SECRET_KEY (long and random, as ``check --deploy`` wants it) and
DJANGO_ALLOWED_HOSTS. Behind a reverse proxy that terminates TLS, set
DJANGO_PROXY_SSL_HEADER (the header the proxy sets to "https", e.g. X-Forwarded-Proto)
and DJANGO_PROXY_COUNT (how many proxies append to X-Forwarded-For; the client's address
is read from there instead of REMOTE_ADDR). The proxy must overwrite, not pass on, the
header a client sends. DJANGO_INSECURE_LOCAL=1 serves production over plain http on the
loopback only (``make serve``): no HTTPS redirect, no HSTS, cookies not marked Secure.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

ENVIRONMENT = os.environ.get("DJANGO_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None or value == "" else value == "1"


if PRODUCTION:
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
    if not SECRET_KEY:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_ENV=production.")
    # The rule of check --deploy (security.W009): a guessable key signs sessions and tokens.
    if (
        len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
        or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is too weak: use at least {SECRET_KEY_MIN_LENGTH} random "
            f"characters, e.g. from "
            f"`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DJANGO_ENV=production.")
    DEBUG = False
    INSECURE_LOCAL = _env_flag("DJANGO_INSECURE_LOCAL", False)
    if INSECURE_LOCAL and not set(ALLOWED_HOSTS) <= LOOPBACK_HOSTS:
        raise ImproperlyConfigured(
            "DJANGO_INSECURE_LOCAL=1 serves over plain http: it is only allowed when "
            "DJANGO_ALLOWED_HOSTS names nothing but the loopback (127.0.0.1, localhost)."
        )
else:
    # A fixed key is fine outside production: it protects nothing real.
    SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-kumamachi")
    ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
    DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
    INSECURE_LOCAL = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tables2",
    "django_filters",
    "simple_history",
    "concurrency",
    "csp",
    "axes",
    "wards",
    "budgets",
]

MIDDLEWARE = [
    # First: every later line of the request's log carries its id.
    "kumamachi.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "kumamachi.middleware.JapaneseFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the 429 page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out (username, address) pair before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "kumamachi.urls"

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
                "kumamachi.context_processors.language_switch",
            ],
        },
    },
]

WSGI_APPLICATION = "kumamachi.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A save reads, then writes: under concurrency a deferred transaction's lock upgrade
    # fails at once ("database is locked"); IMMEDIATE takes the write lock up front and
    # waits for it (the soak test found this).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Public pages are cached per worker and keyed by the ledger's content version (see
# kumamachi/pagecache.py), so a per-process store cannot serve a stale figure.
PAGE_CACHE = os.environ.get("DJANGO_PAGE_CACHE", "1") != "0"
PAGE_CACHE_ENTRIES = int(os.environ.get("DJANGO_PAGE_CACHE_ENTRIES", "1000"))
PAGE_CACHE_MAX_BYTES = int(os.environ.get("DJANGO_PAGE_CACHE_MB", "64")) * 1024 * 1024

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Reasons (補正理由, 訂正理由) can be long; the history keeps them whole.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

LOGIN_URL = "budgets:staff-login"
LOGIN_REDIRECT_URL = "budgets:staff-home"
LOGOUT_REDIRECT_URL = "budgets:staff-login"
SESSION_COOKIE_AGE = int(os.environ.get("DJANGO_SESSION_AGE", str(8 * 60 * 60)))  # a working day
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

DJANGO_TABLES2_TEMPLATE = "django_tables2/table.html"

# --- HTTPS and security headers ----------------------------------------------------------------
# Production is HTTPS only; DJANGO_INSECURE_LOCAL=1 (loopback only, see above) and development
# speak plain http, where a Secure cookie would never come back and a redirect would loop.
HTTPS = PRODUCTION and not INSECURE_LOCAL
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
# DJANGO_SSL_REDIRECT=0 when the proxy itself redirects http to https.
SECURE_SSL_REDIRECT = HTTPS and _env_flag("DJANGO_SSL_REDIRECT", True)
# A load balancer's health probe often speaks plain http to the app.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 365 * 24 * 60 * 60 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# check --deploy asks for preload (security.W021); joining the browsers' preload list is
# still the city's own step (hstspreload.org). DJANGO_HSTS_PRELOAD=0 leaves it out.
SECURE_HSTS_PRELOAD = HTTPS and _env_flag("DJANGO_HSTS_PRELOAD", True)
_proxy_ssl_header = os.environ.get("DJANGO_PROXY_SSL_HEADER", "").strip()
# Only trust the header when a proxy is known to set it: a client could send it too.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# How many reverse proxies append to X-Forwarded-For (0: REMOTE_ADDR is the client).
PROXY_COUNT = int(os.environ.get("DJANGO_PROXY_COUNT", "0"))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "kumamachi.views.csrf_failure"

# No template has inline script or style, so the policy needs no nonce, and a cached public
# page (kumamachi/pagecache.py) is the same bytes for every reader. Sent in development too.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Staff login throttling (django-axes) -----------------------------------------------------
# Locked per (username, address) pair: an attacker elsewhere cannot lock a colleague out.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = int(os.environ.get("DJANGO_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("DJANGO_LOGIN_COOLOFF_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "kumamachi.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "kumamachi.security.client_address"
# kumamachi.security logs logins, failures and lockouts with the request id.
AXES_VERBOSE = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "kumamachi.middleware.RequestIdFilter"}},
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "line",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
