"""Queries per request of every page and download: at most 10, and the same when the data
grows (more projects on the page, more wards and more years in the database).

The page cache is off here: these are the queries of a page being rendered."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    AllocationFactory,
    FiscalYearFactory,
    FundFactory,
    ProjectFactory,
    StageFigureFactory,
    VisionPillarFactory,
    WardFactory,
    WardYearFactory,
    staff_user,
)
from wards.models import CityPlan, CityVision, Stage

pytestmark = pytest.mark.django_db

MAX_QUERIES = 10
SETTLED = {
    Stage.INITIAL: 3_100_000,
    Stage.SEPTEMBER: 3_000_000,
    Stage.FEBRUARY: 2_900_000,
    Stage.SETTLEMENT: 2_800_000,
}


def _year(year: int, *, open_year: bool = False):
    if open_year:
        return FiscalYearFactory(
            year=year, published_stage=Stage.INITIAL, open_stage=Stage.SEPTEMBER
        )
    return FiscalYearFactory(year=year, published_stage=Stage.SETTLEMENT)


def _ward_year(ward, fiscal_year, n_projects: int, vision) -> list:
    """``n_projects`` more projects of ``ward`` in ``fiscal_year``, on two pillars."""
    machizukuri = FundFactory(code="machizukuri")
    fukko = FundFactory(code="fukko")
    if not ward.ward_years.filter(fiscal_year=fiscal_year).exists():
        WardYearFactory(ward=ward, fiscal_year=fiscal_year)
        AllocationFactory(ward=ward, fiscal_year=fiscal_year, fund=machizukuri, amount=19_000_000)
        for position in (1, 2):
            pillar = VisionPillarFactory(
                ward=ward, fiscal_year=fiscal_year, position=position, name=f"方向性{position}"
            )
            pillar.city_visions.add(vision)
    pillars = list(ward.pillars.filter(fiscal_year=fiscal_year))
    stages = [s for s in Stage if s <= (fiscal_year.open_stage or fiscal_year.published_stage)]
    made = []
    start = ward.projects.filter(fiscal_year=fiscal_year).count()
    for n in range(start, start + n_projects):
        project = ProjectFactory(
            ward=ward,
            fiscal_year=fiscal_year,
            fund=fukko if n % 7 == 6 else machizukuri,
            pillar=pillars[n % 2],
            number=str(n + 1),
            position=n + 1,
            name=f"{ward.name_ja}の事業{n + 1}",
        )
        for stage in stages:
            StageFigureFactory(project=project, stage=stage, amount=SETTLED[stage] // 10)
        made.append(project)
    return made


@pytest.fixture
def vision():
    plan = CityPlan.objects.create(ordinal=8, name="第8次総合計画")
    return CityVision.objects.create(plan=plan, number=1, title="地域の力")


URLS = [
    "/",
    "/2022/",
    "/2022/kita/",
    "/2022/kita/{project}/",
    "/search/",
    "/search/?q=事業&fiscal_year=2022&sort=-settlement",
    "/compare/?a=2021&b=2022",
    "/glossary/",
    "/data/",
    "/2022/export.xlsx",
    "/2022/kita/export.xlsx",
    "/export.xlsx?from=2021&to=2022",
    "/2022/data.csv",
    "/2022/data.json",
]
STAFF_URLS = [
    "/staff/",
    "/staff/2023/kita/",
    "/staff/2023/kita/export.xlsx",
    "/staff/projects/{project}/",
    "/staff/2023/kita/import/",
]
PLANNER_URLS = ["/staff/2023/review/", "/staff/projects/{project}/"]


def _counts(client, urls, **fmt) -> dict[str, int]:
    counts = {}
    for template in urls:
        url = template.format(**fmt)
        client.get(url)  # anything cached per process is cached now
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
            response.getvalue()  # a streamed download reads as it is sent
        assert response.status_code == 200, (url, response.status_code)
        counts[template] = len(ctx.captured_queries)
    return counts


def _all_counts(client, kita_staff, planner, project) -> dict[str, int]:
    counts = _counts(client, URLS, project=project.pk)
    client.force_login(kita_staff)
    counts.update(
        {f"kita staff {u}": n for u, n in _counts(client, STAFF_URLS, project=project.pk).items()}
    )
    client.force_login(planner)
    counts.update(
        {f"planner {u}": n for u, n in _counts(client, PLANNER_URLS, project=project.pk).items()}
    )
    client.logout()
    return counts


def _small_ledger(vision):
    """北区 in 2021 and 2022 (settled) and 2023 (September open), 3 projects each."""
    kita = WardFactory(slug="kita", name_ja="北区", name_en="Kita", position=5)
    years = {y: _year(y) for y in (2021, 2022)} | {2023: _year(2023, open_year=True)}
    for fiscal_year in years.values():
        _ward_year(kita, fiscal_year, 3, vision)
    project = kita.projects.filter(fiscal_year=years[2022]).order_by("position").first()
    return kita, years, project


def test_queries_per_request_are_few_and_flat_in_the_data(client, settings, vision):
    settings.PAGE_CACHE = False
    kita, years, project = _small_ledger(vision)
    kita_staff = staff_user("kita_staff", wards=[kita])
    planner = staff_user("planner", planner=True)

    small = _all_counts(client, kita_staff, planner, project)

    # More of everything: projects on the measured pages, other wards, earlier years.
    for fiscal_year in years.values():
        _ward_year(kita, fiscal_year, 30, vision)
    for n in range(4):
        other = WardFactory(slug=f"w{n}", position=10 + n)
        for fiscal_year in years.values():
            _ward_year(other, fiscal_year, 5, vision)
    for year in range(2015, 2021):
        _ward_year(kita, _year(year), 5, vision)
    large = _all_counts(client, kita_staff, planner, project)
    # The ten-year workbook reads no more than the two-year one.
    large["/export.xlsx?from=2021&to=2022 (as 2013–2022)"] = _counts(
        client, ["/export.xlsx?from=2013&to=2022"]
    )["/export.xlsx?from=2013&to=2022"]
    small["/export.xlsx?from=2021&to=2022 (as 2013–2022)"] = small["/export.xlsx?from=2021&to=2022"]

    table = "\n".join(f"{small[url]:>3} → {large[url]:>3}  {url}" for url in small)
    assert large == small, table
    assert {url: n for url, n in large.items() if n > MAX_QUERIES} == {}, table


@pytest.fixture
def no_queries_while_rendering(monkeypatch):
    """Fail any query made while a template renders: a page fetches all it shows in its
    view, so rendering cannot add queries (nor hide an N+1 from the view's code)."""
    from django.template.backends.django import Template

    render = Template.render

    def blocker(execute, sql, params, many, context):
        raise AssertionError(f"query while rendering a template: {sql[:200]}")

    def guarded(self, *args, **kwargs):
        with connection.execute_wrapper(blocker):
            return render(self, *args, **kwargs)

    monkeypatch.setattr(Template, "render", guarded)


def test_no_page_queries_the_database_while_its_template_renders(
    client, settings, vision, no_queries_while_rendering
):
    settings.PAGE_CACHE = False
    kita, years, project = _small_ledger(vision)
    pages = [u for u in URLS if not u.endswith((".xlsx", ".csv", ".json")) and "xlsx?" not in u]
    staff_pages = [u for u in STAFF_URLS if not u.endswith(".xlsx")]
    _counts(client, pages + ["/staff/login/"], project=project.pk)
    client.force_login(staff_user("kita_staff", wards=[kita]))
    _counts(client, staff_pages, project=project.pk)
    client.force_login(staff_user("planner", planner=True))
    _counts(client, PLANNER_URLS, project=project.pk)
