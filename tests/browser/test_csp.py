"""The Content Security Policy in a real browser: Chromium reports no violation on the
public pages, the staff sheet and the admin, and does report one on a page that breaks it
(so silence means something)."""

import pytest

from tests.browser.helpers import staff_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORDER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


def _watch(page) -> list[str]:
    """Chromium's console lines about the policy, and the page's violation events."""
    seen: list[str] = []
    page.on(
        "console",
        lambda message: (
            seen.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.context.add_init_script(RECORDER)
    return seen


def _violations(page, seen: list[str]) -> list[str]:
    return seen + page.evaluate("window.__cspViolations || []")


def test_no_page_breaks_the_policy(page, live_server, office):
    base = live_server.url
    seen = _watch(page)
    pk = office.kita_projects[0].pk
    found = {}
    for path in ("/2025/", "/2025/kita/", f"/2025/kita/{pk}/", "/en/2025/kita/"):
        response = page.goto(base + path)
        assert response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        found[path] = _violations(page, seen)
        seen.clear()
    staff_login(page, base, "admin")
    for path in (
        "/staff/2025/kita/",
        f"/admin/budgets/project/{pk}/change/",
        f"/admin/budgets/project/{pk}/history/",
        "/admin/budgets/project/",
    ):
        response = page.goto(base + path)
        assert response.status == 200, path
        page.wait_for_load_state("load")
        found[path] = _violations(page, seen)
        seen.clear()
    assert {path: lines for path, lines in found.items() if lines} == {}


def test_a_page_with_inline_code_is_reported(page, live_server, office):
    """The same header on a page with an inline style and script: the browser refuses both
    and the watch above sees it."""
    base = live_server.url
    policy = page.goto(base + "/2025/").headers["content-security-policy"]
    page.route(
        base + "/csp-probe/",
        lambda route: route.fulfill(
            status=200,
            headers={"Content-Security-Policy": policy},
            content_type="text/html",
            body="<!DOCTYPE html><p style='color:red'>x</p><script>document.title='ran'</script>",
        ),
    )
    seen = _watch(page)
    page.goto(base + "/csp-probe/")
    page.wait_for_load_state("load")
    assert page.title() != "ran"
    violations = _violations(page, seen)
    assert any("script-src" in line for line in violations), violations
    assert any("style-src" in line for line in violations), violations
