"""The database goes away: killed in the middle of a save, or not reachable at all. The
request fails cleanly (the error page in Japanese, at once, not a hang), nothing half
written remains, and the app serves again by itself once the database answers.

PostgreSQL only: it needs a server whose connections can be killed. CI runs this file on
PostgreSQL, where an unreachable server fails the run (tests/test_database.py)."""

import threading
from io import BytesIO

import psycopg
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test import Client
from django.urls import reverse

from budgets import services
from budgets.models import StageFigure
from budgets.services import SheetRow
from wards.models import Stage

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs a PostgreSQL server to kill connections of"
)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _conninfo() -> dict:
    s = connection.settings_dict
    return {
        "dbname": s["NAME"],
        "user": s["USER"],
        "password": s["PASSWORD"] or None,
        "host": s["HOST"] or None,
        "port": s["PORT"] or None,
    }


def _kill(pid: int) -> None:
    """Terminate a backend from a second connection, in another thread, as an operator or a
    failing server would, and wait until it is gone."""
    done = []

    def killer():
        with psycopg.connect(**_conninfo(), autocommit=True) as other:
            done.append(other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0])
            for _ in range(200):
                gone = other.execute(
                    "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", [pid]
                ).fetchone()[0]
                if gone:
                    break
                other.execute("SELECT pg_sleep(0.01)")

    thread = threading.Thread(target=killer)
    thread.start()
    thread.join(timeout=10)
    assert done == [True]


def _serve(path: str, cookie: str = "") -> tuple[int, bytes]:
    """A GET through Django's real WSGI handler, which (unlike the test client) runs the
    request-start connection checks a server runs."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": BytesIO(),
        "wsgi.errors": BytesIO(),
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    status = []
    response = WSGIHandler()(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        body = b"".join(response)
    finally:
        response.close()
    return int(status[0].split()[0]), body


def _snapshot():
    figures = sorted(
        StageFigure.objects.values_list("id", "project_id", "stage", "amount", "reason", "version")
    )
    return figures, StageFigure.history.count()


def _sheet_post(client, office) -> tuple[str, dict]:
    url = reverse("budgets:staff-sheet", args=[2025, "kita"])
    form = client.get(url).context["form"]
    data = {f.html_name: "" if f.value() is None else str(f.value()) for f in form}
    for project in office.kita_projects:
        data[f"amount_{project.pk}"] = "1,000"
        data[f"reason_{project.pk}"] = "見直し"
    return url, data


def test_connection_killed_in_the_middle_of_a_save(transactional_db, office, monkeypatch):
    """The sheet's rows are written, then the connection is killed before the commit: the
    answer is the 503 page (Japanese, with the request id), no figure and no history of the
    save remain, and the next requests are served on a new connection."""
    client = Client(raise_request_exception=False)
    client.force_login(office.kita_staff)
    url, data = _sheet_post(client, office)
    before = _snapshot()
    original = services._allocation_problems
    written = []

    def killed_after_the_rows(**kwargs):
        # Every row of the sheet is written in this transaction by now.
        written.append(
            StageFigure.objects.filter(
                project__in=office.kita_projects, stage=Stage.SEPTEMBER
            ).count()
        )
        _kill(connection.connection.info.backend_pid)
        return original(**kwargs)

    monkeypatch.setattr(services, "_allocation_problems", killed_after_the_rows)
    response = client.post(url, data)
    monkeypatch.setattr(services, "_allocation_problems", original)

    assert written == [3]
    # The database went away: 503, try again (Retry-After), and the save is said to be lost.
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "データベースに接続できません" in page
    assert "保存されていません" in page
    assert "Traceback" not in page and "OperationalError" not in page

    # The next request, as a server would run it, reconnects by itself.
    status, body = _serve("/2025/kita/")
    assert status == 200, body[:500]
    assert "北区" in body.decode()
    # Nothing of the killed save remains.
    assert _snapshot() == before
    # The staff's sheet opens again and the same save now goes through.
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    status, body = _serve(url, cookie)
    assert status == 200
    assert (
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=[
                SheetRow(project_id=p.pk, value=1_000_000, reason="見直し")
                for p in office.kita_projects
            ],
        )
        == 3
    )
    assert StageFigure.history.count() == before[1] + 3


def test_connection_killed_between_requests_is_replaced(transactional_db, office):
    """A kept connection (CONN_MAX_AGE) killed while idle, e.g. by a database restart: the
    next public page is served, not an error (the page cache's version read doubles as the
    health check and retries on a new connection)."""
    assert _serve("/2025/kita/")[0] == 200
    _kill(connection.connection.info.backend_pid)
    status, body = _serve("/2025/kita/")
    assert status == 200, body[:500]
    assert _serve("/healthz")[0] == 200


def test_database_unreachable_then_back(transactional_db, office):
    """The server stops answering (the connection points at a closed port): the public page
    answers the 503 page at once and /healthz 503; when the server is back, both serve again
    without a restart."""
    with psycopg.connect(**_conninfo()) as probe:  # a port nothing listens on
        closed_port = probe.execute("SELECT 1").fetchone() and _free_port()
    settings_dict = connection.settings_dict
    port = settings_dict["PORT"]
    connection.close()
    settings_dict["PORT"] = str(closed_port)
    try:
        status, body = _serve("/2025/kita/")
        assert status == 503
        assert "しばらくしてから、もう一度お試しください" in body.decode()
        status, body = _serve("/healthz")
        assert status == 503
        assert b'"database": "down"' in body
    finally:
        connection.close()
        settings_dict["PORT"] = port
    assert _serve("/2025/kita/")[0] == 200
    assert _serve("/healthz")[0] == 200


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
