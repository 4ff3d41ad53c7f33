"""The staff workflow in a real browser: log in, fill the entry sheet, be refused over the
allocation, fix it with reasons, submit, review, publish, and the public sees it. Once
with the mouse, once with the keyboard alone."""

import pytest

from budgets.models import StageFigure
from tests.browser.helpers import (
    PASSWORD,
    assert_focus_visible,
    focused,
    path_of,
    staff_login,
)
from wards.models import Stage, WardSubmission

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _amount(page, project):
    return page.get_by_role("textbox", name=f"{project.name} 9月補正後（千円）", exact=True)


def _reason(page, project):
    return page.get_by_role("textbox", name=f"{project.name} 補正理由", exact=True)


def _messages(page) -> str:
    return page.locator(".messages").inner_text()


def _september(project):
    figure = StageFigure.objects.filter(project=project, stage=Stage.SEPTEMBER).first()
    return figure.amount if figure else None


def _public_september(page) -> list[str]:
    """The 9月補正後 column of /2025/kita/ (projects and the fund total)."""
    table = page.locator("table:has(> caption#ward-ledger)")
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    column = headers.index("9月補正後") + 1
    return [
        t.strip()
        for t in table.locator(
            f"tbody tr.row-project > :nth-child({column}), "
            f"tbody tr.row-total > :nth-child({column})"
        ).all_inner_texts()
    ]


def test_staff_enter_refused_fix_submit_review_publish(page, new_page, live_server, office):
    base = live_server.url
    one, two, three = office.kita_projects
    staff_login(page, base, "kita_staff")
    page.get_by_role("link", name="北区", exact=True).click()
    page.wait_for_url("**/staff/2025/kita/")
    # The open stage comes pre-filled with the initial budget.
    assert _amount(page, one).input_value() == "3,100"

    # Over the allocation: 18,000 + 617 + 1,582 = 20,199 > 19,000. Refused, nothing saved.
    _amount(page, one).fill("18,000")
    _reason(page, one).fill("増額")
    page.get_by_role("button", name="保存する").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert summary.get_attribute("role") == "alert"
    text = summary.inner_text()
    assert "配分額 19,000千円を 1,199千円超えています" in text, text
    assert "何も保存されていません" in text
    assert StageFigure.objects.filter(stage=Stage.SEPTEMBER).count() == 0
    assert _amount(page, one).input_value() == "18,000"  # what was typed is kept

    # Fixed, with the reasons for the changed figures.
    _amount(page, one).fill("2,600")
    _reason(page, one).fill("事業内容の見直し")
    _amount(page, two).fill("５００")  # full-width digits are read too
    _reason(page, two).fill("参加見込みの減")
    page.get_by_role("button", name="保存する").click()
    page.wait_for_selector(".message.success")
    assert "保存しました" in _messages(page)
    assert page.locator("#error-summary").count() == 0
    assert [_september(p) for p in (one, two, three)] == [2_600_000, 500_000, 1_582_000]

    page.get_by_role("button", name="北区の9月補正後を提出する").click()
    page.wait_for_selector(".message.success")
    assert "提出しました" in _messages(page)
    assert page.locator(".notice").inner_text().startswith("提出済み")
    assert WardSubmission.objects.filter(ward=office.kita, stage=Stage.SEPTEMBER).exists()

    # Not yet published: the public does not see the draft.
    citizen = new_page()
    citizen.goto(base + "/2025/kita/")
    assert "2,600" not in citizen.locator("main").inner_text()

    # The planner submits 中央区 from its sheet, reviews and publishes.
    page.get_by_role("button", name="ログアウト（kita_staff）").click()
    page.wait_for_url("**/staff/login/")
    staff_login(page, base, "planner")
    page.goto(base + "/staff/2025/chuo/")
    page.get_by_role("button", name="保存する").click()
    page.wait_for_selector(".message.success")
    page.get_by_role("button", name="中央区の9月補正後を提出する").click()
    page.wait_for_selector(".message.success")
    assert "提出しました" in _messages(page)

    page.get_by_role("link", name="職員用トップ").click()
    page.get_by_role("link", name="提出状況の確認・審査・公表").click()
    page.wait_for_url("**/staff/2025/review/")
    kita = page.locator("section[aria-labelledby='review-kita']")
    assert "提出済み" in kita.locator("h2").inner_text()
    change = kita.locator("tbody tr", has=page.get_by_role("link", name=one.name))
    cells = [t.strip() for t in change.locator("td").all_inner_texts()]
    assert cells[:2] == ["3,100", "2,600"] and "500" in cells[2] and "事業内容の見直し" in cells[3]
    assert "提出済み" in page.locator("section[aria-labelledby='review-chuo'] h2").inner_text()
    page.get_by_role("button", name="9月補正後を公表する").click()
    page.wait_for_url("**/staff/")
    assert "公表しました" in _messages(page)

    page.get_by_role("button", name="ログアウト（planner）").click()
    page.wait_for_url("**/staff/login/")
    page.goto(base + "/2025/kita/")
    assert path_of(page) == "/2025/kita/"
    assert "公表済み：9月補正後まで" in page.locator(".as-of").inner_text()
    assert _public_september(page) == ["2,600", "500", "1,582", "4,682"]


# --- The keyboard alone ----------------------------------------------------------------------


def _tab_to(page, matches, *, key="Tab", limit=80) -> dict:
    """Press Tab (or Shift+Tab) until the focused element matches; every element passed on
    the way must show its focus."""
    for _ in range(limit):
        page.keyboard.press(key)
        info = assert_focus_visible(page)
        if matches(info):
            return info
    raise AssertionError(f"{key} never reached the element; last focus: {focused(page)}")


def _by_text(text):
    return lambda info: info["text"] == text


def _by_name(name):
    return lambda info: info["name"] == name


def _type(page, text: str) -> None:
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(text)


def test_staff_path_with_the_keyboard_alone(page, live_server, office):
    one, two, _ = office.kita_projects
    page.goto(live_server.url + "/staff/login/")

    # The user name field has the focus on arrival (autofocus), and shows it.
    assert assert_focus_visible(page)["name"] == "username"
    page.keyboard.type("kita_staff")
    _tab_to(page, _by_name("password"), limit=1)
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert path_of(page) == "/staff/"

    # The skip link comes first, shows itself when focused and leads into the main content.
    _tab_to(page, _by_text("本文へ移動"), limit=1)
    box = page.locator(".skip-link").bounding_box()
    assert box["x"] >= 0 and box["y"] >= 0, box
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    _tab_to(page, _by_text("北区"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert path_of(page) == "/staff/2025/kita/"

    # The table's scrolling box is a tab stop of its own (keyboard scrolling), then the rows.
    _tab_to(page, lambda info: info["tag"] == "div" and "table-scroll" in info["class"])
    _tab_to(page, _by_name(f"amount_{one.pk}"))
    _type(page, "2,600")
    _tab_to(page, _by_name(f"reason_{one.pk}"), limit=1)
    _type(page, "事業内容の見直し")
    _tab_to(page, _by_name(f"amount_{two.pk}"))
    _type(page, "600")
    _tab_to(page, _by_name(f"reason_{two.pk}"), limit=1)
    _type(page, "参加見込みの減")
    # A second thought: back to the amount with Shift+Tab and correct it.
    _tab_to(page, _by_name(f"amount_{two.pk}"), key="Shift+Tab", limit=1)
    _type(page, "500")
    _tab_to(page, lambda info: info["tag"] == "button" and info["text"] == "保存する")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "保存しました" in _messages(page)
    assert [_september(p) for p in (one, two)] == [2_600_000, 500_000]

    _tab_to(page, _by_text("北区の9月補正後を提出する"), limit=120)
    with page.expect_navigation():
        page.keyboard.press("Space")
    assert "提出しました" in _messages(page)
    assert WardSubmission.objects.filter(ward=office.kita, stage=Stage.SEPTEMBER).exists()
