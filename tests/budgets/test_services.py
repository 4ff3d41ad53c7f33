"""The write services: figures in their three states, projects, allocations, printed totals."""

import pytest
from django.core.exceptions import ValidationError

from budgets import services
from budgets.models import Allocation, PrintedTotal, Project, StageFigure
from budgets.services import NOT_ENTERED
from tests.factories import (
    FiscalYearFactory,
    FundFactory,
    ProjectFactory,
    StageFigureFactory,
    VisionPillarFactory,
    WardFactory,
)
from wards.models import Stage

pytestmark = pytest.mark.django_db


def _figure(project, stage):
    return StageFigure.objects.filter(project=project, stage=stage).first()


# --- figures_update --------------------------------------------------------------------------


def test_figures_update_stores_yen_no_budget_and_zero_apart():
    project = ProjectFactory()
    result = services.figures_update(
        project=project,
        figures={Stage.INITIAL: 3_100_000, Stage.SEPTEMBER: None, Stage.FEBRUARY: 0},
    )
    assert set(result) == {Stage.INITIAL, Stage.SEPTEMBER, Stage.FEBRUARY}
    assert _figure(project, Stage.INITIAL).amount == 3_100_000
    assert _figure(project, Stage.SEPTEMBER).amount is None  # ― no budget
    assert _figure(project, Stage.FEBRUARY).amount == 0
    assert _figure(project, Stage.SETTLEMENT) is None  # not entered
    assert all(f.version > 0 for f in StageFigure.objects.filter(project=project))


def test_figures_update_bumps_version_only_when_the_amount_changes():
    project = ProjectFactory()
    services.figures_update(project=project, figures={Stage.INITIAL: 1_000_000})
    first = _figure(project, Stage.INITIAL).version
    assert first > 0

    services.figures_update(project=project, figures={Stage.INITIAL: 1_000_000})
    assert _figure(project, Stage.INITIAL).version == first

    services.figures_update(project=project, figures={Stage.INITIAL: 1_500_000})
    figure = _figure(project, Stage.INITIAL)
    assert figure.amount == 1_500_000 and figure.version > first
    second = figure.version

    services.figures_update(project=project, figures={Stage.INITIAL: None})
    figure = _figure(project, Stage.INITIAL)
    assert figure.amount is None and figure.version > second
    third = figure.version

    services.figures_update(project=project, figures={Stage.INITIAL: None})
    assert _figure(project, Stage.INITIAL).version == third

    # 0 is a change from ― (no budget), not the same thing.
    services.figures_update(project=project, figures={Stage.INITIAL: 0})
    figure = _figure(project, Stage.INITIAL)
    assert figure.amount == 0 and figure.version > third


def test_a_figure_cleared_and_entered_again_never_reuses_a_version():
    project = ProjectFactory()
    services.figures_update(project=project, figures={Stage.INITIAL: 1_000_000})
    old = _figure(project, Stage.INITIAL).version
    services.figures_update(project=project, figures={Stage.INITIAL: NOT_ENTERED})
    services.figures_update(project=project, figures={Stage.INITIAL: 1_000_000})
    assert _figure(project, Stage.INITIAL).version != old


def test_figures_update_not_entered_deletes_the_figure():
    project = ProjectFactory()
    StageFigureFactory(project=project, stage=Stage.INITIAL, amount=1_000_000)
    StageFigureFactory(project=project, stage=Stage.SEPTEMBER, amount=900_000)

    result = services.figures_update(project=project, figures={Stage.SEPTEMBER: NOT_ENTERED})

    assert result == {Stage.SEPTEMBER: None}
    assert _figure(project, Stage.SEPTEMBER) is None
    assert _figure(project, Stage.INITIAL).amount == 1_000_000


def test_figures_update_not_entered_on_an_empty_stage_is_harmless():
    project = ProjectFactory()
    result = services.figures_update(project=project, figures={Stage.FEBRUARY: NOT_ENTERED})
    assert result == {Stage.FEBRUARY: None}
    assert not StageFigure.objects.filter(project=project).exists()


def test_figures_update_accepts_plain_stage_numbers():
    project = ProjectFactory()
    services.figures_update(project=project, figures={2: 500_000})
    assert _figure(project, Stage.SEPTEMBER).amount == 500_000


def test_figures_update_rejects_a_negative_amount_in_japanese_and_saves_nothing():
    project = ProjectFactory()
    with pytest.raises(ValidationError) as excinfo:
        services.figures_update(
            project=project, figures={Stage.INITIAL: 1_000_000, Stage.SEPTEMBER: -1}
        )
    assert "金額は0円以上、1兆円未満で入力してください。" in excinfo.value.messages
    # One transaction: the valid stage before the bad one is not left behind.
    assert not StageFigure.objects.filter(project=project).exists()


# --- project_upsert --------------------------------------------------------------------------


def test_project_upsert_creates_then_updates_the_project_of_that_name():
    ward, fiscal_year, fund = WardFactory(), FiscalYearFactory(), FundFactory()
    pillar = VisionPillarFactory(ward=ward, fiscal_year=fiscal_year)
    first = services.project_upsert(
        ward=ward, fiscal_year=fiscal_year, name="北区まちづくり懇話会", fund=fund, number="⑧"
    )
    second = services.project_upsert(
        ward=ward,
        fiscal_year=fiscal_year,
        name="北区まちづくり懇話会",
        fund=fund,
        pillar=pillar,
        number="⑧",
        summary="区民の意見を聴く。",
        is_new=True,
    )
    assert second.pk == first.pk
    project = Project.objects.get()
    assert (project.pillar, project.summary, project.is_new) == (pillar, "区民の意見を聴く。", True)


@pytest.mark.parametrize("other", ["ward", "year"])
def test_project_upsert_rejects_a_pillar_of_another_ward_or_year(other):
    ward, fiscal_year, fund = WardFactory(), FiscalYearFactory(year=2021), FundFactory()
    if other == "ward":
        pillar = VisionPillarFactory(fiscal_year=fiscal_year, name="地域での活動を支援")
    else:
        pillar = VisionPillarFactory(
            ward=ward, fiscal_year=FiscalYearFactory(year=2024), name="地域での活動を支援"
        )
    with pytest.raises(ValidationError) as excinfo:
        services.project_upsert(
            ward=ward, fiscal_year=fiscal_year, name="事業A", fund=fund, pillar=pillar
        )
    assert excinfo.value.message_dict["pillar"] == [
        "方向性「地域での活動を支援」はこの区・年度のものではありません。"
    ]
    assert not Project.objects.filter(name="事業A").exists()


@pytest.mark.parametrize("previous_year", [2024, 2025])
def test_project_upsert_rejects_a_previous_project_of_the_same_or_a_later_year(previous_year):
    ward, fund = WardFactory(), FundFactory()
    fiscal_year = FiscalYearFactory(year=2024)
    previous = ProjectFactory(
        ward=ward, fund=fund, fiscal_year=FiscalYearFactory(year=previous_year)
    )
    with pytest.raises(ValidationError) as excinfo:
        services.project_upsert(
            ward=ward,
            fiscal_year=fiscal_year,
            name="北区こどもまつりの開催",
            fund=fund,
            previous=previous,
        )
    assert excinfo.value.message_dict["previous"] == [
        "前年度以前の事業には、この事業より前の年度の事業を指定します。"
    ]
    assert not Project.objects.filter(name="北区こどもまつりの開催").exists()


def test_project_upsert_links_a_previous_project_of_an_earlier_year():
    ward, fund = WardFactory(), FundFactory()
    earlier = ProjectFactory(ward=ward, fund=fund, fiscal_year=FiscalYearFactory(year=2021))
    later = services.project_upsert(
        ward=ward,
        fiscal_year=FiscalYearFactory(year=2024),
        name="北区こどもまつりの開催",
        fund=fund,
        previous=earlier,
    )
    assert later.previous == earlier
    assert list(earlier.successors.all()) == [later]


def test_project_upsert_rejects_a_duplicate_number_with_the_japanese_message():
    existing = ProjectFactory(number="①")
    with pytest.raises(ValidationError) as excinfo:
        services.project_upsert(
            ward=existing.ward,
            fiscal_year=existing.fiscal_year,
            name="別の事業",
            fund=existing.fund,
            number="①",
        )
    assert "この区・年度には同じ№の事業がすでにあります。" in excinfo.value.messages
    assert Project.objects.count() == 1


def test_project_upsert_allows_repeated_blank_numbers():
    ward, fiscal_year, fund = WardFactory(), FiscalYearFactory(), FundFactory()
    for name in ("事業A", "事業B"):
        services.project_upsert(ward=ward, fiscal_year=fiscal_year, name=name, fund=fund)
    assert Project.objects.filter(number="").count() == 2


def test_full_clean_uses_the_japanese_message_of_each_constraint():
    figure = StageFigureFactory(stage=Stage.INITIAL)
    duplicate = StageFigure(project=figure.project, stage=Stage.INITIAL, amount=1)
    with pytest.raises(ValidationError) as excinfo:
        duplicate.full_clean()
    assert "この事業のこの段階の金額はすでにあります。" in excinfo.value.messages

    too_big = StageFigure(project=figure.project, stage=Stage.SEPTEMBER, amount=10**12)
    with pytest.raises(ValidationError) as excinfo:
        too_big.full_clean()
    assert "金額は0円以上、1兆円未満で入力してください。" in excinfo.value.messages


# --- allocation_set and printed_total_set ----------------------------------------------------


def test_allocation_set_is_an_upsert():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    first = services.allocation_set(
        fiscal_year=fiscal_year, ward=ward, fund=fund, amount=19_000_000
    )
    second = services.allocation_set(
        fiscal_year=fiscal_year, ward=ward, fund=fund, amount=18_500_000
    )
    assert second.pk == first.pk
    assert list(Allocation.objects.values_list("ward", "amount")) == [(ward.pk, 18_500_000)]


def test_allocation_set_city_total_is_an_upsert_too():
    fiscal_year, fund = FiscalYearFactory(), FundFactory()
    services.allocation_set(fiscal_year=fiscal_year, ward=None, fund=fund, amount=90_000_000)
    services.allocation_set(fiscal_year=fiscal_year, ward=None, fund=fund, amount=100_000_000)
    assert list(Allocation.objects.values_list("ward", "amount")) == [(None, 100_000_000)]


def test_allocation_set_rejects_a_negative_amount_in_japanese():
    with pytest.raises(ValidationError) as excinfo:
        services.allocation_set(
            fiscal_year=FiscalYearFactory(), ward=WardFactory(), fund=FundFactory(), amount=-1
        )
    assert "配分額は0円以上、1兆円未満で入力してください。" in excinfo.value.messages
    assert not Allocation.objects.exists()


def test_printed_total_set_is_an_upsert():
    fiscal_year, ward, fund = FiscalYearFactory(), WardFactory(), FundFactory()
    for amount in (14_000_000, 14_426_000):
        services.printed_total_set(
            fiscal_year=fiscal_year, ward=ward, fund=fund, stage=Stage.SEPTEMBER, amount=amount
        )
    assert list(PrintedTotal.objects.values_list("stage", "amount")) == [
        (Stage.SEPTEMBER, 14_426_000)
    ]


def test_fund_upsert_updates_by_code():
    first = services.fund_upsert(
        code="fukko", name_ja="復興支援", name_en="Recovery", position=2, capped_by_allocation=True
    )
    second = services.fund_upsert(
        code="fukko",
        name_ja="復興支援自治推進経費",
        name_en="Recovery support",
        position=2,
        capped_by_allocation=False,
    )
    assert second.pk == first.pk
    second.refresh_from_db()
    assert (second.name_ja, second.capped_by_allocation) == ("復興支援自治推進経費", False)
