"""The database rules of the ledger: amounts, numbering, one figure per stage, allocations."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from budgets.models import MAX_AMOUNT_YEN, Allocation, PrintedTotal, Project, StageFigure
from tests.factories import (
    AllocationFactory,
    FiscalYearFactory,
    FundFactory,
    PrintedTotalFactory,
    ProjectFactory,
    StageFigureFactory,
    WardFactory,
)
from wards.models import Stage

pytestmark = pytest.mark.django_db


# --- StageFigure amounts ---------------------------------------------------------------------


def test_negative_figure_is_rejected_by_the_db():
    project = ProjectFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        StageFigure.objects.create(project=project, stage=Stage.INITIAL, amount=-1)
    assert not StageFigure.objects.exists()


def test_figure_above_max_amount_is_rejected_by_the_db():
    project = ProjectFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        StageFigure.objects.create(project=project, stage=Stage.INITIAL, amount=MAX_AMOUNT_YEN + 1)


def test_figure_amounts_zero_none_and_max_are_all_stored_as_given():
    project = ProjectFactory()
    StageFigure.objects.create(project=project, stage=Stage.INITIAL, amount=0)
    StageFigure.objects.create(project=project, stage=Stage.SEPTEMBER, amount=None)
    StageFigure.objects.create(project=project, stage=Stage.FEBRUARY, amount=MAX_AMOUNT_YEN)
    stored = dict(project.figures.values_list("stage", "amount"))
    assert stored == {Stage.INITIAL: 0, Stage.SEPTEMBER: None, Stage.FEBRUARY: MAX_AMOUNT_YEN}
    # 0 and ― stay different.
    assert not project.figures.get(stage=Stage.INITIAL).is_no_budget
    assert project.figures.get(stage=Stage.SEPTEMBER).is_no_budget


@pytest.mark.parametrize("stage", [0, 5])
def test_figure_stage_outside_the_four_stages_is_rejected_by_the_db(stage):
    project = ProjectFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        StageFigure.objects.create(project=project, stage=stage, amount=1_000)


def test_one_figure_per_project_and_stage():
    figure = StageFigureFactory(stage=Stage.INITIAL, amount=1_000_000)
    with pytest.raises(IntegrityError), transaction.atomic():
        StageFigure.objects.create(project=figure.project, stage=Stage.INITIAL, amount=2_000_000)
    StageFigure.objects.create(project=figure.project, stage=Stage.SEPTEMBER, amount=2_000_000)
    assert figure.project.figures.count() == 2


# --- Project numbering -----------------------------------------------------------------------


def test_duplicate_project_number_in_the_same_ward_year_is_rejected():
    project = ProjectFactory(number="①")
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.create(
            ward=project.ward,
            fiscal_year=project.fiscal_year,
            fund=project.fund,
            number="①",
            name="別の事業",
        )


def test_same_project_number_is_allowed_in_another_ward_or_year():
    project = ProjectFactory(number="①")
    ProjectFactory(number="①", fiscal_year=project.fiscal_year, fund=project.fund)
    ProjectFactory(
        number="①", ward=project.ward, fund=project.fund, fiscal_year=FiscalYearFactory(year=2024)
    )
    assert Project.objects.filter(number="①").count() == 3


def test_blank_numbers_may_repeat_in_a_ward_year():
    project = ProjectFactory(number="")
    ProjectFactory(number="", ward=project.ward, fiscal_year=project.fiscal_year)
    ProjectFactory(number="", ward=project.ward, fiscal_year=project.fiscal_year)
    assert Project.objects.filter(ward=project.ward, number="").count() == 3


def test_duplicate_project_name_in_the_same_ward_year_is_rejected():
    project = ProjectFactory(name="北区まちづくり懇話会")
    with pytest.raises(IntegrityError), transaction.atomic():
        Project.objects.create(
            ward=project.ward,
            fiscal_year=project.fiscal_year,
            fund=project.fund,
            number="",
            name="北区まちづくり懇話会",
        )


def test_project_cannot_be_its_own_previous():
    project = ProjectFactory()
    project.previous = project
    with pytest.raises(IntegrityError), transaction.atomic():
        project.save()


# --- Allocations -----------------------------------------------------------------------------


def test_allocation_is_unique_per_ward_year_and_fund():
    allocation = AllocationFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            fiscal_year=allocation.fiscal_year,
            ward=allocation.ward,
            fund=allocation.fund,
            amount=5_000_000,
        )


def test_allocation_of_another_ward_fund_or_year_is_allowed():
    allocation = AllocationFactory()
    AllocationFactory(fiscal_year=allocation.fiscal_year, fund=allocation.fund)  # new ward
    AllocationFactory(
        fiscal_year=allocation.fiscal_year, ward=allocation.ward, fund=FundFactory(code="fukko")
    )
    AllocationFactory(
        fiscal_year=FiscalYearFactory(year=2024), ward=allocation.ward, fund=allocation.fund
    )
    assert Allocation.objects.count() == 4


def test_only_one_city_total_row_per_year_and_fund():
    """ward=None is the city total; NULLs must not slip past the uniqueness rule."""
    fiscal_year, fund = FiscalYearFactory(), FundFactory()
    Allocation.objects.create(fiscal_year=fiscal_year, ward=None, fund=fund, amount=100_000_000)
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(fiscal_year=fiscal_year, ward=None, fund=fund, amount=1)
    # Another fund or year may have its own city total.
    Allocation.objects.create(
        fiscal_year=fiscal_year, ward=None, fund=FundFactory(code="fukko"), amount=1
    )
    Allocation.objects.create(
        fiscal_year=FiscalYearFactory(year=2024), ward=None, fund=fund, amount=1
    )
    assert Allocation.objects.filter(ward__isnull=True).count() == 3


def test_city_total_row_sits_beside_the_ward_rows():
    fiscal_year, fund = FiscalYearFactory(), FundFactory()
    AllocationFactory(fiscal_year=fiscal_year, fund=fund, ward=WardFactory())
    Allocation.objects.create(fiscal_year=fiscal_year, ward=None, fund=fund, amount=100_000_000)
    assert Allocation.objects.filter(fiscal_year=fiscal_year, fund=fund).count() == 2


@pytest.mark.parametrize("amount", [-1, MAX_AMOUNT_YEN + 1])
def test_allocation_amount_out_of_range_is_rejected(amount):
    with pytest.raises(IntegrityError), transaction.atomic():
        AllocationFactory(amount=amount)


# --- Printed totals --------------------------------------------------------------------------


def test_one_printed_total_per_ward_year_fund_and_stage():
    printed = PrintedTotalFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PrintedTotal.objects.create(
            fiscal_year=printed.fiscal_year,
            ward=printed.ward,
            fund=printed.fund,
            stage=printed.stage,
            amount=1,
        )


def test_printed_total_cannot_be_negative():
    with pytest.raises(IntegrityError), transaction.atomic():
        PrintedTotalFactory(amount=-1)


# --- Deletion is protected -------------------------------------------------------------------


def test_deleting_a_project_with_figures_is_refused():
    figure = StageFigureFactory()
    with pytest.raises(ProtectedError), transaction.atomic():
        figure.project.delete()
    assert Project.objects.filter(pk=figure.project_id).exists()
    assert StageFigure.objects.filter(pk=figure.pk).exists()


def test_deleting_a_project_that_a_later_year_continues_is_refused():
    earlier = ProjectFactory()
    ProjectFactory(ward=earlier.ward, fiscal_year=FiscalYearFactory(year=2024), previous=earlier)
    with pytest.raises(ProtectedError), transaction.atomic():
        earlier.delete()
    assert Project.objects.filter(pk=earlier.pk).exists()


def test_deleting_a_ward_with_projects_is_refused():
    project = ProjectFactory()
    with pytest.raises(ProtectedError), transaction.atomic():
        project.ward.delete()
