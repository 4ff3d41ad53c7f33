"""Writes to funds, allocations, projects and stage figures.

Every function validates before it saves and runs in one transaction; the admin, forms,
imports and the seed loader all write through these.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from budgets.models import Allocation, Fund, PrintedTotal, Project, StageFigure
from kumamachi.services import upsert, validated_save
from wards.models import FiscalYear, Stage, VisionPillar, Ward


class _NotEntered:
    """Marker for clearing a figure back to 'not entered yet' (未入力)."""

    def __repr__(self) -> str:
        return "NOT_ENTERED"


NOT_ENTERED = _NotEntered()

# A figure as a service takes it: yen, None for ― (no budget), or NOT_ENTERED.
FigureValue = int | None | _NotEntered


@transaction.atomic
def fund_upsert(
    *, code: str, name_ja: str, name_en: str, position: int, capped_by_allocation: bool
) -> Fund:
    return upsert(
        Fund,
        lookup={"code": code},
        values={
            "name_ja": name_ja,
            "name_en": name_en,
            "position": position,
            "capped_by_allocation": capped_by_allocation,
        },
    )


@transaction.atomic
def allocation_set(
    *, fiscal_year: FiscalYear, ward: Ward | None, fund: Fund, amount: int
) -> Allocation:
    """Set a ward's (or, with ward=None, the city's) allocation of a fund in a year."""
    return upsert(
        Allocation,
        lookup={"fiscal_year": fiscal_year, "ward": ward, "fund": fund},
        values={"amount": amount},
    )


@transaction.atomic
def printed_total_set(
    *, fiscal_year: FiscalYear, ward: Ward, fund: Fund, stage: Stage, amount: int
) -> PrintedTotal:
    return upsert(
        PrintedTotal,
        lookup={"fiscal_year": fiscal_year, "ward": ward, "fund": fund, "stage": stage},
        values={"amount": amount},
    )


def _project_validate(
    *,
    ward: Ward,
    fiscal_year: FiscalYear,
    pillar: VisionPillar | None,
    previous: Project | None,
) -> None:
    """Rules that span rows, which the database cannot check on its own."""
    errors = {}
    if pillar is not None and (pillar.ward_id, pillar.fiscal_year_id) != (ward.pk, fiscal_year.pk):
        errors["pillar"] = _("方向性「%(pillar)s」はこの区・年度のものではありません。") % {
            "pillar": pillar.name
        }
    if previous is not None and previous.fiscal_year_id >= fiscal_year.pk:
        errors["previous"] = _("前年度以前の事業には、この事業より前の年度の事業を指定します。")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def project_upsert(
    *,
    ward: Ward,
    fiscal_year: FiscalYear,
    name: str,
    fund: Fund,
    pillar: VisionPillar | None = None,
    number: str = "",
    position: int = 0,
    summary: str = "",
    is_new: bool = False,
    previous: Project | None = None,
) -> Project:
    """Create or update the project of that name in the ward-year."""
    _project_validate(ward=ward, fiscal_year=fiscal_year, pillar=pillar, previous=previous)
    return upsert(
        Project,
        lookup={"ward": ward, "fiscal_year": fiscal_year, "name": name},
        values={
            "fund": fund,
            "pillar": pillar,
            "number": number,
            "position": position,
            "summary": summary,
            "is_new": is_new,
            "previous": previous,
        },
    )


@transaction.atomic
def figures_update(
    *, project: Project, figures: Mapping[Stage, FigureValue]
) -> dict[Stage, StageFigure | None]:
    """Set a project's figures at the given stages.

    A value is whole yen, None for ― (no budget), or NOT_ENTERED to clear the stage.
    """
    existing = {f.stage: f for f in StageFigure.objects.select_for_update().filter(project=project)}
    result: dict[Stage, StageFigure | None] = {}
    for stage, value in figures.items():
        stage = Stage(stage)
        figure = existing.get(stage)
        if value is NOT_ENTERED:
            if figure is not None:
                figure.delete()
            result[stage] = None
            continue
        if figure is None:
            figure = StageFigure(project=project, stage=stage, amount=value)
        elif figure.amount == value:
            result[stage] = figure
            continue
        else:
            figure.amount = value
        result[stage] = validated_save(figure, exclude=["project"])
    return result
