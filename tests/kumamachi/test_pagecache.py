"""The public page cache: hits while nothing changes, and never a stale figure after a
publication or a correction, on any page, export or download."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from budgets import services
from budgets.models import StageFigure
from kumamachi import pagecache
from tests.factories import StageFigureFactory
from wards.models import Stage

pytestmark = pytest.mark.django_db

PUBLIC_PAGES = ["/", "/2025/", "/2025/kita/", "/2025/kita/{pk}/", "/search/?q=北区"]
DOWNLOADS = ["/2025/export.xlsx", "/2025/kita/export.xlsx", "/2025/data.csv", "/2025/data.json"]


def test_a_public_page_is_rendered_once_then_served_from_the_cache(client, office):
    first = client.get("/2025/kita/")
    assert first["X-Page-Cache"] == "miss"
    with CaptureQueriesContext(connection) as ctx:
        second = client.get("/2025/kita/")
    assert second["X-Page-Cache"] == "hit"
    # The only query of a hit: the content version.
    assert len(ctx.captured_queries) == 1
    assert second.content == first.content


def test_the_cache_is_per_language_and_per_query_string(client, office):
    client.get("/2025/kita/")
    english = client.get("/en/2025/kita/")
    assert english["X-Page-Cache"] == "miss"
    assert 'lang="en"' in english.content.decode()
    assert client.get("/en/2025/kita/")["X-Page-Cache"] == "hit"
    assert 'lang="ja"' in client.get("/2025/kita/").content.decode()
    assert client.get("/search/?q=北区")["X-Page-Cache"] == "miss"
    assert client.get("/search/?q=中央区")["X-Page-Cache"] == "miss"


def test_a_reader_gets_no_cookie_and_no_form_token(client, office):
    for url in PUBLIC_PAGES:
        url = url.format(pk=office.kita_projects[0].pk)
        for _ in range(2):  # rendered, then from the cache
            response = client.get(url)
            assert response.status_code == 200, url
            assert not response.cookies, (url, response.cookies)
            assert "csrfmiddlewaretoken" not in response.content.decode(), url


def test_a_page_that_asks_for_a_csrf_token_is_never_cached():
    from django.http import HttpResponse
    from django.middleware.csrf import get_token

    @pagecache.cache_public_page
    def with_form(request):
        return HttpResponse(f'<input name="csrfmiddlewaretoken" value="{get_token(request)}">')

    @pagecache.cache_public_page
    def without_form(request):
        return HttpResponse("<p>ok</p>")

    for _ in range(2):
        assert "X-Page-Cache" not in with_form(RequestFactory().get("/form/"))
    assert len(pagecache.store) == 0
    assert without_form(RequestFactory().get("/plain/"))["X-Page-Cache"] == "miss"
    assert without_form(RequestFactory().get("/plain/"))["X-Page-Cache"] == "hit"


def test_staff_are_never_served_a_cached_page(client, office):
    client.get("/2025/kita/")
    client.force_login(office.kita_staff)
    response = client.get("/2025/kita/")
    assert "X-Page-Cache" not in response


def test_errors_are_not_cached(client, office):
    assert client.get("/2025/nowhere/").status_code == 404
    assert "X-Page-Cache" not in client.get("/2025/nowhere/")


def test_the_cache_can_be_turned_off(client, office, settings):
    settings.PAGE_CACHE = False
    client.get("/2025/kita/")
    assert "X-Page-Cache" not in client.get("/2025/kita/")


def _pages(client, pk) -> dict[str, str]:
    return {
        url: client.get(url.format(pk=pk)).content.decode("utf-8", "replace")
        for url in PUBLIC_PAGES
    }


def _downloads(client) -> dict[str, bytes]:
    return {url: client.get(url).getvalue() for url in DOWNLOADS}


def _figures_in_downloads(downloads: dict[str, bytes]) -> str:
    """The downloads' figures as text: the CSV and JSON as they are, the workbooks' cells."""
    import io

    from openpyxl import load_workbook

    text = []
    for url, content in downloads.items():
        if url.endswith(".xlsx"):
            workbook = load_workbook(io.BytesIO(content), read_only=True)
            for sheet in workbook.worksheets:
                for row in sheet.iter_rows(values_only=True):
                    text.append(" ".join(str(v) for v in row if v is not None))
        else:
            text.append(content.decode("utf-8-sig"))
    return "\n".join(text)


def test_publishing_a_stage_shows_on_the_very_next_request_everywhere(client, office):
    project = office.kita_projects[0]
    for other in office.kita_projects + office.chuo_projects:
        amount = 4_321_000 if other == project else 500_000
        StageFigureFactory(project=other, stage=Stage.SEPTEMBER, amount=amount)
    # The project's new figure, and 北区's new total on the city pages (4,321 + 2 × 500).
    expected = {url: "5,321" if url in ("/", "/2025/") else "4,321" for url in PUBLIC_PAGES}
    before = _pages(client, project.pk)
    assert all(expected[url] not in html for url, html in before.items())
    # Every page is now cached.
    assert all(
        client.get(url.format(pk=project.pk))["X-Page-Cache"] == "hit" for url in PUBLIC_PAGES
    )
    for ward in (office.kita, office.chuo):
        services.ward_submit(
            user=office.kita_staff if ward == office.kita else office.chuo_staff,
            fiscal_year=office.year,
            ward=ward,
        )
    services.stage_publish(user=office.planner, fiscal_year=office.year)

    after = _pages(client, project.pk)
    shows_new = {url: expected[url] in html for url, html in after.items()}
    assert shows_new == dict.fromkeys(PUBLIC_PAGES, True)
    assert "4321" in _figures_in_downloads(_downloads(client))


def test_a_correction_shows_on_the_very_next_request_everywhere(client, office):
    project = office.kita_projects[0]
    # The project's corrected figure, and 北区's total on the city pages (3,456 + 617 + 1,582).
    expected = {url: "5,655" if url in ("/", "/2025/") else "3,456" for url in PUBLIC_PAGES}
    before = _pages(client, project.pk)
    assert all(expected[url] not in html for url, html in before.items())
    figure = StageFigure.objects.get(project=project, stage=Stage.INITIAL)
    services.figure_correct(
        user=office.planner,
        project=project,
        stage=Stage.INITIAL,
        value=3_456_000,
        reason="転記誤りの訂正",
        version=figure.version,
    )
    after = _pages(client, project.pk)
    assert {url: expected[url] in html for url, html in after.items()} == dict.fromkeys(
        PUBLIC_PAGES, True
    )
    assert "3456" in _figures_in_downloads(_downloads(client))


def test_every_ledger_write_path_bumps_the_version(office):
    start = pagecache.version_current()
    project = office.kita_projects[0]
    project.name = "改名"
    project.save()
    assert pagecache.version_current() > start
    start = pagecache.version_current()
    type(project).objects.filter(pk=project.pk).update(name="再改名")
    assert pagecache.version_current() > start
    start = pagecache.version_current()
    office.kita.members.add(get_user_model().objects.create(username="new_member"))
    assert pagecache.version_current() > start


def test_a_write_bumps_the_version_once_not_again_for_its_history_row(office):
    project = office.kita_projects[0]
    start = pagecache.version_current()
    with CaptureQueriesContext(connection) as ctx:
        project.name = "改名"
        project.save()
    assert pagecache.version_current() == start + 1
    assert project.history.count() >= 1
    bumps = [q for q in ctx.captured_queries if "wards_contentversion" in q["sql"].lower()]
    assert len(bumps) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has no server connection to lose"
)
def test_the_version_read_reconnects_like_the_health_check_it_stands_in_for():
    from django.db import close_old_connections

    # A fresh connection: one older than CONN_MAX_AGE would be closed, not checked, below.
    connection.close()
    connection.ensure_connection()
    expected = pagecache.version_current()
    assert connection.health_check_enabled  # production and tests alike
    close_old_connections()  # a new request on a kept connection
    connection.connection.close()  # … which the server has dropped meanwhile
    assert pagecache.version_current() == expected
    assert connection.is_usable()


@pytest.mark.django_db(transaction=True)
def test_a_cached_page_costs_one_round_trip_not_a_health_check_too(client, monkeypatch):
    from django.db import close_old_connections

    pagecache.version_current()
    checks = []
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or True)
    close_old_connections()  # as at the start of each request
    pagecache.version_current()
    assert checks == []
    close_old_connections()
    with connection.cursor():  # any other first query still gets Django's check
        pass
    assert checks == [1]
