"""The seed data against the totals printed in the source documents
(/work/shared/reference/kumamoto-data.md). The printed figures are the test."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.core.management import call_command

from budgets import selectors
from budgets.models import Allocation, Fund, Project, StageFigure
from budgets.selectors import TotalState
from wards.models import FiscalYear, Stage, Ward

INIT, SEPT, FEB, SETTLE = Stage.INITIAL, Stage.SEPTEMBER, Stage.FEBRUARY, Stage.SETTLEMENT

KITA_2021 = {
    "machizukuri": [19_000_000, 14_426_000, 11_626_000, 7_360_000],
    "fukko": [1_200_000, 1_200_000, 1_200_000, 900_000],
}


def _city_ward_fund(rollup, slug, code):
    (ward_rollup,) = [w for w in rollup.wards if w.ward.slug == slug]
    (fund_rollup,) = [f for f in ward_rollup.funds if f.fund.code == code]
    return fund_rollup


def _ledger_fund(fiscal_year, slug, code):
    ledger = selectors.ward_ledger(fiscal_year=fiscal_year, ward=Ward.objects.get(slug=slug))
    (fund_rollup,) = [f for f in ledger.fund_totals if f.fund.code == code]
    return fund_rollup


def _values(fund_rollup):
    return [fund_rollup.total(stage).value for stage in Stage]


@pytest.fixture
def fy2021(seeded):
    return FiscalYear.objects.get(year=2021)


@pytest.fixture
def fy2024(seeded):
    return FiscalYear.objects.get(year=2024)


# --- 令和3年度 北区 (000) --------------------------------------------------------------------


@pytest.mark.parametrize("code", ["machizukuri", "fukko"])
def test_kita_2021_totals_are_the_printed_totals(fy2021, code):
    city = _city_ward_fund(selectors.city_rollup(fiscal_year=fy2021), "kita", code)
    ledger = _ledger_fund(fy2021, "kita", code)
    for rollup in (city, ledger):
        assert _values(rollup) == KITA_2021[code]
        assert all(rollup.total(stage).state == TotalState.COMPLETE for stage in Stage)


def test_kita_2021_remaining_unspent_and_execution_rate(fy2021):
    kita = _city_ward_fund(selectors.city_rollup(fiscal_year=fy2021), "kita", "machizukuri")
    assert kita.allocation == 19_000_000
    assert kita.remaining(SETTLE) == 11_640_000  # 19,000 − 7,360 thousand yen
    assert kita.remaining(INIT) == 0
    assert kita.change(SEPT) == -4_574_000  # 9月補正: 14,426 − 19,000
    assert kita.unspent == 4_266_000  # 不用額: 11,626 − 7,360
    assert kita.execution_rate == Decimal("63.3")  # 7,360 ÷ 11,626


def test_kita_2021_every_printed_total_matches(fy2021):
    for code in ("machizukuri", "fukko"):
        rollup = _ledger_fund(fy2021, "kita", code)
        assert rollup.printed == dict(zip(Stage, KITA_2021[code], strict=True))
        assert all(rollup.printed_matches(stage) is True for stage in Stage)


def test_kita_2021_ledger_has_the_printed_projects_in_printed_order(fy2021):
    ledger = selectors.ward_ledger(fiscal_year=fy2021, ward=Ward.objects.get(slug="kita"))
    assert [p.number for p in ledger.projects if p.fund.code == "machizukuri"] == list("①②③④⑤⑥⑦⑧")
    first = ledger.projects[0]
    assert first.name == "北区笑顔交流プロジェクト"
    assert (first.amount_1, first.amount_2, first.amount_3, first.amount_4) == (
        3_100_000,
        3_100_000,
        600_000,
        100_000,
    )
    # Pillar subtotal of 地域を支える土台づくり (⑥⑦⑧) at the initial budget: 1,909 + 1,746 + 310.
    (pillar,) = {p.pillar for p in ledger.projects if p.number == "⑥"}
    machizukuri = Fund.objects.get(code="machizukuri")
    assert ledger.pillar_totals[(pillar.id, machizukuri.id)].total(INIT).value == 3_965_000


# --- 令和3年度 中央区 (001) ------------------------------------------------------------------


def test_chuo_2021_initial_totals(fy2021):
    rollup = selectors.city_rollup(fiscal_year=fy2021)
    assert _city_ward_fund(rollup, "chuo", "machizukuri").total(INIT).value == 19_000_000
    assert _city_ward_fund(rollup, "chuo", "fukko").total(INIT).value == 1_800_000


def test_chuo_2021_later_stages_are_not_entered_not_zero(fy2021):
    chuo = _city_ward_fund(selectors.city_rollup(fiscal_year=fy2021), "chuo", "machizukuri")
    for stage in (SEPT, FEB, SETTLE):
        assert chuo.total(stage).state == TotalState.NOT_ENTERED
        assert chuo.total(stage).value is None
        assert chuo.remaining(stage) is None
    assert chuo.execution_rate is None
    # The printed totals are the only record of those stages.
    assert chuo.printed == {INIT: 19_000_000, SEPT: 15_000_000, FEB: 15_000_000, SETTLE: 13_797_000}
    assert chuo.printed_matches(INIT) is True
    assert chuo.printed_matches(SEPT) is None


def test_chuo_2021_no_budget_projects_are_not_zero(fy2021):
    project = Project.objects.get(ward__slug="chuo", fiscal_year=fy2021, name="中央区広報広聴事業")
    figure = StageFigure.objects.get(project=project, stage=INIT)
    assert figure.amount is None
    assert not StageFigure.objects.filter(project=project, stage=SEPT).exists()


def test_city_2021_totals_are_incomplete_while_chuo_lacks_later_stages(fy2021):
    rollup = selectors.city_rollup(fiscal_year=fy2021)
    (machizukuri,) = [f for f in rollup.city if f.fund.code == "machizukuri"]
    assert machizukuri.total(INIT).value == 38_000_000  # 北区 19,000 + 中央区 19,000
    assert machizukuri.total(SEPT).state == TotalState.INCOMPLETE
    assert machizukuri.total(SEPT).value is None  # not 14,426 as if 中央区 were 0


# --- 令和6年度 (002) -------------------------------------------------------------------------


def test_2024_allocations_follow_the_rule(fy2024):
    machizukuri = Fund.objects.get(code="machizukuri")
    rows = Allocation.objects.filter(fiscal_year=fy2024, fund=machizukuri)
    by_ward = {a.ward.slug if a.ward else None: a.amount for a in rows}
    assert by_ward == {
        "chuo": 19_000_000,
        "higashi": 19_000_000,
        "nishi": 19_000_000,
        "minami": 19_000_000,
        "kita": 19_000_000,
        "common": 5_000_000,
        None: 100_000_000,
    }

    rollup = selectors.city_rollup(fiscal_year=fy2024)
    (city,) = [f for f in rollup.city if f.fund == machizukuri]
    assert city.allocation == 100_000_000
    assert rollup.allocated_to_wards[machizukuri.id] == city.allocation


def test_published_stages(fy2021, fy2024):
    assert fy2024.published_stage == Stage.INITIAL
    assert fy2021.published_stage == Stage.SETTLEMENT
    assert selectors.city_rollup(fiscal_year=fy2024).stages == [INIT]
    assert selectors.city_rollup(fiscal_year=fy2021).stages == [INIT, SEPT, FEB, SETTLE]


def test_2024_kita_featured_projects(fy2024):
    kita = _city_ward_fund(selectors.city_rollup(fiscal_year=fy2024), "kita", "machizukuri")
    assert kita.total(INIT).value == 5_081_000  # 3,900 + 1,181
    assert kita.total(SEPT).state == TotalState.UNPUBLISHED


@pytest.mark.parametrize(
    ("name_2024", "name_2021"),
    [
        ("北区こどもまつりの開催", "北区笑顔交流プロジェクト"),
        ("「北区の魅力！」発信事業", "「北区の魅力」発信事業！"),
    ],
)
def test_kita_2024_projects_continue_their_2021_projects(fy2024, name_2024, name_2021):
    kita = Ward.objects.get(slug="kita")
    later = Project.objects.get(ward=kita, fiscal_year=fy2024, name=name_2024)
    assert later.previous.name == name_2021
    assert later.previous.fiscal_year_id == 2021
    assert later.previous.ward == kita

    earlier = selectors.project_detail(
        fiscal_year=later.previous.fiscal_year, ward=kita, pk=later.previous_id
    )
    assert earlier.later == [later]


# --- Loading twice ---------------------------------------------------------------------------


def _counts():
    models = [
        *apps.get_app_config("wards").get_models(),
        *apps.get_app_config("budgets").get_models(),
    ]
    counts = {model.__name__: model.objects.count() for model in models}
    counts["pillar city visions"] = apps.get_model(
        "wards", "VisionPillar"
    ).city_visions.through.objects.count()
    return counts


def _figures():
    return list(
        StageFigure.objects.order_by(
            "project__ward__slug", "project__fiscal_year", "project__name", "stage"
        ).values_list(
            "project__ward__slug",
            "project__fiscal_year",
            "project__name",
            "stage",
            "amount",
            "version",
            "updated_at",
        )
    )


def test_loading_the_seed_twice_changes_nothing(seeded):
    counts, figures = _counts(), _figures()
    assert counts["Project"] == 9 + 19 + 12
    assert counts["StageFigure"] == 9 * 4 + 19 + 12

    call_command("load_seed", verbosity=0)

    assert _counts() == counts
    assert _figures() == figures
