"""A citizen reads the site in a real browser: from the city to one project, the search,
the glossary and the language switch; and the same core path on a phone."""

import re

import pytest

from tests.browser.helpers import (
    assert_no_horizontal_overflow,
    assert_scrolls_in_its_box,
    number,
    path_of,
    query_of,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KITA_2021_TOTALS = ["19,000", "14,426", "11,626", "7,360"]
EGAO = "北区笑顔交流プロジェクト"
# The link's name: the header and its visually hidden "（並べ替え）".
SORT_BY_INITIAL = re.compile(r"^当初予算\s*（並べ替え）$")


def _ledger(page, caption_id: str):
    return page.locator(f"table:has(> caption#{caption_id})")


def _row_cells(table, header: str) -> list[str]:
    row = table.locator("tbody tr", has=table.page.locator("th", has_text=header))
    return [text.strip() for text in row.first.locator("td.num").all_inner_texts()]


def _city_to_kita_2021(page, base_url: str) -> None:
    """/ (the latest year) → 令和3年度 by the year switcher → 北区 in the city table."""
    page.goto(base_url + "/")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert "令和6年度" in page.locator("h1").inner_text()
    years = page.get_by_role("navigation", name="年度")
    assert years.get_by_role("link", name="令和6年度").get_attribute("aria-current") == "page"
    years.get_by_role("link", name="令和3年度").click()
    page.wait_for_url("**/2021/")
    assert "令和3年度" in page.locator("h1").inner_text()
    city = page.locator("section[aria-labelledby='fund-machizukuri']")
    city.get_by_role("link", name="北区", exact=True).click()
    page.wait_for_url("**/2021/kita/")
    assert "北区" in page.locator("h1").inner_text()


def _kita_totals(page) -> None:
    ledger = _ledger(page, "ward-ledger")
    assert _row_cells(ledger, "まちづくり推進経費 合計")[:4] == KITA_2021_TOTALS


def _egao_stages(page) -> None:
    """The project page: 3,100 → 3,100 → 600 → 100, and the change △2,500 in February."""
    page.get_by_role("link", name=EGAO, exact=True).click()
    page.wait_for_url("**/2021/kita/*/")
    assert EGAO in page.locator("h1").inner_text()
    rows = _ledger(page, "stages-caption").locator("tbody tr")
    assert rows.count() == 4
    amounts = [rows.nth(i).locator("td").nth(0).inner_text().strip() for i in range(4)]
    assert amounts == ["3,100", "3,100", "600", "100"]
    february = rows.nth(2)
    assert "2月補正後" in february.locator("th").inner_text()
    change = february.locator("td").nth(1)
    assert "△" in change.inner_text() and "2,500" in change.inner_text()
    assert "negative" in change.locator(".change").get_attribute("class")


def test_citizen_path_from_the_city_to_a_project_search_glossary_and_english(
    page, live_server, seeded
):
    _city_to_kita_2021(page, live_server.url)
    _kita_totals(page)
    _egao_stages(page)

    # The search: words and a ward, every result in that ward.
    page.get_by_role("navigation", name="サイト").get_by_role("link", name="事業をさがす").click()
    page.wait_for_url("**/search/")
    page.get_by_role("textbox", name="ことば（事業名・事業概要）").fill("北区")
    page.get_by_role("combobox", name="区", exact=True).select_option(label="北区")
    page.get_by_role("button", name="さがす", exact=True).click()
    page.wait_for_url("**/search/?*")
    assert query_of(page)["q"] == ["北区"] and query_of(page)["ward"] == ["kita"]
    results = _ledger(page, "search-results")
    rows = results.locator("tbody tr")
    count = rows.count()
    assert count > 0
    assert page.locator("h2#results").inner_text().startswith(f"{count}件")
    wards = [rows.nth(i).locator("th, td").nth(1).inner_text().strip() for i in range(count)]
    assert set(wards) == {"北区"}
    assert any(EGAO in text for text in results.locator("tbody th").all_inner_texts())

    # Sorting by a column keeps the filters, and says which column sorts.
    results.get_by_role("link", name=SORT_BY_INITIAL).click()
    page.wait_for_url("**sort=stage_1*")
    query = query_of(page)
    assert (query["q"], query["ward"], query["sort"]) == (["北区"], ["kita"], ["stage_1"])
    header = results.locator("thead th", has_text="当初予算")
    assert header.get_attribute("aria-sort") == "ascending"
    column = results.locator("tbody tr td.num:nth-child(7)").all_inner_texts()
    amounts = [a for a in map(number, column) if a is not None]
    assert amounts and amounts == sorted(amounts)
    assert results.locator("tbody tr").count() == count

    # A wider search runs over two pages; the next page keeps the filters and the order.
    page.get_by_role("textbox", name="ことば（事業名・事業概要）").fill("")
    page.get_by_role("combobox", name="区", exact=True).select_option(label="すべての区")
    page.get_by_role("combobox", name="経費", exact=True).select_option(label="まちづくり推進経費")
    page.get_by_role("button", name="さがす", exact=True).click()
    page.wait_for_url("**fund=machizukuri*")
    results.get_by_role("link", name=SORT_BY_INITIAL).click()
    page.wait_for_url("**sort=stage_1*")
    first_page = [a for a in map(number, _first_stage_column(results)) if a is not None]
    pages = page.get_by_role("navigation", name="ページ")
    pages.get_by_role("link", name="次へ").click()
    page.wait_for_url("**page=2*")
    query = query_of(page)
    assert (query["fund"], query["sort"], query["page"]) == (["machizukuri"], ["stage_1"], ["2"])
    assert pages.get_by_role("link", name="2", exact=True).get_attribute("aria-current") == "page"
    second_page = [a for a in map(number, _first_stage_column(results)) if a is not None]
    assert second_page and min(second_page) >= max(first_page)
    funds = results.locator("tbody tr td:nth-child(6)").all_inner_texts()
    assert {f.strip() for f in funds} == {"まちづくり推進経費"}

    # The glossary, then English and back on the same page.
    page.get_by_role("navigation", name="サイト").get_by_role("link", name="ことばの説明").click()
    page.wait_for_url("**/glossary/")
    page.get_by_role("link", name="English").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert path_of(page) == "/en/glossary/"  # an address of its own, to share
    years = page.locator(".year-switcher")
    assert "FY2021" in years.inner_text() and "FY2024" in years.inner_text()
    assert "令和" not in years.inner_text()
    page.get_by_role("link", name="日本語").click()
    page.wait_for_function("document.documentElement.lang === 'ja'")
    assert path_of(page) == "/glossary/"
    assert "令和3年度" in page.locator(".year-switcher").inner_text()
    assert page.get_by_role("heading", level=1).inner_text() == "ことばの説明"


def _first_stage_column(results) -> list[str]:
    return results.locator("tbody tr td.num:nth-child(7)").all_inner_texts()


def test_citizen_path_on_a_phone(phone_page, live_server, seeded):
    page = phone_page
    assert page.evaluate("window.innerWidth") == 360
    page.goto(live_server.url + "/")
    assert_no_horizontal_overflow(page)
    _city_to_kita_2021(page, live_server.url)
    assert_no_horizontal_overflow(page)
    ledger_box = page.locator(".table-scroll:has(caption#ward-ledger)")
    assert_scrolls_in_its_box(ledger_box)
    assert ledger_box.get_attribute("tabindex") == "0"  # keyboard users can scroll it too
    _kita_totals(page)
    _egao_stages(page)
    assert_no_horizontal_overflow(page)
    assert_scrolls_in_its_box(page.locator(".table-scroll:has(caption#stages-caption)"))
    for url in ("/2021/", "/search/?q=北区"):
        page.goto(live_server.url + url)
        assert_no_horizontal_overflow(page)
        assert_scrolls_in_its_box(page.locator(".table-scroll").first)
