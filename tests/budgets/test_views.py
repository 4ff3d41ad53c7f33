"""The public pages: content, states and 404s (query counts: test_view_queries.py)."""

import pytest

from tests.factories import (
    AllocationFactory,
    FiscalYearFactory,
    FundFactory,
    ProjectFactory,
    VisionPillarFactory,
    WardFactory,
    WardYearFactory,
    project_with_figures,
)
from wards.models import Stage

pytestmark = pytest.mark.django_db

ALL_STAGES = {
    Stage.INITIAL: 3_100_000,
    Stage.SEPTEMBER: 3_100_000,
    Stage.FEBRUARY: 600_000,
    Stage.SETTLEMENT: 100_000,
}


@pytest.fixture
def kita():
    return WardFactory(slug="kita", name_ja="北区", name_en="Kita", position=5)


@pytest.fixture
def year2021():
    return FiscalYearFactory(year=2021, published_stage=Stage.SETTLEMENT)


def _ledger(ward, fiscal_year, n_projects):
    fund = FundFactory(code="machizukuri")
    pillar = VisionPillarFactory(ward=ward, fiscal_year=fiscal_year, position=1, name="場の創出")
    WardYearFactory(ward=ward, fiscal_year=fiscal_year)
    AllocationFactory(ward=ward, fiscal_year=fiscal_year, fund=fund, amount=19_000_000)
    projects = [
        project_with_figures(
            ALL_STAGES, ward=ward, fiscal_year=fiscal_year, fund=fund, pillar=pillar
        )
        for _ in range(n_projects)
    ]
    return projects


def test_ward_page_shows_projects_grouped_by_pillar_with_totals(client, kita, year2021):
    _ledger(kita, year2021, 2)
    response = client.get("/2021/kita/")
    html = response.content.decode()
    assert "場の創出" in html
    assert "小計（まちづくり推進経費）" in html
    assert "まちづくり推進経費 合計" in html
    # Two projects of 3,100 thousand yen each: 6,200 at the initial stage.
    assert "6,200" in html
    assert "残額（配分額－合計）" in html
    assert "公表済み：決算額まで" in html


def test_ward_switch_lists_the_wards_of_that_year(client, kita, year2021):
    import re

    _ledger(kita, year2021, 1)
    chuo = WardFactory(slug="chuo", name_ja="中央区", position=1)
    AllocationFactory(ward=chuo, fiscal_year=year2021, amount=19_000_000)  # no project yet
    # A ward with data in another year only, and one with none at all.
    gone = WardFactory(slug="gone", name_ja="旧区", position=7)
    _ledger(gone, FiscalYearFactory(year=2020, published_stage=Stage.SETTLEMENT), 1)
    empty = WardFactory(slug="empty", name_ja="空区", position=8)

    def switch(url):
        html = client.get(url).content.decode()
        nav = re.search(r'<nav class="ward-switcher".*?</nav>', html, re.S)[0]
        return re.findall(r'href="/\d+/(\w+)/"', nav)

    assert switch("/2021/kita/") == ["chuo", "kita"]
    # The ward being read is always in its own switch, with or without data.
    assert switch(f"/2021/{empty.slug}/") == ["chuo", "kita", "empty"]
    assert switch("/2020/gone/") == ["gone"]


def test_three_states_render_differently(client, kita, year2021):
    fund = FundFactory(code="machizukuri")
    zero = project_with_figures({Stage.INITIAL: 0}, ward=kita, fiscal_year=year2021, fund=fund)
    blank = project_with_figures({Stage.INITIAL: None}, ward=kita, fiscal_year=year2021, fund=fund)
    missing = project_with_figures({}, ward=kita, fiscal_year=year2021, fund=fund)
    pages = {p: client.get(f"/2021/kita/{p.pk}/").content.decode() for p in (zero, blank, missing)}
    assert '<span class="amount">0</span>' in pages[zero]
    assert "no-budget" in pages[blank] and "―" in pages[blank]
    assert "未入力" in pages[missing] and '<span class="amount">0</span>' not in pages[missing]
    ward_html = client.get("/2021/kita/").content.decode()
    # The total over a stage with a project not entered is marked, never a plain sum.
    assert "1件未入力" in ward_html


def test_unpublished_stages_never_show(client, kita):
    year = FiscalYearFactory(year=2024, published_stage=Stage.INITIAL)
    fund = FundFactory(code="machizukuri")
    project = project_with_figures(
        {Stage.INITIAL: 1_000_000, Stage.SEPTEMBER: 7_777_000},
        ward=kita,
        fiscal_year=year,
        fund=fund,
    )
    for url in ("/2024/", "/2024/kita/", f"/2024/kita/{project.pk}/"):
        html = client.get(url).content.decode()
        assert "7,777" not in html, url
    assert "1,000" in client.get("/2024/kita/").content.decode()
    assert "未公表" in client.get(f"/2024/kita/{project.pk}/").content.decode()


def test_project_page_shows_each_stage_and_change(client, kita, year2021):
    fund = FundFactory(code="machizukuri")
    project = project_with_figures(
        ALL_STAGES,
        ward=kita,
        fiscal_year=year2021,
        fund=fund,
        name="北区笑顔交流プロジェクト",
        summary="こどもまつりを開催する。",
    )
    html = client.get(f"/2021/kita/{project.pk}/").content.decode()
    assert "北区笑顔交流プロジェクト" in html and "こどもまつりを開催する。" in html
    assert "△" in html and "2,500" in html  # 3,100 → 600
    assert "16.7%" in html  # 100 / 600


def test_project_links_earlier_and_later_years(client, kita, year2021):
    fund = FundFactory(code="machizukuri")
    old = ProjectFactory(ward=kita, fiscal_year=year2021, fund=fund, name="旧事業")
    new_year = FiscalYearFactory(year=2024, published_stage=Stage.INITIAL)
    new = ProjectFactory(ward=kita, fiscal_year=new_year, fund=fund, name="新事業", previous=old)
    assert f"/2024/kita/{new.pk}/" in client.get(f"/2021/kita/{old.pk}/").content.decode()
    assert f"/2021/kita/{old.pk}/" in client.get(f"/2024/kita/{new.pk}/").content.decode()


def test_city_page_lists_every_ward_and_city_total(client, year2021):
    fund = FundFactory(code="machizukuri")
    wards = [
        WardFactory(slug=s, name_ja=n, position=i)
        for i, (s, n) in enumerate([("chuo", "中央区"), ("kita", "北区")], start=1)
    ]
    for ward in wards:
        AllocationFactory(ward=ward, fiscal_year=year2021, fund=fund, amount=19_000_000)
        project_with_figures(ALL_STAGES, ward=ward, fiscal_year=year2021, fund=fund)
    AllocationFactory(ward=None, fiscal_year=year2021, fund=fund, amount=100_000_000)
    html = client.get("/2021/").content.decode()
    assert "中央区" in html and "北区" in html and "市全体" in html
    assert "100,000" in html
    assert "6,200" in html  # the city total at the initial stage
    assert 'href="/2021/kita/"' in html


def test_home_is_latest_public_year(client):
    FiscalYearFactory(year=2021, published_stage=Stage.SETTLEMENT)
    FiscalYearFactory(year=2024, published_stage=Stage.INITIAL)
    FiscalYearFactory(year=2025, published_stage=None)
    html = client.get("/").content.decode()
    assert "令和6年度 (2024年度)" in html


def test_home_without_any_year(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "まだ公表されている年度はありません" in response.content.decode()


@pytest.mark.parametrize("url", ["/1999/", "/2021/nowhere/", "/2021/kita/999999/"])
def test_unknown_year_ward_or_project_is_404(client, kita, year2021, url):
    assert client.get(url).status_code == 404


def test_project_of_another_ward_is_404(client, kita, year2021):
    other = WardFactory(slug="chuo", position=1)
    project = ProjectFactory(ward=other, fiscal_year=year2021)
    assert client.get(f"/2021/kita/{project.pk}/").status_code == 404
    assert client.get(f"/2021/chuo/{project.pk}/").status_code == 200


def test_published_stage_without_figure_shows_not_entered(client, kita, year2021):
    fund = FundFactory(code="machizukuri")
    project = project_with_figures(
        {Stage.INITIAL: 1_000_000}, ward=kita, fiscal_year=year2021, fund=fund
    )
    html = client.get(f"/2021/kita/{project.pk}/").content.decode()
    assert html.count("未入力") >= 3
