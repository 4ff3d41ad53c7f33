"""The rollups a reader sees: totals that never treat a missing figure as 0, remaining
allocations, revisions, execution rates, only the published stages, and flat query counts."""

from decimal import Decimal

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from budgets import selectors, services
from budgets.models import StageFigure
from budgets.selectors import TotalState
from tests.factories import (
    AllocationFactory,
    FiscalYearFactory,
    FundFactory,
    PrintedTotalFactory,
    ProjectFactory,
    VisionPillarFactory,
    WardFactory,
    project_with_figures,
)
from wards.models import Stage, Ward

pytestmark = pytest.mark.django_db

INIT, SEPT, FEB, SETTLE = Stage.INITIAL, Stage.SEPTEMBER, Stage.FEBRUARY, Stage.SETTLEMENT


def _ward_fund(rollup, ward, fund):
    (ward_rollup,) = [w for w in rollup.wards if w.ward == ward]
    (fund_rollup,) = [f for f in ward_rollup.funds if f.fund == fund]
    return fund_rollup


def _city_fund(rollup, fund):
    (fund_rollup,) = [f for f in rollup.city if f.fund == fund]
    return fund_rollup


def _ward_total(fiscal_year, ward, fund, **kwargs):
    ledger = selectors.ward_ledger(fiscal_year=fiscal_year, ward=ward, **kwargs)
    (fund_rollup,) = [f for f in ledger.fund_totals if f.fund == fund]
    return fund_rollup


def _values(fund_rollup):
    return [fund_rollup.total(stage).value for stage in Stage]


# --- The three figure states -----------------------------------------------------------------


def test_zero_no_budget_and_not_entered_stay_different_in_a_total():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    project_with_figures({INIT: 0}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    project_with_figures({INIT: None}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    missing = ProjectFactory(ward=ward, fiscal_year=fiscal_year, fund=fund)

    for total in (
        _ward_total(fiscal_year, ward, fund).total(INIT),
        _ward_fund(selectors.city_rollup(fiscal_year=fiscal_year), ward, fund).total(INIT),
    ):
        assert total.state == TotalState.INCOMPLETE
        assert (total.projects, total.entered, total.no_budget, total.missing) == (3, 2, 1, 1)
        assert total.value is None  # not summed as if the missing one were 0
        assert not total.is_final

    services.figures_update(project=missing, figures={INIT: 1_200_000})

    total = _ward_total(fiscal_year, ward, fund).total(INIT)
    assert total.state == TotalState.COMPLETE
    assert total.missing == 0
    assert total.value == 1_200_000


def test_complete_total_is_the_sum_of_the_entered_figures():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    for amount in (3_100_000, 617_000, None, 0):
        project_with_figures({INIT: amount}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    total = _ward_total(fiscal_year, ward, fund).total(INIT)
    assert total.state == TotalState.COMPLETE
    assert total.value == 3_717_000


def test_all_no_budget_is_no_budget_with_value_zero():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    for _ in range(3):
        project_with_figures({INIT: None}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    total = _ward_total(fiscal_year, ward, fund).total(INIT)
    assert total.state == TotalState.NO_BUDGET
    assert total.value == 0


def test_none_entered_is_not_entered_and_has_no_value():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    for _ in range(3):
        project_with_figures({INIT: 1_000_000}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    total = _ward_total(fiscal_year, ward, fund).total(SEPT)
    assert total.state == TotalState.NOT_ENTERED
    assert (total.projects, total.entered) == (3, 0)
    assert total.value is None


def test_fund_without_projects_has_no_projects_state():
    fiscal_year, ward = FiscalYearFactory(), WardFactory()
    machizukuri, fukko = FundFactory(), FundFactory(code="fukko")
    project_with_figures({INIT: 1_000_000}, ward=ward, fiscal_year=fiscal_year, fund=machizukuri)
    total = _ward_total(fiscal_year, ward, fukko).total(INIT)
    assert total.state == TotalState.NO_PROJECTS
    assert total.value is None


def test_incomplete_totals_give_no_remaining_change_or_rate():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    AllocationFactory(fiscal_year=fiscal_year, ward=ward, fund=fund, amount=19_000_000)
    project_with_figures(
        {INIT: 1_000_000, SEPT: 900_000, FEB: 900_000, SETTLE: 800_000},
        ward=ward,
        fiscal_year=fiscal_year,
        fund=fund,
    )
    project_with_figures({INIT: 2_000_000}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    rollup = _ward_total(fiscal_year, ward, fund)
    assert rollup.remaining(INIT) == 16_000_000
    assert rollup.remaining(SEPT) is None
    assert rollup.change(SEPT) is None
    assert rollup.unspent is None
    assert rollup.execution_rate is None


# --- city_rollup -----------------------------------------------------------------------------


@pytest.fixture
def city():
    """Two wards and the pool in 2021, both funds, and a 2024 project that must not count."""
    fiscal_year = FiscalYearFactory(year=2021, published_stage=SETTLE)
    machizukuri, fukko = FundFactory(code="machizukuri"), FundFactory(code="fukko")
    north = WardFactory(slug="n", name_ja="北", position=5)
    centre = WardFactory(slug="c", name_ja="中央", position=1)
    pool = WardFactory(slug="pool", name_ja="共通", position=6, kind=Ward.Kind.POOL)

    def project(ward, fund, figures):
        return project_with_figures(figures, ward=ward, fiscal_year=fiscal_year, fund=fund)

    project(
        north, machizukuri, {INIT: 3_000_000, SEPT: 2_500_000, FEB: 2_000_000, SETTLE: 1_500_000}
    )
    project(north, machizukuri, {INIT: 1_000_000, SEPT: 1_000_000, FEB: 1_000_000, SETTLE: 766_000})
    project(north, fukko, {INIT: 1_200_000, SEPT: 1_200_000, FEB: 1_200_000, SETTLE: 900_000})
    project(
        centre, machizukuri, {INIT: 5_000_000, SEPT: 5_000_000, FEB: 4_000_000, SETTLE: 4_000_000}
    )
    for ward, amount in ((north, 19_000_000), (centre, 19_000_000), (pool, 2_000_000)):
        AllocationFactory(fiscal_year=fiscal_year, ward=ward, fund=machizukuri, amount=amount)
    AllocationFactory(fiscal_year=fiscal_year, ward=None, fund=machizukuri, amount=40_000_000)

    later = FiscalYearFactory(year=2024, published_stage=SETTLE)
    project_with_figures({INIT: 99_000_000}, ward=north, fiscal_year=later, fund=machizukuri)
    AllocationFactory(fiscal_year=later, ward=north, fund=machizukuri, amount=25_000_000)
    return {
        "fiscal_year": fiscal_year,
        "machizukuri": machizukuri,
        "fukko": fukko,
        "north": north,
        "centre": centre,
        "pool": pool,
    }


def test_city_rollup_ward_totals_per_fund_and_stage(city):
    rollup = selectors.city_rollup(fiscal_year=city["fiscal_year"])
    assert rollup.stages == [INIT, SEPT, FEB, SETTLE]
    assert [w.ward for w in rollup.wards] == [city["centre"], city["north"], city["pool"]]
    assert rollup.funds == [city["machizukuri"], city["fukko"]]

    north = _ward_fund(rollup, city["north"], city["machizukuri"])
    assert _values(north) == [4_000_000, 3_500_000, 3_000_000, 2_266_000]
    assert all(north.total(stage).state == TotalState.COMPLETE for stage in Stage)
    assert north.allocation == 19_000_000

    north_fukko = _ward_fund(rollup, city["north"], city["fukko"])
    assert _values(north_fukko) == [1_200_000, 1_200_000, 1_200_000, 900_000]
    assert north_fukko.allocation is None
    assert north_fukko.remaining(SETTLE) is None

    centre = _ward_fund(rollup, city["centre"], city["machizukuri"])
    assert _values(centre) == [5_000_000, 5_000_000, 4_000_000, 4_000_000]


def test_city_rollup_remaining_change_unspent_and_execution_rate(city):
    rollup = selectors.city_rollup(fiscal_year=city["fiscal_year"])
    north = _ward_fund(rollup, city["north"], city["machizukuri"])

    assert north.remaining(INIT) == 15_000_000
    assert north.remaining(SETTLE) == 16_734_000  # 19,000,000 − 2,266,000
    assert north.change(INIT) is None  # nothing before the initial budget
    assert north.change(SEPT) == -500_000
    assert north.change(FEB) == -500_000
    assert north.change(SETTLE) == -734_000
    assert north.unspent == 734_000  # 不用額 = 3,000,000 − 2,266,000

    rate = north.execution_rate  # 2,266,000 ÷ 3,000,000 = 75.53…%
    assert isinstance(rate, Decimal)
    assert rate == Decimal("75.5")
    assert str(rate) == "75.5"

    centre = _ward_fund(rollup, city["centre"], city["machizukuri"])
    assert centre.execution_rate == Decimal("100.0")
    assert centre.unspent == 0


def test_city_rollup_city_totals_against_the_city_allocation(city):
    rollup = selectors.city_rollup(fiscal_year=city["fiscal_year"])
    machizukuri = _city_fund(rollup, city["machizukuri"])
    assert _values(machizukuri) == [9_000_000, 8_500_000, 7_000_000, 6_266_000]
    assert machizukuri.allocation == 40_000_000
    assert machizukuri.remaining(INIT) == 31_000_000
    assert machizukuri.remaining(SETTLE) == 33_734_000
    assert machizukuri.execution_rate == Decimal("89.5")  # 6,266 ÷ 7,000

    fukko = _city_fund(rollup, city["fukko"])
    assert _values(fukko) == [1_200_000, 1_200_000, 1_200_000, 900_000]
    assert fukko.allocation is None

    # The wards' and the pool's allocations, beside the city's stated allocation.
    assert rollup.allocated_to_wards == {city["machizukuri"].id: 40_000_000}


def test_city_rollup_pool_with_allocation_but_no_projects(city):
    rollup = selectors.city_rollup(fiscal_year=city["fiscal_year"])
    (pool,) = [w for w in rollup.wards if w.ward == city["pool"]]
    assert pool.has_data  # it has an allocation
    machizukuri = _ward_fund(rollup, city["pool"], city["machizukuri"])
    assert machizukuri.allocation == 2_000_000
    assert machizukuri.total(INIT).state == TotalState.NO_PROJECTS
    assert machizukuri.remaining(INIT) is None
    assert _ward_fund(rollup, city["pool"], city["fukko"]).is_empty


def test_city_rollup_of_a_year_with_nothing_entered(city):
    empty_year = FiscalYearFactory(year=2023, published_stage=SETTLE)
    rollup = selectors.city_rollup(fiscal_year=empty_year)
    assert not any(w.has_data for w in rollup.wards)
    assert rollup.allocated_to_wards == {}
    assert all(f.total(INIT).state == TotalState.NO_PROJECTS for f in rollup.city)


def test_city_incomplete_when_one_ward_has_not_entered_a_stage(city):
    ProjectFactory(ward=city["centre"], fiscal_year=city["fiscal_year"], fund=city["fukko"])
    rollup = selectors.city_rollup(fiscal_year=city["fiscal_year"])
    fukko = _city_fund(rollup, city["fukko"])
    assert fukko.total(INIT).state == TotalState.INCOMPLETE
    assert fukko.total(INIT).missing == 1
    assert fukko.total(INIT).value is None


def test_execution_rate_is_none_when_the_february_budget_is_zero():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    project_with_figures(
        {INIT: 1_000_000, SEPT: 0, FEB: 0, SETTLE: 0}, ward=ward, fiscal_year=fiscal_year, fund=fund
    )
    rollup = _ward_total(fiscal_year, ward, fund)
    assert rollup.execution_rate is None
    assert rollup.unspent == 0


def test_printed_matches_compares_the_entered_total_with_the_document():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    project_with_figures(
        {INIT: 19_000_000, SEPT: 14_000_000}, ward=ward, fiscal_year=fiscal_year, fund=fund
    )
    PrintedTotalFactory(
        fiscal_year=fiscal_year, ward=ward, fund=fund, stage=INIT, amount=19_000_000
    )
    PrintedTotalFactory(
        fiscal_year=fiscal_year, ward=ward, fund=fund, stage=SEPT, amount=14_426_000
    )
    PrintedTotalFactory(fiscal_year=fiscal_year, ward=ward, fund=fund, stage=FEB, amount=11_626_000)
    PrintedTotalFactory(fiscal_year=fiscal_year, ward=WardFactory(), fund=fund, stage=SETTLE)

    for rollup in (
        _ward_total(fiscal_year, ward, fund),
        _ward_fund(selectors.city_rollup(fiscal_year=fiscal_year), ward, fund),
    ):
        assert rollup.printed == {INIT: 19_000_000, SEPT: 14_426_000, FEB: 11_626_000}
        assert rollup.printed_matches(INIT) is True
        assert rollup.printed_matches(SEPT) is False
        assert rollup.printed_matches(FEB) is None  # nothing entered to compare
        assert rollup.printed_matches(SETTLE) is None  # nothing printed


# --- Only the published stages ---------------------------------------------------------------


@pytest.fixture
def initial_only():
    """A year published up to the initial budget, with later figures already in the DB."""
    fiscal_year = FiscalYearFactory(year=2024, published_stage=INIT)
    ward, fund = WardFactory(), FundFactory()
    AllocationFactory(fiscal_year=fiscal_year, ward=ward, fund=fund, amount=19_000_000)
    project = project_with_figures(
        {INIT: 3_900_000, SEPT: 3_000_000, FEB: 2_000_000, SETTLE: 1_000_000},
        ward=ward,
        fiscal_year=fiscal_year,
        fund=fund,
    )
    PrintedTotalFactory(fiscal_year=fiscal_year, ward=ward, fund=fund, stage=SEPT, amount=3_000_000)
    return fiscal_year, ward, fund, project


def test_unpublished_stages_are_not_aggregated(initial_only):
    fiscal_year, ward, fund, _ = initial_only
    rollup = selectors.city_rollup(fiscal_year=fiscal_year)
    assert rollup.stages == [INIT]
    for fund_rollup in (
        _ward_fund(rollup, ward, fund),
        _city_fund(rollup, fund),
        _ward_total(fiscal_year, ward, fund),
    ):
        assert fund_rollup.total(INIT).value == 3_900_000
        for stage in (SEPT, FEB, SETTLE):
            total = fund_rollup.total(stage)
            assert total.state == TotalState.UNPUBLISHED
            assert (total.amount, total.entered, total.value) == (None, 0, None)
            assert fund_rollup.remaining(stage) is None
            assert fund_rollup.change(stage) is None
        assert fund_rollup.unspent is None
        assert fund_rollup.execution_rate is None
        assert SEPT not in fund_rollup.printed


def test_unpublished_stages_are_not_on_the_ledger_rows(initial_only):
    fiscal_year, ward, _, project = initial_only
    ledger = selectors.ward_ledger(fiscal_year=fiscal_year, ward=ward)
    assert ledger.stages == [INIT]
    (row,) = ledger.projects
    assert (row.amount_1, row.entered_1) == (3_900_000, 1)
    assert not hasattr(row, "amount_2")
    assert not hasattr(row, "amount_4")


def test_unpublished_stages_are_hidden_on_the_project_page(initial_only):
    fiscal_year, ward, _, project = initial_only
    detail = selectors.project_detail(fiscal_year=fiscal_year, ward=ward, pk=project.pk)
    assert [(c.visible, c.entered, c.amount) for c in detail.cells] == [
        (True, True, 3_900_000),
        (False, False, None),
        (False, False, None),
        (False, False, None),
    ]
    assert detail.change(SEPT) is None
    assert detail.execution_rate is None


def test_explicit_stages_override_the_published_stage(initial_only):
    fiscal_year, ward, fund, project = initial_only
    everything = list(Stage)

    rollup = selectors.city_rollup(fiscal_year=fiscal_year, stages=everything)
    assert rollup.stages == everything
    assert _values(_ward_fund(rollup, ward, fund)) == [3_900_000, 3_000_000, 2_000_000, 1_000_000]

    fund_rollup = _ward_total(fiscal_year, ward, fund, stages=everything)
    assert fund_rollup.total(SETTLE).value == 1_000_000
    assert fund_rollup.printed_matches(SEPT) is True

    ledger = selectors.ward_ledger(fiscal_year=fiscal_year, ward=ward, stages=[INIT, SEPT])
    assert ledger.stages == [INIT, SEPT]
    assert ledger.projects[0].amount_2 == 3_000_000
    assert _ward_total(fiscal_year, ward, fund, stages=[INIT, SEPT]).total(FEB).state == (
        TotalState.UNPUBLISHED
    )

    detail = selectors.project_detail(
        fiscal_year=fiscal_year, ward=ward, pk=project.pk, stages=everything
    )
    assert [c.amount for c in detail.cells] == [3_900_000, 3_000_000, 2_000_000, 1_000_000]
    assert detail.execution_rate == Decimal("50.0")


def test_a_year_with_nothing_published_shows_no_stage():
    fiscal_year = FiscalYearFactory(year=2025, published_stage=None)
    ward, fund = WardFactory(), FundFactory()
    project_with_figures({INIT: 1_000_000}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    rollup = selectors.city_rollup(fiscal_year=fiscal_year)
    assert rollup.stages == []
    assert all(
        _ward_fund(rollup, ward, fund).total(stage).state == TotalState.UNPUBLISHED
        for stage in Stage
    )


# --- ward_ledger -----------------------------------------------------------------------------


@pytest.fixture
def ledger_setup():
    fiscal_year, ward = FiscalYearFactory(), WardFactory()
    machizukuri, fukko = FundFactory(code="machizukuri"), FundFactory(code="fukko")
    first = VisionPillarFactory(ward=ward, fiscal_year=fiscal_year, position=1, name="場の創出")
    second = VisionPillarFactory(ward=ward, fiscal_year=fiscal_year, position=2, name="土台づくり")

    def project(name, pillar, position, fund, figures):
        return project_with_figures(
            figures,
            ward=ward,
            fiscal_year=fiscal_year,
            fund=fund,
            pillar=pillar,
            position=position,
            name=name,
        )

    # Created out of printed order on purpose.
    project("土台2", second, 2, machizukuri, {INIT: 310_000, SEPT: 310_000})
    project("場2", first, 2, machizukuri, {INIT: 617_000, SEPT: 162_000})
    project("土台1", second, 1, machizukuri, {INIT: 1_909_000})
    project("場1", first, 1, machizukuri, {INIT: 3_100_000, SEPT: None})
    project("場3", first, 3, fukko, {INIT: 1_200_000, SEPT: 1_200_000})
    # Another ward's project in the same year must not show up.
    project_with_figures({INIT: 5_000_000}, fiscal_year=fiscal_year, fund=machizukuri)
    AllocationFactory(fiscal_year=fiscal_year, ward=ward, fund=machizukuri, amount=19_000_000)
    return {
        "fiscal_year": fiscal_year,
        "ward": ward,
        "machizukuri": machizukuri,
        "fukko": fukko,
        "first": first,
        "second": second,
    }


def test_ward_ledger_lists_projects_by_pillar_then_position(ledger_setup):
    ledger = selectors.ward_ledger(
        fiscal_year=ledger_setup["fiscal_year"], ward=ledger_setup["ward"]
    )
    assert [p.name for p in ledger.projects] == ["場1", "場2", "場3", "土台1", "土台2"]


def test_ward_ledger_lists_projects_without_a_pillar_last_on_every_database(ledger_setup):
    s = ledger_setup
    ProjectFactory(
        ward=s["ward"], fiscal_year=s["fiscal_year"], fund=s["machizukuri"], position=0, name="他"
    )
    ledger = selectors.ward_ledger(fiscal_year=s["fiscal_year"], ward=s["ward"])
    assert [p.name for p in ledger.projects] == ["場1", "場2", "場3", "土台1", "土台2", "他"]


def test_ward_ledger_rows_carry_amount_and_entered_per_stage(ledger_setup):
    ledger = selectors.ward_ledger(
        fiscal_year=ledger_setup["fiscal_year"], ward=ledger_setup["ward"]
    )
    rows = {p.name: p for p in ledger.projects}
    assert (rows["場1"].amount_1, rows["場1"].entered_1) == (3_100_000, 1)
    assert (rows["場1"].amount_2, rows["場1"].entered_2) == (None, 1)  # ―
    assert (rows["土台1"].amount_2, rows["土台1"].entered_2) == (None, 0)  # not entered
    assert (rows["場2"].amount_2, rows["場2"].entered_2) == (162_000, 1)
    assert rows["土台2"].entered_4 == 0


def test_ward_ledger_pillar_totals_per_pillar_and_fund(ledger_setup):
    s = ledger_setup
    ledger = selectors.ward_ledger(fiscal_year=s["fiscal_year"], ward=s["ward"])
    machizukuri, fukko = s["machizukuri"].id, s["fukko"].id
    first, second = s["first"].id, s["second"].id
    assert set(ledger.pillar_totals) == {
        (first, machizukuri),
        (first, fukko),
        (second, machizukuri),
    }

    first_machi = ledger.pillar_totals[(first, machizukuri)]
    assert first_machi.fund == s["machizukuri"]
    assert first_machi.total(INIT).value == 3_717_000
    assert first_machi.total(SEPT).state == TotalState.COMPLETE
    assert first_machi.total(SEPT).value == 162_000  # ― counts as nothing, 162,000 entered

    assert ledger.pillar_totals[(first, fukko)].total(INIT).value == 1_200_000

    second_machi = ledger.pillar_totals[(second, machizukuri)]
    assert second_machi.total(INIT).value == 2_219_000
    assert second_machi.total(SEPT).state == TotalState.INCOMPLETE
    assert second_machi.total(SEPT).value is None


def test_ward_ledger_fund_totals(ledger_setup):
    s = ledger_setup
    ledger = selectors.ward_ledger(fiscal_year=s["fiscal_year"], ward=s["ward"])
    assert [f.fund for f in ledger.fund_totals] == [s["machizukuri"], s["fukko"]]
    machizukuri, fukko = ledger.fund_totals
    assert machizukuri.total(INIT).value == 5_936_000
    assert machizukuri.total(INIT).projects == 4
    assert machizukuri.allocation == 19_000_000
    assert machizukuri.remaining(INIT) == 13_064_000
    assert machizukuri.total(SEPT).state == TotalState.INCOMPLETE
    assert _values(fukko)[:2] == [1_200_000, 1_200_000]
    assert fukko.allocation is None


def test_ward_ledger_groups_projects_without_a_pillar():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    project_with_figures({INIT: 1_000_000}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    project_with_figures({INIT: 1_181_000}, ward=ward, fiscal_year=fiscal_year, fund=fund)
    ledger = selectors.ward_ledger(fiscal_year=fiscal_year, ward=ward)
    assert ledger.pillar_totals[(None, fund.id)].total(INIT).value == 2_181_000


# --- project_detail --------------------------------------------------------------------------


def test_project_detail_cells_change_and_execution_rate():
    fiscal_year, ward = FiscalYearFactory(), WardFactory()
    project = project_with_figures(
        {INIT: 3_100_000, SEPT: 3_100_000, FEB: 600_000, SETTLE: 100_000},
        ward=ward,
        fiscal_year=fiscal_year,
    )
    detail = selectors.project_detail(fiscal_year=fiscal_year, ward=ward, pk=project.pk)
    assert detail.project == project
    assert [c.stage for c in detail.cells] == [INIT, SEPT, FEB, SETTLE]
    assert [(c.visible, c.entered, c.amount) for c in detail.cells] == [
        (True, True, 3_100_000),
        (True, True, 3_100_000),
        (True, True, 600_000),
        (True, True, 100_000),
    ]
    assert detail.change(INIT) is None
    assert detail.change(SEPT) == 0
    assert detail.change(FEB) == -2_500_000
    assert detail.change(SETTLE) == -500_000
    assert detail.execution_rate == Decimal("16.7")  # 100 ÷ 600


def test_project_detail_keeps_no_budget_and_not_entered_apart():
    fiscal_year, ward = FiscalYearFactory(), WardFactory()
    project = project_with_figures(
        {INIT: 1_000_000, SEPT: None}, ward=ward, fiscal_year=fiscal_year
    )
    detail = selectors.project_detail(fiscal_year=fiscal_year, ward=ward, pk=project.pk)
    assert [(c.entered, c.amount) for c in detail.cells] == [
        (True, 1_000_000),
        (True, None),  # ―
        (False, None),  # not entered
        (False, None),
    ]
    assert detail.cells[1].as_total.state == TotalState.NO_BUDGET
    assert detail.cells[2].as_total.state == TotalState.NOT_ENTERED
    assert detail.change(FEB) is None
    assert detail.execution_rate is None


def test_project_detail_links_earlier_and_later_years():
    ward, fund = WardFactory(), FundFactory()
    earlier = ProjectFactory(
        ward=ward, fund=fund, fiscal_year=FiscalYearFactory(year=2021), name="北区笑顔交流"
    )
    later_year = FiscalYearFactory(year=2024)
    later = ProjectFactory(
        ward=ward, fund=fund, fiscal_year=later_year, previous=earlier, name="こどもまつり"
    )

    earlier_detail = selectors.project_detail(
        fiscal_year=earlier.fiscal_year, ward=ward, pk=earlier.pk
    )
    assert earlier_detail.earlier == []
    assert earlier_detail.later == [later]
    assert earlier_detail.later[0].fiscal_year.year == 2024

    later_detail = selectors.project_detail(fiscal_year=later_year, ward=ward, pk=later.pk)
    assert later_detail.earlier == [earlier]
    assert later_detail.earlier[0].fiscal_year.year == 2021
    assert later_detail.later == []


def test_project_detail_404_for_a_project_of_another_ward_or_year():
    fiscal_year, ward = FiscalYearFactory(year=2021), WardFactory()
    project = ProjectFactory(ward=ward, fiscal_year=fiscal_year)
    with pytest.raises(Http404):
        selectors.project_detail(fiscal_year=fiscal_year, ward=WardFactory(), pk=project.pk)
    with pytest.raises(Http404):
        selectors.project_detail(fiscal_year=FiscalYearFactory(year=2024), ward=ward, pk=project.pk)
    with pytest.raises(Http404):
        selectors.project_detail(fiscal_year=fiscal_year, ward=ward, pk=project.pk + 1000)


# --- Query counts do not grow with the projects ----------------------------------------------


def _add_projects(count, *, fiscal_year, wards, funds, pillars):
    projects = [
        ProjectFactory(
            ward=wards[i % len(wards)],
            fiscal_year=fiscal_year,
            fund=funds[i % len(funds)],
            pillar=pillars[wards[i % len(wards)].pk],
        )
        for i in range(count)
    ]
    StageFigure.objects.bulk_create(
        StageFigure(project=p, stage=stage, amount=None if p.pk % 7 == 0 else 10_000 * stage)
        for p in projects
        for stage in Stage
    )


def _queries(func):
    with CaptureQueriesContext(connection) as ctx:
        func()
    return len(ctx.captured_queries)


def _render_city(fiscal_year):
    """Read what the city page shows, so lazy loads would be counted too."""
    rollup = selectors.city_rollup(fiscal_year=fiscal_year)
    shown = [
        (str(w.ward), str(f.fund), [f.total(stage).value for stage in Stage])
        for w in rollup.wards
        for f in w.funds
    ]
    return rollup, shown


def _render_ledger(fiscal_year, ward):
    """Read what the ward page shows for every row, so lazy loads would be counted too."""
    ledger = selectors.ward_ledger(fiscal_year=fiscal_year, ward=ward)
    shown = [(str(p.pillar), str(p.fund), p.amount_1, p.entered_4) for p in ledger.projects]
    return ledger, shown


def test_query_counts_do_not_grow_with_the_number_of_projects():
    fiscal_year = FiscalYearFactory()
    wards = [WardFactory() for _ in range(3)]
    funds = [FundFactory(code="machizukuri"), FundFactory(code="fukko")]
    pillars = {w.pk: VisionPillarFactory(ward=w, fiscal_year=fiscal_year) for w in wards}
    for ward in wards:
        AllocationFactory(fiscal_year=fiscal_year, ward=ward, fund=funds[0])
    kwargs = {"fiscal_year": fiscal_year, "wards": wards, "funds": funds, "pillars": pillars}

    _add_projects(5, **kwargs)
    city_few = _queries(lambda: _render_city(fiscal_year))
    ledger_few = _queries(lambda: _render_ledger(fiscal_year, wards[0]))

    _add_projects(195, **kwargs)
    city_many = _queries(lambda: _render_city(fiscal_year))
    ledger_many = _queries(lambda: _render_ledger(fiscal_year, wards[0]))

    assert city_many == city_few
    assert ledger_many == ledger_few
    # And the many really were read.
    assert len(_render_ledger(fiscal_year, wards[0])[0].projects) == 67
    city, _ = _render_city(fiscal_year)
    assert sum(f.total(Stage.INITIAL).projects for f in city.city) == 200


def test_execution_rate_rounds_half_up_like_the_city_tables():
    from budgets.selectors import StageTotal, execution_rate

    february = StageTotal(stage=Stage.FEBRUARY, amount=1_600_000, projects=1, entered=1)
    settled = StageTotal(stage=Stage.SETTLEMENT, amount=100_000, projects=1, entered=1)
    # 100 / 1,600 = 6.25%: 四捨五入 gives 6.3, banker's rounding would give 6.2.
    assert str(execution_rate(february, settled)) == "6.3"


def test_the_wards_of_a_year_are_those_with_projects_or_an_allocation_that_year():
    year, other = FiscalYearFactory(year=2021), FiscalYearFactory(year=2020)
    with_project = ProjectFactory(fiscal_year=year).ward
    with_allocation = AllocationFactory(fiscal_year=year).ward
    elsewhere = ProjectFactory(fiscal_year=other).ward
    nothing = WardFactory()
    of_year = selectors.ward_list_of_year(fiscal_year=year)
    assert set(of_year) == {with_project, with_allocation}
    assert [w.position for w in of_year] == sorted(w.position for w in of_year)
    flagged = {w: w.in_year for w in selectors.ward_list_flagged(fiscal_year=year)}
    assert flagged == {
        with_project: True,
        with_allocation: True,
        elsewhere: False,
        nothing: False,
    }
