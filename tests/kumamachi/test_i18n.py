"""Japanese first, English under /en/: the language is in the address, and the switch is
a link to the same page in the other language."""

import re

import pytest

pytestmark = pytest.mark.django_db


def _switch(html: str) -> tuple[str, str]:
    link = re.search(r'<p class="language-switch">\s*<a href="([^"]*)" lang="(\w+)"', html)
    return link[1].replace("&amp;", "&"), link[2]


def test_plain_addresses_are_japanese_whatever_the_browser_asks(client, office):
    client.cookies["django_language"] = "en"
    response = client.get("/2025/kita/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    html = response.content.decode()
    assert '<html lang="ja">' in html
    assert response["Content-Language"] == "ja"


def test_english_pages_live_under_en_and_their_links_stay_there(client, office):
    response = client.get("/en/2025/kita/")
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert "Kita Ward" in html
    hrefs = re.findall(r'href="(/[^"]*)"', html)
    internal = [h for h in hrefs if not h.startswith("/static/")]
    staying = [h for h in internal if h.startswith("/en/")]
    assert sorted(set(internal) - set(staying)) == ["/2025/kita/"]  # only the switch leaves


def test_the_switch_links_to_the_same_page_and_query_in_the_other_language(client, office):
    assert _switch(client.get("/2025/kita/").content.decode()) == ("/en/2025/kita/", "en")
    assert _switch(client.get("/en/2025/kita/").content.decode()) == ("/2025/kita/", "ja")
    # (A browser sends the query percent-encoded.)
    html = client.get("/search/", {"q": "北区", "page": 1}).content.decode()
    assert _switch(html) == ("/en/search/?q=%E5%8C%97%E5%8C%BA&page=1", "en")
    # An alternate link for search engines, to the other language's page.
    assert (
        '<link rel="alternate" hreflang="en" href="/en/2025/kita/">'
        in client.get("/2025/kita/").content.decode()
    )


def test_english_unknown_pages_are_404_in_english(client, office):
    response = client.get("/en/2025/nowhere/")
    assert response.status_code == 404


def test_staff_pages_work_in_both_languages(client, office):
    assert "Log in" in client.get("/en/staff/login/").content.decode()
    assert "ログイン" in client.get("/staff/login/").content.decode()
    client.force_login(office.kita_staff)
    assert client.get("/en/staff/2025/kita/").status_code == 200
    assert client.get("/en/admin/").status_code == 404  # the admin is Japanese only


def test_english_staff_addresses_are_guarded_like_the_japanese_ones(client, office):
    pk = office.kita_projects[0].pk
    for url in ("/en/staff/", "/en/staff/2025/kita/", f"/en/staff/projects/{pk}/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/en/staff/login/"), (url, response["Location"])
    client.force_login(office.chuo_staff)  # another ward's staff
    for url in ("/en/staff/2025/kita/", f"/en/staff/projects/{pk}/"):
        assert client.get(url).status_code in (403, 404), url
        japanese = url.removeprefix("/en")
        assert client.get(url).status_code == client.get(japanese).status_code, url
    client.force_login(office.kita_staff)
    assert client.get("/en/staff/2025/kita/").status_code == 200
