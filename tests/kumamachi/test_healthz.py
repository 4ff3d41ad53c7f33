"""/healthz, for the proxy or load balancer in front of gunicorn; and ``make serve``, the
production setup run for real (gunicorn, production settings) and asked for it."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import OperationalError, connections
from django.test import Client

from kumamachi import pagecache
from wards.models import ContentVersion

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "a-production-secret-for-this-test-only-0123456789-kumamachi-xyz"


def test_healthy_answers_ok_json_never_cached_without_a_cookie(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"status": "ok", "database": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies
    assert "Vary" not in response or "Cookie" not in response["Vary"]
    assert client.head("/healthz").status_code == 200
    # It changes nothing: a POST is not a health check.
    assert client.post("/healthz").status_code == 405


def test_it_asks_the_database_every_time_and_reads_the_ledger_version(client, monkeypatch):
    ContentVersion.objects.update_or_create(pk=1, defaults={"version": 7})
    reads = []
    real = pagecache._version_read

    def counted():
        reads.append(real())
        return reads[-1]

    monkeypatch.setattr(pagecache, "_version_read", counted)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert reads == [7, 7, 7]  # no answer from a cache: the ledger was read each time


def test_database_down_answers_503_with_a_short_json(client, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(connections["default"], "cursor", down)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert json.loads(response.content) == {"status": "unavailable", "database": "down"}
    assert response["Cache-Control"] == "no-store"
    assert b"Connection refused" not in response.content


def test_the_ledger_unreadable_answers_503(client, monkeypatch):
    """SELECT 1 answers but the ledger's table cannot be read (a failed migration, say)."""

    def broken():
        raise OperationalError('relation "wards_contentversion" does not exist')

    monkeypatch.setattr(pagecache, "_version_read", broken)
    assert client.get("/healthz").status_code == 503


def test_it_is_outside_the_language_prefix(client):
    assert client.get("/en/healthz").status_code == 404
    assert client.get("/healthz/").status_code == 404


# --- make serve ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.pop("MAKEFLAGS", None)
    return {**env, **extra}


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_make_serve_refuses_to_start_without_a_secret_key():
    result = subprocess.run(
        ["make", "-s", "-o", "install", "serve"],
        cwd=ROOT,
        env=_serve_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_make_serve_runs_production_under_gunicorn(tmp_path):
    """The target itself (its install step skipped: no package download in a test) on a
    fresh SQLite database: collectstatic, migrate, gunicorn; then /healthz and a page."""
    port = _free_port()
    env = _serve_env(
        DJANGO_SECRET_KEY=STRONG_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        DJANGO_INSECURE_LOCAL="1",
        WEB_CONCURRENCY="1",
    )
    with open(tmp_path / "serve.log", "w") as log:
        server = subprocess.Popen(
            ["make", "-s", "-o", "install", "serve", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # Wait for it to come up (migrating a fresh database takes a while).
        for _ in range(240):
            try:
                status, headers, body = _get(base + "/healthz")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.5)
        else:
            pytest.fail("make serve did not answer: " + (tmp_path / "serve.log").read_text())
        assert status == 200, body
        assert json.loads(body) == {"status": "ok", "database": "ok"}
        assert headers["Cache-Control"] == "no-store"
        assert len(headers["X-Request-ID"]) == 32
        assert "Set-Cookie" not in headers
        status, headers, body = _get(base + "/staff/login/")
        assert status == 200
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        # Production: no debug page for an unknown address, the Japanese 404 instead.
        status, headers, body = _get(base + "/no-such-page/")
        assert status == 404
        assert b"Traceback" not in body and "ページが見つかりません".encode() in body
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    output = (tmp_path / "serve.log").read_text()
    assert "Booting worker" in output
    assert "Traceback" not in output
