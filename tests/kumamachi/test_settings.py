"""Production settings, read in a fresh process as production would start (settings are
read once, at start): what performance depends on, and the hardened configuration that
``check --deploy`` asks for (HTTPS-only cookies, HSTS, secure headers, a strong key)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.template import engines
engine = engines["django"].engine
print(json.dumps({
    "debug": settings.DEBUG,
    "static": settings.STORAGES["staticfiles"]["BACKEND"],
    "loaders": [
        f"{loader.__class__.__module__}.{loader.__class__.__name__}"
        for loader in engine.template_loaders
    ],
    "conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
    "health_checks": settings.DATABASES["default"]["CONN_HEALTH_CHECKS"],
    "page_cache": settings.PAGE_CACHE,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "session_cookie_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
    "hsts_subdomains": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "hsts_preload": settings.SECURE_HSTS_PRELOAD,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "proxy_ssl_header": settings.SECURE_PROXY_SSL_HEADER,
    "nosniff": settings.SECURE_CONTENT_TYPE_NOSNIFF,
    "referrer": settings.SECURE_REFERRER_POLICY,
    "coop": settings.SECURE_CROSS_ORIGIN_OPENER_POLICY,
    "x_frame": settings.X_FRAME_OPTIONS,
    "first_middleware": settings.MIDDLEWARE[0],
}))
"""

STRONG_KEY = "a-production-secret-for-this-test-only-0123456789-kumamachi-xyz"


def _production(*, args=("-c", PROBE), **extra) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DJANGO_SETTINGS_MODULE": "kumamachi.settings",
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": STRONG_KEY,
        "DJANGO_ALLOWED_HOSTS": "kumamachi.example.jp",
        **extra,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_production_caches_templates_keeps_connections_and_hashes_static_files():
    result = _production()
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["debug"] is False
    assert found["static"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert found["loaders"] == ["django.template.loaders.cached.Loader"]
    assert found["conn_max_age"] >= 60 and found["health_checks"] is True
    assert found["page_cache"] is True


def test_production_refuses_to_start_without_a_secret_key():
    result = _production(DJANGO_SECRET_KEY="")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_passes_check_deploy_with_no_warning():
    result = _production(args=("manage.py", "check", "--deploy", "--fail-level", "WARNING"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_is_https_only_with_hsts_and_secure_headers():
    found = json.loads(_production().stdout)
    assert found["session_cookie_secure"] is True and found["csrf_cookie_secure"] is True
    assert found["session_cookie_httponly"] is True
    assert found["hsts_seconds"] >= 365 * 24 * 60 * 60
    assert found["hsts_subdomains"] is True
    assert found["ssl_redirect"] is True
    # No proxy named: a client's X-Forwarded-Proto is not believed.
    assert found["proxy_ssl_header"] is None
    assert found["nosniff"] is True
    assert found["referrer"] == "same-origin"
    assert found["coop"] == "same-origin"
    assert found["x_frame"] == "DENY"
    assert found["first_middleware"] == "kumamachi.middleware.RequestIdMiddleware"


def test_behind_a_proxy_the_scheme_header_is_configured_by_its_name():
    found = json.loads(_production(DJANGO_PROXY_SSL_HEADER="X-Forwarded-Proto").stdout)
    assert found["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_production_refuses_to_start_without_allowed_hosts():
    result = _production(DJANGO_ALLOWED_HOSTS="")
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "bench",  # short
        "x" * 60,  # long but one character
        "django-insecure-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",  # startproject's
    ],
    ids=["short", "repetitive", "insecure-prefix"],
)
def test_production_refuses_a_weak_secret_key(key):
    result = _production(DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is too weak" in result.stderr


def test_plain_http_is_only_allowed_on_the_loopback():
    refused = _production(DJANGO_INSECURE_LOCAL="1")
    assert refused.returncode != 0
    assert "DJANGO_INSECURE_LOCAL" in refused.stderr
    local = _production(DJANGO_INSECURE_LOCAL="1", DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost")
    assert local.returncode == 0, local.stderr
    found = json.loads(local.stdout)
    assert found["debug"] is False
    assert found["ssl_redirect"] is False and found["hsts_seconds"] == 0
    assert found["session_cookie_secure"] is False
