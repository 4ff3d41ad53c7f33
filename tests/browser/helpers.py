"""Helpers shared by the browser tests: screenshots, axe-core, layout and focus checks."""

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PASSWORD = "Kuma-machi-2026!"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}


def path_of(page) -> str:
    return urlparse(page.url).path


def query_of(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query, keep_blank_values=True)


def screenshot(page, name: str) -> dict:
    """Full-page screenshots of the page as it is, 1280 px and 360 px wide. Returns the
    page's widths at 360 px (see horizontal_overflow)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for label, size in (("1280", DESKTOP), ("360", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        if size is PHONE:
            phone = horizontal_overflow(page)
    page.set_viewport_size(original)
    return phone


def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page as it is."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm ci` (make test does).")
    # Evaluated, not injected as a <script>: the Content Security Policy allows no such tag.
    page.evaluate(AXE.read_text())
    return page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
            }));
        }""",
        AXE_TAGS,
    )


def axe_report(found: dict[str, list[dict]]) -> str:
    """Every violation of every page: id, help, and the nodes at fault."""
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: {v['id']} ({v['impact']}): {v['help']}")
            for node in v["nodes"]:
                summary = " ".join((node["summary"] or "").split())
                lines.append(f"    {node['target']}  — {summary}")
    return "\n".join(lines)


def horizontal_overflow(page) -> dict:
    return page.evaluate(
        "() => ({scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth})"
    )


def assert_no_horizontal_overflow(page) -> None:
    sizes = horizontal_overflow(page)
    assert sizes["scrollWidth"] <= sizes["innerWidth"], (path_of(page), sizes)


def assert_scrolls_in_its_box(region) -> None:
    """A wide table's wrapper: wider content than its box, scrollable on its own."""
    sizes = region.evaluate(
        """el => {
            const before = el.scrollLeft;
            el.scrollLeft = 120;
            const moved = el.scrollLeft;
            el.scrollLeft = before;
            return {scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, moved,
                    overflowX: getComputedStyle(el).overflowX};
        }"""
    )
    assert sizes["overflowX"] in ("auto", "scroll"), sizes
    assert sizes["scrollWidth"] > sizes["clientWidth"], sizes
    assert sizes["moved"] > 0, sizes


def number(text: str) -> float | None:
    """A figure as the tables print it (3,100 / 1,526.843), None for ―, 未入力, 未公表."""
    match = re.search(r"\d[\d,]*(?:\.\d+)?", text)
    return float(match.group(0).replace(",", "")) if match else None


FOCUS_STYLE = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    return {
        tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name'),
        class: typeof el.className === 'string' ? el.className : '',
        text: (el.innerText || el.value || '').trim().slice(0, 60),
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
        shadow: style.boxShadow !== 'none',
    };
}"""


def focused(page) -> dict | None:
    """What has the focus, and whether it shows it (an outline or a box shadow)."""
    return page.evaluate(FOCUS_STYLE)


def assert_focus_visible(page) -> dict:
    info = focused(page)
    assert info is not None, "nothing has the focus"
    assert info["outline"] or info["shadow"], f"focus not visible on {info}"
    return info


def staff_login(page, base_url: str, username: str) -> None:
    """Log in on /staff/login/ with the test accounts' password; lands on /staff/."""
    page.goto(base_url + "/staff/login/")
    page.get_by_role("textbox", name="ユーザー名").fill(username)
    page.get_by_role("textbox", name="パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url("**/staff/")
