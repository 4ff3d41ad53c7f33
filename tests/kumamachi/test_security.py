"""Security headers, the Content Security Policy, request ids and error pages, as a browser
or a citizen would meet them."""

import io
import logging
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.test import Client, override_settings
from django.urls import reverse

from budgets import selectors
from kumamachi.middleware import RequestIdFilter
from kumamachi.security import client_address

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def _policy(response) -> dict[str, str]:
    header = response.get("Content-Security-Policy")
    assert header, "no Content-Security-Policy header"
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


def _public_pages(office) -> list[str]:
    pk = office.kita_projects[0].pk
    pages = ["/", "/2025/", "/2025/kita/", f"/2025/kita/{pk}/", "/search/?q=北区"]
    pages += ["/glossary/", "/data/", "/compare/?a=2025&b=2025", "/staff/login/"]
    # Error pages: a bad comparison (400) and an unknown ward (404).
    pages += ["/compare/?a=x", "/2025/nowhere/"]
    return pages + ["/en" + page for page in pages]


def _staff_pages(office) -> list[str]:
    pk = office.kita_projects[0].pk
    return [
        "/staff/",
        "/staff/2025/kita/",
        "/staff/2025/kita/import/",
        f"/staff/projects/{pk}/",
        "/staff/2025/review/",
        "/en/staff/2025/kita/",
    ]


def _admin_pages() -> list[str]:
    """Every registered model's list and add pages, and the change, history and delete pages
    of its first row: whatever a third-party admin template puts there is seen."""
    pages = [reverse("admin:index"), reverse("admin:password_change")]
    for model in admin.site._registry:
        opts = model._meta
        base = f"admin:{opts.app_label}_{opts.model_name}"
        pages.append(reverse(f"{base}_changelist"))
        pages.append(reverse(f"{base}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            for view in ("change", "history", "delete"):
                pages.append(reverse(f"{base}_{view}", args=[first.pk]))
    return pages


def _admin_client(office) -> Client:
    client = Client()
    client.force_login(office.admin)
    return client


def _planner_client(office) -> Client:
    client = Client()
    client.force_login(office.planner)
    return client


def test_every_page_sends_the_policy_and_the_secure_headers(office):
    anonymous, planner, superuser = Client(), _planner_client(office), _admin_client(office)
    pages = [(anonymous, url) for url in _public_pages(office)]
    pages += [(planner, url) for url in _staff_pages(office)]
    pages += [(superuser, url) for url in _admin_pages()]
    for client, url in pages:
        response = client.get(url)
        assert response.status_code in (200, 400, 403, 404), (url, response.status_code)
        assert _policy(response) == POLICY, url
        assert "Content-Security-Policy-Report-Only" not in response, url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert response["X-Frame-Options"] == "DENY", url
        assert response["Referrer-Policy"] == "same-origin", url
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", url


class _InlineFinder(HTMLParser):
    """Collects what the policy would block: inline script and style, style attributes,
    event-handler attributes and javascript: links."""

    DATA_TYPES = {"application/json", "application/ld+json"}

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and "src" not in names and names.get("type") not in self.DATA_TYPES:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name == "style":
                self.found.append(f"<{tag} style=…>")
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:…>")


def _inline(content: bytes) -> list[str]:
    finder = _InlineFinder()
    finder.feed(content.decode())
    return finder.found


def test_the_finder_sees_each_kind_of_inline_code():
    page = (
        b'<script>alert(1)</script><style>p{}</style><p style="x" onclick="y">'
        b'<a href="javascript:z">a</a><script src="/s.js"></script>'
        b'<script type="application/json">{}</script>'
    )
    assert _inline(page) == [
        "<script> without src",
        "<style>",
        "<p style=…>",
        "<p onclick=…>",
        "<a href=javascript:…>",
    ]


def test_no_page_has_inline_script_or_style(office):
    """The policy allows none, and public pages are cached as the same bytes for everyone,
    so a nonce is no way out: every page type, the staff screens and the admin have none."""
    anonymous, planner, superuser = Client(), _planner_client(office), _admin_client(office)
    pages = [(anonymous, url) for url in _public_pages(office)]
    pages += [(planner, url) for url in _staff_pages(office)]
    pages += [(superuser, url) for url in _admin_pages()]
    found = {}
    for client, url in pages:
        response = client.get(url)
        if "text/html" in response["Content-Type"]:
            inline = _inline(response.content)
            if inline:
                found[url] = inline
    assert found == {}
    assert len(pages) > 60  # the admin walk found the registered models


# --- Request id and error pages -------------------------------------------------------------


def test_each_request_gets_its_own_id_and_a_sane_proxy_id_is_kept(client, office):
    first, second = client.get("/2025/"), client.get("/2025/")
    assert len(first["X-Request-ID"]) == 32 and first["X-Request-ID"] != second["X-Request-ID"]
    kept = client.get("/2025/", headers={"X-Request-ID": "nginx-5f2b9c0e7d1a"})
    assert kept["X-Request-ID"] == "nginx-5f2b9c0e7d1a"
    # Anything that could forge a log line or flood it is replaced, not repeated.
    for forged in ("abc\nERROR fake line", "x" * 500, "short", "id with spaces"):
        response = client.get("/2025/", headers={"X-Request-ID": forged})
        assert response["X-Request-ID"] != forged
        assert len(response["X-Request-ID"]) == 32


@pytest.fixture
def request_ids(caplog):
    """caplog's records with the request id, as the configured handler gives it."""
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO)
    return caplog


def test_an_unhandled_error_is_logged_with_the_request_id_and_the_page_shows_only_the_id(
    office, monkeypatch, request_ids
):
    def broken(**kwargs):
        raise RuntimeError("secret internals: connection string postgres://x")

    monkeypatch.setattr(selectors, "ward_list_flagged", broken)
    client = Client(raise_request_exception=False)
    response = client.get("/2025/kita/")
    assert response.status_code == 500
    request_id = response["X-Request-ID"]
    page = response.content.decode()
    assert "ただいま表示できません" in page
    assert page.index("ただいま表示できません") < page.index("cannot be shown")  # Japanese first
    assert request_id in page
    assert "Traceback" not in page and "secret internals" not in page and "RuntimeError" not in page
    errors = [
        r for r in request_ids.records if r.name == "django.request" and r.levelname == "ERROR"
    ]
    assert len(errors) == 1
    assert errors[0].request_id == request_id
    assert errors[0].exc_info and errors[0].exc_info[0] is RuntimeError
    assert _policy(response) == POLICY


def test_log_lines_are_formatted_with_the_request_id(office):
    """The console handler of LOGGING (the one production writes to) prints the id."""
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    probe = logging.StreamHandler(stream)
    probe.setFormatter(console.formatter)
    for log_filter in console.filters:
        probe.addFilter(log_filter)
    logger = logging.getLogger("kumamachi.security")
    logger.addHandler(probe)
    client = Client()
    client.force_login(office.kita_staff)
    try:
        response = client.get("/staff/2025/chuo/")
    finally:
        logger.removeHandler(probe)
    assert response.status_code == 403
    line = stream.getvalue()
    assert f"kumamachi.security [{response['X-Request-ID']}] access refused" in line


def test_a_refused_access_is_logged_with_user_path_address_and_request_id(office, request_ids):
    client = Client()
    client.force_login(office.kita_staff)
    response = client.get("/staff/2025/chuo/", REMOTE_ADDR="192.0.2.44")
    assert response.status_code == 403
    refused = [r for r in request_ids.records if r.getMessage().startswith("access refused")]
    assert len(refused) == 1
    line = refused[0].getMessage()
    assert "user=kita_staff" in line and "/staff/2025/chuo/" in line and "addr=192.0.2.44" in line
    assert refused[0].request_id == response["X-Request-ID"]
    # The 403 page explains in Japanese and shows nothing of the other ward.
    page = response.content.decode()
    assert "このページを表示する権限がありません" in page and "中央区" not in page


def test_a_form_without_its_token_gets_a_japanese_page_saying_what_to_do(office):
    client = Client(enforce_csrf_checks=True)
    client.force_login(office.kita_staff)
    response = client.post("/staff/2025/kita/submit/", {})
    assert response.status_code == 403
    page = response.content.decode()
    assert "送信できませんでした" in page and "もう一度送信してください" in page


# --- HTTPS behind a proxy ---------------------------------------------------------------------


@override_settings(
    SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")
)
def test_http_is_redirected_to_https_except_the_health_check(office):
    client = Client()
    response = client.get("/staff/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/staff/login/"
    # The proxy says the citizen came over https: served, not redirected again.
    assert client.get("/staff/login/", headers={"X-Forwarded-Proto": "https"}).status_code == 200
    # A load balancer's plain-http probe is answered.
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "proxies, remote, forwarded, expected",
    [
        (0, "192.0.2.1", "", "192.0.2.1"),
        # No proxy configured: a client's X-Forwarded-For is not believed.
        (0, "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        # One proxy: it appended the address it saw; what the client wrote before is ignored.
        (1, "10.0.0.2", "203.0.113.9, 198.51.100.7", "198.51.100.7"),
        (2, "10.0.0.2", "203.0.113.9, 198.51.100.7, 10.0.0.1", "198.51.100.7"),
        # Fewer entries than proxies (a direct request): the socket's address.
        (1, "192.0.2.1", "", "192.0.2.1"),
        (1, "10.0.0.2", "not-an-address", None),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(
    rf, settings, proxies, remote, forwarded, expected
):
    settings.PROXY_COUNT = proxies
    request = rf.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_a_control_character_in_a_username_cannot_forge_a_log_line(db, request_ids):
    Client().post(
        "/staff/login/",
        {"username": "nobody\nlogin user=admin addr=10.0.0.1", "password": "x"},
        REMOTE_ADDR="192.0.2.5",
    )
    failed = [r.getMessage() for r in request_ids.records if r.name == "kumamachi.security"]
    assert len(failed) == 1 and "\n" not in failed[0]
    assert "nobody\\x0alogin" in failed[0]
