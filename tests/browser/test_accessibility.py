"""axe-core (WCAG 2.0 / 2.1, A and AA) on every page type, public and staff, in Japanese
and English; and a full-page screenshot of each at 1280 px and 360 px.

Each test visits its pages in turn and reports every violation of every page at once."""

from urllib.parse import urlparse

import pytest

from budgets.models import Project
from tests.browser.helpers import (
    axe_report,
    axe_violations,
    path_of,
    screenshot,
    staff_login,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EGAO = "北区笑顔交流プロジェクト"


def _check(page, found: dict, name: str, *, status: int = 200, url: str | None = None) -> None:
    """Open url (unless None: the page as it is), screenshot it, run axe on it, and check
    that at 360 px the page itself does not scroll sideways (WCAG 1.4.10, reflow)."""
    if url is not None:
        response = page.goto(url)
        assert response.status == status, (url, response.status)
    query = urlparse(page.url).query
    where = f"{name} {path_of(page)}" + (f"?{query}" if query else "")
    phone = screenshot(page, name)
    found[where] = axe_violations(page)
    if phone["scrollWidth"] > phone["innerWidth"]:
        found[where].append(
            {
                "id": "reflow-360px",
                "impact": "serious",
                "help": f"The page scrolls sideways at 360 px: {phone}",
                "nodes": [],
            }
        )


def test_public_pages_have_no_axe_violations(page, live_server, seeded):
    base = live_server.url
    egao = Project.objects.get(fiscal_year_id=2021, ward__slug="kita", name=EGAO)
    found: dict[str, list] = {}
    for name, url, status in (
        ("city-2021", "/2021/", 200),
        ("city-2024", "/2024/", 200),
        ("ward-2021-kita", "/2021/kita/", 200),
        ("ward-2021-chuo", "/2021/chuo/", 200),
        ("ward-2024-kita", "/2024/kita/", 200),
        ("project", f"/2021/kita/{egao.pk}/", 200),
        ("search", "/search/?q=地域", 200),
        ("glossary", "/glossary/", 200),
        ("data", "/data/", 200),
        ("compare", "/compare/?a=2021&b=2024", 200),
        ("not-found", "/2021/kita/999999/", 404),
    ):
        _check(page, found, name, url=base + url, status=status)
        assert page.locator("html").get_attribute("lang") == "ja"
    # The search really had results, on more than one page.
    page.goto(base + "/search/?q=地域")
    assert page.locator("table:has(> caption#search-results) tbody tr.row-project").count() > 0
    assert page.get_by_role("navigation", name="ページ").count() == 1

    # English: the language switch links to the same page under /en/, and its links stay there.
    page.goto(base + "/2021/")
    page.get_by_role("link", name="English").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert "FY2021" in page.locator("h1").inner_text()
    _check(page, found, "en-city-2021")
    page.get_by_role("link", name="Kita Ward", exact=True).first.click()
    page.wait_for_url("**/en/2021/kita/")
    assert "Kita Ward" in page.locator("h1").inner_text()
    _check(page, found, "en-ward-2021-kita")
    _check(page, found, "en-city-2024", url=base + "/en/2024/")

    report = axe_report(found)
    if report:
        pytest.fail("axe violations:\n" + report, pytrace=False)


def test_staff_pages_have_no_axe_violations(page, live_server, office):
    base = live_server.url
    one, two, _ = office.kita_projects
    found: dict[str, list] = {}
    _check(page, found, "staff-login", url=base + "/staff/login/")
    # A failed login shows its error summary.
    page.get_by_role("textbox", name="ユーザー名").fill("kita_staff")
    page.get_by_role("textbox", name="パスワード").fill("wrong password")
    page.get_by_role("button", name="ログイン").click()
    page.locator("#login-errors").wait_for()
    _check(page, found, "staff-login-error")

    staff_login(page, base, "kita_staff")
    _check(page, found, "staff-home-ward")
    _check(page, found, "staff-sheet", url=base + "/staff/2025/kita/")
    # Refused over the allocation (a message for the whole sheet) ...
    page.get_by_role("textbox", name=f"{one.name} 9月補正後（千円）").fill("18,000")
    page.get_by_role("textbox", name=f"{one.name} 補正理由").fill("増額")
    page.get_by_role("button", name="保存する").click()
    page.locator("#error-summary").wait_for()
    assert "超えています" in page.locator("#error-summary").inner_text()
    _check(page, found, "staff-sheet-over-allocation")
    # ... and errors on the fields themselves (not a number; a change without a reason).
    page.get_by_role("textbox", name=f"{one.name} 9月補正後（千円）").fill("2,600")
    page.get_by_role("textbox", name=f"{one.name} 補正理由").fill("")
    page.get_by_role("textbox", name=f"{two.name} 9月補正後（千円）").fill("abc")
    page.get_by_role("button", name="保存する").click()
    page.locator("input[aria-invalid='true']").first.wait_for()
    _check(page, found, "staff-sheet-field-errors")
    _check(page, found, "staff-import", url=base + "/staff/2025/kita/import/")
    # A saved and submitted sheet, so that the review has changes and a ward to send back.
    page.goto(base + "/staff/2025/kita/")
    page.get_by_role("textbox", name=f"{one.name} 9月補正後（千円）").fill("2,600")
    page.get_by_role("textbox", name=f"{one.name} 補正理由").fill("事業内容の見直し")
    page.get_by_role("button", name="保存する").click()
    page.locator(".message.success").wait_for()
    page.get_by_role("button", name="北区の9月補正後を提出する").click()
    page.locator(".message.success").wait_for()
    _check(page, found, "staff-sheet-submitted")
    page.get_by_role("button", name="ログアウト（kita_staff）").click()
    page.wait_for_url("**/staff/login/")

    staff_login(page, base, "planner")
    _check(page, found, "staff-home-planner")
    _check(page, found, "staff-review", url=base + "/staff/2025/review/")
    assert page.locator("section[aria-labelledby='review-kita'] tbody tr").count() == 1
    _check(page, found, "staff-project", url=base + f"/staff/projects/{one.pk}/")
    assert page.locator("form.correction").count() >= 1

    report = axe_report(found)
    if report:
        pytest.fail("axe violations:\n" + report, pytrace=False)
