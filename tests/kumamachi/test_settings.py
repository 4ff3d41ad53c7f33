"""Production settings that performance depends on, read in a fresh process as production
would start (settings are read once, at start)."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
}))
"""


def _production(**extra) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DJANGO_SETTINGS_MODULE": "kumamachi.settings",
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "a-production-secret-for-this-test-only-0123456789",
        "DJANGO_ALLOWED_HOSTS": "kumamachi.example.jp",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
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
