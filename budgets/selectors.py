"""Reads and rollups of the budget ledger.

Every sum is computed in SQL with conditional aggregation, one query per grouping. A stage
total carries how many projects it covers and how many have a figure, so a total over
figures that are not all entered is shown as incomplete, never as if the missing were 0.
Only the stages passed in (the published ones, for the public) are ever aggregated.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from budgets.models import Allocation, Correction, Fund, PrintedTotal, Project, StageFigure
from wards.models import CityVision, FiscalYear, Stage, VisionPillar, Ward, WardSubmission, WardYear


class TotalState(enum.StrEnum):
    UNPUBLISHED = "unpublished"  # the stage is not visible to this reader
    NO_PROJECTS = "no_projects"  # nothing to total
    NOT_ENTERED = "not_entered"  # no project has a figure yet
    INCOMPLETE = "incomplete"  # some projects have a figure, some not
    NO_BUDGET = "no_budget"  # every project is ― (no budget)
    COMPLETE = "complete"


@dataclass(frozen=True)
class StageTotal:
    """The total of a group of projects at one stage, in yen, with its completeness."""

    stage: Stage
    amount: int | None = None
    projects: int = 0
    entered: int = 0
    no_budget: int = 0
    visible: bool = True

    @property
    def state(self) -> TotalState:
        if not self.visible:
            return TotalState.UNPUBLISHED
        if self.projects == 0:
            return TotalState.NO_PROJECTS
        if self.entered == 0:
            return TotalState.NOT_ENTERED
        if self.entered < self.projects:
            return TotalState.INCOMPLETE
        if self.no_budget == self.entered:
            return TotalState.NO_BUDGET
        return TotalState.COMPLETE

    @property
    def missing(self) -> int:
        return self.projects - self.entered

    @property
    def is_final(self) -> bool:
        """True when the total is a real figure: every project entered (― counts as 0)."""
        return self.state in (TotalState.COMPLETE, TotalState.NO_BUDGET)

    @property
    def value(self) -> int | None:
        """The total in yen when final, else None."""
        if not self.is_final:
            return None
        return self.amount or 0


def _change(current: StageTotal, previous: StageTotal | None) -> int | None:
    if previous is None or not (current.is_final and previous.is_final):
        return None
    return current.value - previous.value


@dataclass(frozen=True)
class PrintedCheck:
    stage: Stage
    printed: int
    total: StageTotal
    matches: bool | None  # None: the entered figures are not complete


@dataclass(frozen=True)
class FundRollup:
    """One fund's four stage totals for a ward, the pool, a pillar or the whole city."""

    fund: Fund
    stages: dict[Stage, StageTotal]
    allocation: int | None = None
    printed: dict[Stage, int] = field(default_factory=dict)

    def total(self, stage: Stage) -> StageTotal:
        return self.stages[stage]

    def remaining(self, stage: Stage) -> int | None:
        """Allocation less the stage total (残額), when both are known."""
        total = self.stages[stage]
        if self.allocation is None or not total.is_final:
            return None
        return self.allocation - total.value

    def change(self, stage: Stage) -> int | None:
        """補正額: the change from the previous stage, when both totals are final."""
        previous = stage.previous
        return _change(self.stages[stage], self.stages[previous] if previous else None)

    @property
    def unspent(self) -> int | None:
        """不用額 = 2月補正後 − 決算額."""
        return unspent(self.stages[Stage.FEBRUARY], self.stages[Stage.SETTLEMENT])

    @property
    def execution_rate(self) -> Decimal | None:
        """執行率 = 決算額 ÷ 2月補正後, as a percentage with one decimal."""
        return execution_rate(self.stages[Stage.FEBRUARY], self.stages[Stage.SETTLEMENT])

    def printed_matches(self, stage: Stage) -> bool | None:
        """Whether the entered total equals the total printed in the source document."""
        if stage not in self.printed or not self.stages[stage].is_final:
            return None
        return self.printed[stage] == self.stages[stage].value

    @property
    def printed_checks(self) -> list[PrintedCheck]:
        """Each printed total beside the entered total of the same stage."""
        return [
            PrintedCheck(
                stage=stage,
                printed=self.printed[stage],
                total=self.stages[stage],
                matches=self.printed_matches(stage),
            )
            for stage in Stage
            if stage in self.printed and self.stages[stage].visible
        ]

    @property
    def is_empty(self) -> bool:
        return all(t.projects == 0 for t in self.stages.values()) and self.allocation is None


def _has_incomplete(rollup: FundRollup) -> bool:
    return any(t.state == TotalState.INCOMPLETE for t in rollup.stages.values())


def unspent(february: StageTotal, settlement: StageTotal) -> int | None:
    if not (february.is_final and settlement.is_final):
        return None
    return february.value - settlement.value


def execution_rate(february: StageTotal, settlement: StageTotal) -> Decimal | None:
    if not (february.is_final and settlement.is_final) or not february.value:
        return None
    rate = Decimal(settlement.value * 100) / Decimal(february.value)
    return rate.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)  # 四捨五入


# --- SQL aggregation -------------------------------------------------------------------------


def _stage_aggregates(stages: Iterable[Stage]) -> dict:
    """Conditional aggregates over a Project queryset joined to its figures."""
    aggregates = {"n_projects": Count("id", distinct=True)}
    for stage in stages:
        at_stage = Q(figures__stage=stage)
        aggregates[f"sum_{stage}"] = Sum("figures__amount", filter=at_stage)
        aggregates[f"entered_{stage}"] = Count("figures", filter=at_stage)
        aggregates[f"blank_{stage}"] = Count(
            "figures", filter=at_stage & Q(figures__amount__isnull=True)
        )
    return aggregates


def _stage_totals(row: dict | None, visible: Sequence[Stage]) -> dict[Stage, StageTotal]:
    totals = {}
    for stage in Stage:
        if stage not in visible:
            totals[stage] = StageTotal(stage=stage, visible=False)
        elif row is None:
            totals[stage] = StageTotal(stage=stage)
        else:
            totals[stage] = StageTotal(
                stage=stage,
                amount=row[f"sum_{stage}"],
                projects=row["n_projects"],
                entered=row[f"entered_{stage}"],
                no_budget=row[f"blank_{stage}"],
            )
    return totals


def _grouped_totals(
    projects: QuerySet[Project], group_by: Sequence[str], visible: Sequence[Stage]
) -> dict[tuple, dict]:
    rows = projects.order_by().values(*group_by).annotate(**_stage_aggregates(visible))
    return {tuple(row[g] for g in group_by): row for row in rows}


def _grouped_totals_pair(
    projects: QuerySet[Project], group_by: Sequence[str], extra: str, visible: Sequence[Stage]
) -> tuple[dict[tuple, dict], dict[tuple, dict]]:
    """Two groupings in one statement (UNION ALL): by ``group_by`` + ``extra``, and by
    ``group_by`` alone. Each is keyed like ``_grouped_totals``."""
    aggregates = _stage_aggregates(visible)
    base = projects.order_by().values(*group_by)
    fine = base.annotate(_level=Value(1), _extra=F(extra), **aggregates)
    coarse = base.annotate(
        _level=Value(2), _extra=Value(None, output_field=BigIntegerField()), **aggregates
    )
    by_extra: dict[tuple, dict] = {}
    by_group: dict[tuple, dict] = {}
    for row in fine.union(coarse, all=True):
        key = tuple(row[g] for g in group_by)
        if row["_level"] == 1:
            by_extra[(*key, row["_extra"])] = row
        else:
            by_group[key] = row
    return by_extra, by_group


@dataclass(frozen=True)
class ReferenceAmounts:
    """A year's allocations (ward None: the city total), the sum allocated to the wards
    per fund, and the totals printed in the source documents."""

    allocations: dict[tuple[int | None, int], int]
    allocated_to_wards: dict[int, int]
    printed: dict[tuple[int, int], dict[Stage, int]]


def _reference_amounts(fiscal_year: FiscalYear, visible: Sequence[Stage]) -> ReferenceAmounts:
    """All of ReferenceAmounts in one statement (UNION ALL); the last column says which
    part a row belongs to: 0 an allocation, -1 a fund's sum over the wards, else a stage."""
    in_year = Allocation.objects.filter(fiscal_year=fiscal_year).order_by()
    allocations = in_year.values_list("fund_id", "ward_id", "amount", Value(0))
    to_wards = (
        in_year.filter(ward__isnull=False)
        .values("fund_id")
        .annotate(
            ward=Value(None, output_field=BigIntegerField()),
            total=Sum("amount"),
            part=Value(-1),
        )
        .values_list("fund_id", "ward", "total", "part")
    )
    printed_rows = (
        PrintedTotal.objects.filter(fiscal_year=fiscal_year, stage__in=list(visible))
        .order_by()
        .values_list("fund_id", "ward_id", "amount", "stage")
    )
    result = ReferenceAmounts(allocations={}, allocated_to_wards={}, printed={})
    for fund_id, ward_id, amount, part in allocations.union(to_wards, printed_rows, all=True):
        if part == 0:
            result.allocations[(ward_id, fund_id)] = amount
        elif part == -1:
            result.allocated_to_wards[fund_id] = amount
        else:
            result.printed.setdefault((ward_id, fund_id), {})[Stage(part)] = amount
    return result


def fund_list() -> list[Fund]:
    return list(Fund.objects.order_by("position"))


def _ward_in_year(fiscal_year: FiscalYear) -> Q:
    """A ward that has projects or an allocation in ``fiscal_year``."""
    in_year = {"ward": OuterRef("pk"), "fiscal_year": fiscal_year}
    return Q(Exists(Project.objects.filter(**in_year))) | Q(
        Exists(Allocation.objects.filter(**in_year))
    )


def ward_list_flagged(*, fiscal_year: FiscalYear) -> list[Ward]:
    """Every ward, each with ``in_year``: whether it has projects or an allocation in
    ``fiscal_year`` (the ward switch lists those, not the wards of other years)."""
    return list(
        Ward.objects.order_by("position").annotate(
            in_year=ExpressionWrapper(_ward_in_year(fiscal_year), output_field=BooleanField())
        )
    )


def ward_list_of_year(*, fiscal_year: FiscalYear) -> list[Ward]:
    """The wards with projects or an allocation in ``fiscal_year``, in position order."""
    return list(Ward.objects.filter(_ward_in_year(fiscal_year)).order_by("position"))


# --- City page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WardRollup:
    ward: Ward
    funds: list[FundRollup]

    @property
    def has_data(self) -> bool:
        return any(not f.is_empty for f in self.funds)


@dataclass(frozen=True)
class CityRollup:
    fiscal_year: FiscalYear
    stages: list[Stage]
    funds: list[Fund]
    wards: list[WardRollup]
    city: list[FundRollup]
    # Sum of the wards' and pool's allocations per fund, beside the city's stated allocation.
    allocated_to_wards: dict[int, int]

    @property
    def has_incomplete(self) -> bool:
        return any(_has_incomplete(rollup) for rollup in self.city)


def city_rollup(
    *,
    fiscal_year: FiscalYear,
    stages: Sequence[Stage] | None = None,
    funds: list[Fund] | None = None,
    wards: list[Ward] | None = None,
) -> CityRollup:
    """Every ward and the pool × fund × visible stage, and the city totals. ``funds`` and
    ``wards`` (in position order) can be passed in when the caller has read them."""
    visible = list(fiscal_year.published_stages if stages is None else stages)
    funds = fund_list() if funds is None else funds
    wards = list(Ward.objects.order_by("position")) if wards is None else wards
    projects = Project.objects.filter(fiscal_year=fiscal_year)
    by_ward_fund, by_fund = _grouped_totals_pair(projects, ["fund_id"], "ward_id", visible)
    by_ward = {(ward_id, fund_id): row for (fund_id, ward_id), row in by_ward_fund.items()}
    reference = _reference_amounts(fiscal_year, visible)
    allocations, printed = reference.allocations, reference.printed

    ward_rollups = [
        WardRollup(
            ward=ward,
            funds=[
                FundRollup(
                    fund=fund,
                    stages=_stage_totals(by_ward.get((ward.id, fund.id)), visible),
                    allocation=allocations.get((ward.id, fund.id)),
                    printed=printed.get((ward.id, fund.id), {}),
                )
                for fund in funds
            ],
        )
        for ward in wards
    ]
    city = [
        FundRollup(
            fund=fund,
            stages=_stage_totals(by_fund.get((fund.id,)), visible),
            allocation=allocations.get((None, fund.id)),
        )
        for fund in funds
    ]
    return CityRollup(
        fiscal_year=fiscal_year,
        stages=visible,
        funds=funds,
        wards=ward_rollups,
        city=city,
        allocated_to_wards=reference.allocated_to_wards,
    )


# --- Ward page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PillarRollup:
    pillar_id: int | None
    funds: list[FundRollup]


@dataclass(frozen=True)
class WardLedger:
    fiscal_year: FiscalYear
    ward: Ward
    stages: list[Stage]
    funds: list[Fund]
    pillars: list[VisionPillar]
    projects: list[Project]
    pillar_totals: dict[tuple[int | None, int], FundRollup]
    fund_totals: list[FundRollup]
    projects_complete: bool = True
    ward_year: WardYear | None = None

    @property
    def has_pillars(self) -> bool:
        return bool(self.pillars)

    @property
    def has_incomplete(self) -> bool:
        return any(_has_incomplete(rollup) for rollup in self.fund_totals)


def project_stage_totals(project: Project, stages: Sequence[Stage]) -> dict[Stage, StageTotal]:
    """A project row from project_ledger_rows as one-project totals, one per stage."""
    totals = {}
    for stage in Stage:
        if stage not in stages:
            totals[stage] = StageTotal(stage=stage, visible=False)
            continue
        amount = getattr(project, f"amount_{stage}")
        entered = getattr(project, f"entered_{stage}")
        totals[stage] = StageTotal(
            stage=stage,
            amount=amount,
            projects=1,
            entered=entered,
            no_budget=int(bool(entered) and amount is None),
        )
    return totals


def project_ledger_rows(
    *,
    fiscal_year: FiscalYear,
    ward: Ward | None,
    stages: Sequence[Stage],
    with_entry: bool = False,
) -> QuerySet[Project]:
    """A ward-year's projects (every ward's with ward=None) in printed order, each annotated
    with its figures at the given stages.

    ``amount_<stage>`` is the figure in yen (None for ―), ``entered_<stage>`` is 1 when a
    figure exists at that stage (0: not entered). ``with_entry`` adds ``reason_<stage>``
    and ``version_<stage>`` (0 when there is no figure), which the staff screens need.
    """
    annotations = {}
    for stage in stages:
        at_stage = Q(figures__stage=stage)
        annotations[f"amount_{stage}"] = Max("figures__amount", filter=at_stage)
        annotations[f"entered_{stage}"] = Count("figures", filter=at_stage)
        if with_entry:
            annotations[f"reason_{stage}"] = Max("figures__reason", filter=at_stage)
            annotations[f"version_{stage}"] = Coalesce(
                Max("figures__version", filter=at_stage, output_field=IntegerField()),
                0,
                output_field=IntegerField(),
            )
    projects = Project.objects.filter(fiscal_year=fiscal_year)
    if ward is not None:
        projects = projects.filter(ward=ward)
    return (
        projects.select_related("pillar", "fund", "ward")
        .annotate(**annotations)
        .order_by("ward__position", F("pillar__position").asc(nulls_last=True), "position", "id")
    )


def ward_ledger(
    *,
    fiscal_year: FiscalYear,
    ward: Ward,
    stages: Sequence[Stage] | None = None,
    with_entry: bool = False,
    with_visions: bool = True,
    submission_stage: Stage | None = None,
    funds: list[Fund] | None = None,
) -> WardLedger:
    return ward_ledgers(
        fiscal_year=fiscal_year,
        stages=stages,
        wards=[ward],
        funds=funds,
        with_entry=with_entry,
        with_visions=with_visions,
        submission_stage=submission_stage,
    )[0]


def ward_ledgers(
    *,
    fiscal_year: FiscalYear,
    stages: Sequence[Stage] | None = None,
    wards: Sequence[Ward] | None = None,
    funds: list[Fund] | None = None,
    with_entry: bool = False,
    reference: ReferenceAmounts | None = None,
    with_projects: bool = True,
    with_visions: bool = True,
    submission_stage: Stage | None = None,
) -> list[WardLedger]:
    """The ledgers of several wards (every ward and the pool by default) of a year, in a
    fixed number of queries however many wards and projects there are.

    ``reference`` (read for the same stages) can be passed in when the caller has read it.
    ``with_projects=False`` leaves each ledger's projects empty, for a caller that streams
    them (exports); ``with_visions=False`` skips the pillars' city visions."""
    visible = list(fiscal_year.published_stages if stages is None else stages)
    funds = fund_list() if funds is None else funds
    if wards is None:
        wards = list(Ward.objects.order_by("position"))
    ward_ids = [w.pk for w in wards]
    projects_qs = Project.objects.filter(fiscal_year=fiscal_year, ward__in=ward_ids)
    by_fund_pillar, by_fund = _grouped_totals_pair(
        projects_qs, ["ward_id", "fund_id"], "pillar_id", visible
    )
    if reference is None:
        reference = _reference_amounts(fiscal_year, visible)
    allocations, printed = reference.allocations, reference.printed
    fund_by_id = {fund.id: fund for fund in funds}
    # No ordering: these rows go into a dict, and the model's ordering joins the wards.
    ward_year_rows = WardYear.objects.filter(fiscal_year=fiscal_year, ward__in=ward_ids).order_by()
    if submission_stage is not None:
        # The entry sheet's submission rides on the ward-year's row: no query of its own.
        submitted = WardSubmission.objects.filter(
            ward=OuterRef("ward"), fiscal_year=OuterRef("fiscal_year"), stage=submission_stage
        ).order_by()  # the model's ordering would join the ward for each row
        ward_year_rows = ward_year_rows.annotate(
            submission_pk=Subquery(submitted.values("pk")[:1]),
            submitted_at=Subquery(submitted.values("submitted_at")[:1]),
            submitted_by_name=Subquery(submitted.values("submitted_by__username")[:1]),
        )
    ward_years = {wy.ward_id: wy for wy in ward_year_rows}
    pillars: dict[int, list[VisionPillar]] = {pk: [] for pk in ward_ids}
    pillar_rows = VisionPillar.objects.filter(fiscal_year=fiscal_year, ward__in=ward_ids)
    if with_visions:
        pillar_rows = pillar_rows.prefetch_related(
            Prefetch("city_visions", queryset=CityVision.objects.select_related("plan"))
        )
    for pillar in pillar_rows.order_by("position"):
        pillars[pillar.ward_id].append(pillar)
    # Each ward's (fund, pillar) totals, grouped once rather than scanned for every ward.
    by_ward_pillar: dict[int, list[tuple[tuple, dict]]] = {}
    for (ward_id, fund_id, pillar_id), row in by_fund_pillar.items():
        by_ward_pillar.setdefault(ward_id, []).append(((fund_id, pillar_id), row))
    projects: dict[int, list[Project]] = {pk: [] for pk in ward_ids}
    if with_projects:
        rows = project_ledger_rows(
            fiscal_year=fiscal_year, ward=None, stages=visible, with_entry=with_entry
        )
        for project in rows.filter(ward__in=ward_ids):
            projects[project.ward_id].append(project)
    return [
        WardLedger(
            fiscal_year=fiscal_year,
            ward=ward,
            stages=visible,
            funds=funds,
            pillars=pillars[ward.pk],
            projects=projects[ward.pk],
            pillar_totals={
                (pillar_id, fund_id): FundRollup(
                    fund=fund_by_id[fund_id], stages=_stage_totals(row, visible)
                )
                for (fund_id, pillar_id), row in by_ward_pillar.get(ward.pk, [])
            },
            fund_totals=[
                FundRollup(
                    fund=fund,
                    stages=_stage_totals(by_fund.get((ward.pk, fund.id)), visible),
                    allocation=allocations.get((ward.pk, fund.id)),
                    printed=printed.get((ward.pk, fund.id), {}),
                )
                for fund in funds
            ],
            projects_complete=getattr(ward_years.get(ward.pk), "projects_complete", True),
            ward_year=ward_years.get(ward.pk),
        )
        for ward in wards
    ]


# --- Project page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureCell:
    """One project's figure at one stage, in one of its three states (or unpublished)."""

    stage: Stage
    entered: bool
    amount: int | None
    visible: bool = True
    reason: str = ""
    version: int = 0  # 0: no figure row

    @property
    def as_total(self) -> StageTotal:
        return StageTotal(
            stage=self.stage,
            amount=self.amount,
            projects=1,
            entered=int(self.entered),
            no_budget=int(self.entered and self.amount is None),
            visible=self.visible,
        )


@dataclass(frozen=True)
class ProjectStep:
    """One step of a project's stage ledger: the figure and the change from the step before."""

    stage: Stage
    total: StageTotal
    change: int | None
    reason: str


@dataclass(frozen=True)
class ProjectDetail:
    project: Project
    cells: list[FigureCell]
    earlier: list[Project]
    later: list[Project]
    corrections: list[Correction]

    def change(self, stage: Stage) -> int | None:
        previous = stage.previous
        if previous is None:
            return None
        return _change(self.cells[stage - 1].as_total, self.cells[previous - 1].as_total)

    @property
    def steps(self) -> list[ProjectStep]:
        return [
            ProjectStep(
                stage=cell.stage,
                total=cell.as_total,
                change=self.change(cell.stage),
                reason=cell.reason,
            )
            for cell in self.cells
        ]

    @property
    def unspent(self) -> int | None:
        return unspent(
            self.cells[Stage.FEBRUARY - 1].as_total, self.cells[Stage.SETTLEMENT - 1].as_total
        )

    @property
    def execution_rate(self) -> Decimal | None:
        return execution_rate(
            self.cells[Stage.FEBRUARY - 1].as_total, self.cells[Stage.SETTLEMENT - 1].as_total
        )


def project_detail(
    *, fiscal_year: FiscalYear, ward: Ward, pk: int, stages: Sequence[Stage] | None = None
) -> ProjectDetail:
    visible = list(fiscal_year.published_stages if stages is None else stages)
    project = (
        # The year and ward are known already: joining them again only makes the query
        # slower to plan (an 8-table join plans longer than it runs).
        Project.objects.filter(fiscal_year=fiscal_year, ward=ward, pk=pk)
        .order_by()
        .select_related("pillar", "fund", "previous__fiscal_year", "previous__ward")
        .prefetch_related(
            Prefetch(
                "figures",
                # By stage alone: the model's ordering (by project) would join the project.
                queryset=StageFigure.objects.filter(stage__in=visible).order_by("stage"),
                to_attr="visible_figures",
            ),
            Prefetch(
                "corrections",
                queryset=Correction.objects.filter(stage__in=visible).order_by(
                    "corrected_at", "id"
                ),
                to_attr="visible_corrections",
            ),
            Prefetch(
                "successors",
                queryset=Project.objects.select_related("fiscal_year", "ward").order_by(
                    "fiscal_year"
                ),
            ),
        )
        .first()
    )
    if project is None:
        raise Http404("No such project")
    project.fiscal_year, project.ward = fiscal_year, ward
    by_stage = {figure.stage: figure for figure in project.visible_figures}
    cells = [
        FigureCell(
            stage=stage,
            entered=stage in by_stage,
            amount=by_stage[stage].amount if stage in by_stage else None,
            visible=stage in visible,
            reason=by_stage[stage].reason if stage in by_stage else "",
            version=by_stage[stage].version if stage in by_stage else 0,
        )
        for stage in Stage
    ]
    earlier = [project.previous] if project.previous_id else []
    return ProjectDetail(
        project=project,
        cells=cells,
        earlier=earlier,
        later=list(project.successors.all()),
        corrections=project.visible_corrections,
    )


# --- Staff screens ---------------------------------------------------------------------------


def staff_stages(fiscal_year: FiscalYear) -> list[Stage]:
    """What staff see: every published stage and the one open for entry (drafts included)."""
    last = max(fiscal_year.published_stage or 0, fiscal_year.open_stage or 0)
    return Stage.up_to(last or None)


@dataclass(frozen=True)
class SubmissionInfo:
    """A ward's submission of the open stage, as the entry sheet shows it."""

    submitted_at: datetime
    submitted_by_name: str | None


@dataclass(frozen=True)
class EntrySheet:
    fiscal_year: FiscalYear
    ward: Ward
    stage: Stage | None  # the open stage, if any
    stages: list[Stage]
    projects: list[Project]
    ledger: WardLedger
    submission: SubmissionInfo | None

    @property
    def earlier_stages(self) -> list[Stage]:
        return [s for s in self.stages if s != self.stage]


def entry_sheet(*, fiscal_year: FiscalYear, ward: Ward) -> EntrySheet:
    stage = Stage(fiscal_year.open_stage) if fiscal_year.open_stage else None
    stages = staff_stages(fiscal_year)
    # The sheet shows no city visions: their prefetch is skipped.
    ledger = ward_ledger(
        fiscal_year=fiscal_year,
        ward=ward,
        stages=stages,
        with_entry=True,
        with_visions=False,
        submission_stage=stage,
    )
    projects = ledger.projects
    submission = None
    if stage and ledger.ward_year is not None:
        if ledger.ward_year.submission_pk is not None:
            submission = SubmissionInfo(
                submitted_at=ledger.ward_year.submitted_at,
                submitted_by_name=ledger.ward_year.submitted_by_name,
            )
    elif stage:
        # A ward with no ward-year row yet: ask directly.
        found = (
            WardSubmission.objects.filter(ward=ward, fiscal_year=fiscal_year, stage=stage)
            .select_related("submitted_by")
            .first()
        )
        if found is not None:
            submission = SubmissionInfo(
                submitted_at=found.submitted_at,
                submitted_by_name=found.submitted_by.get_username() if found.submitted_by else None,
            )
    return EntrySheet(
        fiscal_year=fiscal_year,
        ward=ward,
        stage=stage,
        stages=stages,
        projects=projects,
        ledger=ledger,
        submission=submission,
    )


@dataclass(frozen=True)
class ReviewRow:
    project: Project
    previous: StageTotal | None
    current: StageTotal
    reason: str

    @property
    def change(self) -> int | None:
        return _change(self.current, self.previous)

    @property
    def changed(self) -> bool:
        if self.previous is None:
            return True
        return (self.current.entered, self.current.amount) != (
            self.previous.entered,
            self.previous.amount,
        )


@dataclass(frozen=True)
class WardReview:
    ward: Ward
    submission: WardSubmission | None
    rows: list[ReviewRow]

    @property
    def changed_rows(self) -> list[ReviewRow]:
        return [row for row in self.rows if row.changed]


def stage_review(
    *, fiscal_year: FiscalYear, ward_ids: Iterable[int] | None = None
) -> list[WardReview]:
    """Each ward's figures at the open stage beside the previous stage, with reasons."""
    if fiscal_year.open_stage is None:
        return []
    stage = Stage(fiscal_year.open_stage)
    stages = [s for s in (stage.previous, stage) if s is not None]
    projects = project_ledger_rows(
        fiscal_year=fiscal_year, ward=None, stages=stages, with_entry=True
    )
    wards = Ward.objects.order_by("position")
    if ward_ids is not None:
        wards = wards.filter(pk__in=list(ward_ids))
        projects = projects.filter(ward__in=list(ward_ids))
    submissions = {
        s.ward_id: s
        for s in WardSubmission.objects.filter(fiscal_year=fiscal_year, stage=stage).select_related(
            "submitted_by"
        )
    }
    rows_by_ward: dict[int, list[ReviewRow]] = {}
    for project in projects:
        totals = project_stage_totals(project, stages)
        rows_by_ward.setdefault(project.ward_id, []).append(
            ReviewRow(
                project=project,
                previous=totals[stage.previous] if stage.previous else None,
                current=totals[stage],
                reason=getattr(project, f"reason_{stage}") or "",
            )
        )
    return [
        WardReview(ward=ward, submission=submissions.get(ward.pk), rows=rows_by_ward[ward.pk])
        for ward in wards
        if ward.pk in rows_by_ward
    ]


@dataclass(frozen=True)
class HistoryEntry:
    when: object
    user: object
    subject: str
    action: str
    changes: list[tuple[str, str, str]]  # (field, old, new)
    reason: str


_ACTIONS = {"+": _("作成"), "~": _("変更"), "-": _("削除")}


def _history_entries(records, subject_of) -> list[HistoryEntry]:
    entries = []
    previous_by_object: dict[int, object] = {}
    for record in records:  # oldest first, so each diff is against the record before it
        previous = previous_by_object.get(record.id)
        changes = []
        if previous is not None:
            delta = record.diff_against(previous)
            changes = [
                (record.instance._meta.get_field(c.field), c.old, c.new) for c in delta.changes
            ]
        previous_by_object[record.id] = record
        entries.append(
            HistoryEntry(
                when=record.history_date,
                user=record.history_user,
                subject=subject_of(record),
                action=str(_ACTIONS.get(record.history_type, record.history_type)),
                changes=[
                    (str(f.verbose_name), _display(o, f), _display(n, f)) for f, o, n in changes
                ],
                reason=record.history_change_reason or "",
            )
        )
    return entries


def _display(value, field) -> str:
    from budgets.formatting import sen

    if field.name == "amount":
        return "―" if value is None else _("%(amount)s千円") % {"amount": sen(value)}
    if value is None:
        return ""
    return str(value)


def project_history(*, project: Project) -> list[HistoryEntry]:
    """Every recorded change of a project and its figures, newest first."""
    project_records = project.history.select_related("history_user").order_by("history_date")
    figure_records = (
        StageFigure.history.filter(project_id=project.pk)
        .select_related("history_user")
        .order_by("history_date")
    )
    entries = _history_entries(project_records, lambda r: str(_("事業")))
    entries += _history_entries(
        figure_records, lambda r: str(Stage(r.stage).label) if r.stage in Stage.values else "?"
    )
    return sorted(entries, key=lambda e: e.when, reverse=True)


def project_corrections(*, project: Project) -> list[Correction]:
    return list(project.corrections.order_by("corrected_at", "id"))


def staff_project_get(*, pk: int) -> Project:
    project = Project.objects.select_related("ward", "fiscal_year", "fund", "pillar").filter(pk=pk)
    found = project.first()
    if found is None:
        raise Http404("No such project")
    return found


@dataclass(frozen=True)
class WardStatus:
    ward: Ward
    submission: WardSubmission | None


@dataclass(frozen=True)
class YearStatus:
    fiscal_year: FiscalYear
    next_stage: Stage | None  # what a planner may open next, when nothing is open
    wards: list[WardStatus]


def staff_dashboard(*, ward_ids: Iterable[int]) -> list[YearStatus]:
    """Each year's stages and, for the open one, whether each of the user's wards submitted."""
    ward_ids = list(ward_ids)
    wards = list(Ward.objects.filter(pk__in=ward_ids).order_by("position"))
    years = list(FiscalYear.objects.order_by("-year"))
    submissions = {
        (s.fiscal_year_id, s.ward_id, s.stage): s
        for s in WardSubmission.objects.filter(ward__in=ward_ids).select_related("submitted_by")
    }
    statuses = []
    for year in years:
        if year.open_stage is None:
            published = year.published_stage
            next_stage = Stage.INITIAL if published is None else Stage(published).next
        else:
            next_stage = None
        statuses.append(
            YearStatus(
                fiscal_year=year,
                next_stage=next_stage,
                wards=[
                    WardStatus(
                        ward=ward,
                        submission=submissions.get((year.year, ward.pk, year.open_stage)),
                    )
                    for ward in wards
                ],
            )
        )
    return statuses


# --- Exports ---------------------------------------------------------------------------------


def open_data_projects(*, fiscal_year: FiscalYear) -> QuerySet[Project]:
    """Every project of a year with its published figures, for the open-data downloads."""
    return project_ledger_rows(
        fiscal_year=fiscal_year, ward=None, stages=fiscal_year.published_stages
    )


@dataclass(frozen=True)
class YearExport:
    """What a year workbook reads, each thing once: the ledgers of the wards it has a sheet
    for, without their projects (the workbook streams them: ``year_export_projects``),
    and the rollup of those wards, with the city totals when every ward is in."""

    fiscal_year: FiscalYear
    stages: list[Stage]
    funds: list[Fund]
    ledgers: list[WardLedger]  # in ward order
    rollup: CityRollup  # its ``city`` is empty unless every ward is in
    whole_city: bool


def _ledger_has_data(ledger: WardLedger) -> bool:
    """Whether the ward had projects or an allocation in the ledger's year."""
    return bool(ledger.pillar_totals) or any(f.allocation is not None for f in ledger.fund_totals)


def _summed_totals(
    parts: Sequence[dict[Stage, StageTotal]], visible: Sequence[Stage]
) -> dict[Stage, StageTotal]:
    """Stage totals of several groups of projects added up (as one SQL total over them)."""
    totals = {}
    for stage in Stage:
        if stage not in visible:
            totals[stage] = StageTotal(stage=stage, visible=False)
            continue
        amounts = [part[stage].amount for part in parts if part[stage].amount is not None]
        totals[stage] = StageTotal(
            stage=stage,
            amount=sum(amounts) if amounts else None,
            projects=sum(part[stage].projects for part in parts),
            entered=sum(part[stage].entered for part in parts),
            no_budget=sum(part[stage].no_budget for part in parts),
        )
    return totals


def year_export(
    *,
    fiscal_year: FiscalYear,
    stages: Sequence[Stage],
    wards: Sequence[Ward] | None = None,
    every_ward_id: frozenset[int] | None = None,
) -> YearExport:
    """The ledgers and the rollup of ``wards``, in one read of the funds, the wards, the
    allocations and printed totals and the totals.

    Without ``wards``: the wards that had projects or an allocation that year, and the
    city's current wards (those of the latest year with published figures) even when
    they had nothing, so a ward that has since gone is not a blank sheet in every year.
    ``every_ward_id``: every ward's id, when the caller has read them already (with ``wards``
    only: it tells whether they are the whole city)."""
    visible = list(stages)
    funds = fund_list()
    if wards is None:
        latest = (
            FiscalYear.objects.filter(published_stage__isnull=False)
            .order_by("-year")
            .values("year")
        )[:1]
        in_latest = {"ward": OuterRef("pk"), "fiscal_year": Subquery(latest)}
        chosen = list(
            Ward.objects.annotate(
                current=Exists(Project.objects.filter(**in_latest))
                | Exists(Allocation.objects.filter(**in_latest))
            ).order_by("position")
        )
        whole_city = True
    else:
        chosen = sorted(wards, key=lambda w: w.position)
        if every_ward_id is None:
            every_ward_id = frozenset(Ward.objects.values_list("pk", flat=True))
        whole_city = {w.pk for w in chosen} >= every_ward_id
    reference = _reference_amounts(fiscal_year, visible)
    ledgers = ward_ledgers(
        fiscal_year=fiscal_year,
        stages=visible,
        wards=chosen,
        funds=funds,
        reference=reference,
        with_projects=False,
        with_visions=False,
    )
    city = []
    if whole_city:
        # Each project is in one ward, so the city's totals are the sum of every ward's.
        city = [
            FundRollup(
                fund=fund,
                stages=_summed_totals(
                    [ledger.fund_totals[i].stages for ledger in ledgers], visible
                ),
                allocation=reference.allocations.get((None, fund.id)),
            )
            for i, fund in enumerate(funds)
        ]
    if wards is None:
        ledgers = [ledger for ledger in ledgers if ledger.ward.current or _ledger_has_data(ledger)]
    rollup = CityRollup(
        fiscal_year=fiscal_year,
        stages=visible,
        funds=funds,
        wards=[WardRollup(ward=ledger.ward, funds=ledger.fund_totals) for ledger in ledgers],
        city=city,
        allocated_to_wards=reference.allocated_to_wards,
    )
    return YearExport(
        fiscal_year=fiscal_year,
        stages=visible,
        funds=funds,
        ledgers=ledgers,
        rollup=rollup,
        whole_city=whole_city,
    )


def year_export_projects(export: YearExport) -> Iterable[Project]:
    """The projects of the export's wards in ledger order (ward by ward), streamed. Each
    is given the ward, fund and pillar already read rather than a new copy of each."""
    wards = {ledger.ward.pk: ledger.ward for ledger in export.ledgers}
    funds = {fund.pk: fund for fund in export.funds}
    pillars = {pillar.pk: pillar for ledger in export.ledgers for pillar in ledger.pillars}
    projects = (
        project_ledger_rows(fiscal_year=export.fiscal_year, ward=None, stages=export.stages)
        .select_related(None)
        .filter(ward__in=list(wards))
    )
    cache = {name: Project._meta.get_field(name) for name in ("ward", "fund", "pillar")}
    for project in projects.iterator(chunk_size=500):
        cache["ward"].set_cached_value(project, wards[project.ward_id])
        cache["fund"].set_cached_value(project, funds[project.fund_id])
        if project.pillar_id is None or project.pillar_id in pillars:
            # (A pillar of another ward-year, which the data never has, would be read.)
            cache["pillar"].set_cached_value(project, pillars.get(project.pillar_id))
        yield project


@dataclass(frozen=True, slots=True)
class CrossYearItem:
    """One project-year of the cross-year workbook, as plain values (no model instances:
    a 10-year range has tens of thousands)."""

    pk: int
    ward: str
    name: str
    fiscal_year: int
    number: str
    fund: str
    pillar: str
    stages: dict[Stage, StageTotal]


def cross_year_projects(*, first: int, last: int) -> Iterable[CrossYearItem]:
    """Projects of the years ``first``..``last`` with their published figures, each
    project's earlier and later years next to it (following the links between years).

    One query, streamed: a recursive CTE finds the root of each project's chain of years
    (its earliest project in the range, or that one's out-of-range ``previous``), and the
    rows come sorted by ward, root, year, then the printed order. Each stage is gated by
    its own year's publication in the SQL, so drafts never come back."""
    from django.db import connection

    shown = {s: Q(figures__stage=s, fiscal_year__published_stage__gte=s) for s in Stage}
    annotations = {f"amount_{s}": Max("figures__amount", filter=shown[s]) for s in Stage}
    annotations |= {f"entered_{s}": Count("figures", filter=shown[s]) for s in Stage}
    rows = (
        Project.objects.filter(fiscal_year__gte=first, fiscal_year__lte=last)
        .annotate(
            x_ward=F("ward__name_ja"),
            x_ward_position=F("ward__position"),
            x_fund=F("fund__name_ja"),
            x_pillar=F("pillar__name"),
            x_pillar_position=F("pillar__position"),
            x_published=F("fiscal_year__published_stage"),
            **annotations,
        )
        .order_by()
        .values(
            "id",
            "name",
            "number",
            "fiscal_year_id",
            "position",
            "x_ward",
            "x_ward_position",
            "x_fund",
            "x_pillar",
            "x_pillar_position",
            "x_published",
            *annotations,
        )
    )
    inner, params = rows.query.sql_with_params()
    q = connection.ops.quote_name
    table = q(Project._meta.db_table)
    year_col = q(Project._meta.get_field("fiscal_year").column)
    previous_col = q(Project._meta.get_field("previous").column)
    columns = ["id", "name", "number", "fiscal_year_id", "x_ward", "x_fund", "x_pillar"]
    columns += ["x_published", *annotations]

    def in_range(alias: str) -> str:
        return f"{alias}.{year_col} >= %s AND {alias}.{year_col} <= %s"

    sql = (
        f"WITH RECURSIVE chain (id, root) AS ("
        f" SELECT p.id, COALESCE(p.{previous_col}, p.id) FROM {table} p"
        f" WHERE {in_range('p')} AND NOT EXISTS ("
        f"  SELECT 1 FROM {table} e WHERE e.id = p.{previous_col} AND {in_range('e')})"
        f" UNION ALL"
        f" SELECT p.id, chain.root FROM {table} p JOIN chain ON p.{previous_col} = chain.id"
        f" WHERE {in_range('p')})"
        f" SELECT {', '.join(f'r.{q(c)}' for c in columns)} FROM ({inner}) r"
        # A project in a loop of links (never anchored) still comes back, as its own root.
        f" LEFT JOIN chain ON chain.id = r.{q('id')}"
        f" ORDER BY r.{q('x_ward_position')}, COALESCE(chain.root, r.{q('id')}),"
        f" r.{q('fiscal_year_id')},"
        f" CASE WHEN r.{q('x_pillar_position')} IS NULL THEN 1 ELSE 0 END,"
        f" r.{q('x_pillar_position')}, r.{q('position')}, r.{q('id')}"
    )
    params = (first, last, first, last, first, last, *params)
    stages = list(Stage)
    visible_by_published: dict[int | None, list[Stage]] = {}
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    cursor = connection.chunked_cursor() if server_side else connection.cursor()
    with cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(2000):
            for pk, name, number, year, ward, fund, pillar, published, *figures in chunk:
                visible = visible_by_published.get(published)
                if visible is None:
                    visible = visible_by_published[published] = Stage.up_to(published)
                totals = {}
                for stage in stages:
                    if stage not in visible:
                        totals[stage] = StageTotal(stage=stage, visible=False)
                        continue
                    amount, entered = figures[stage - 1], figures[len(stages) + stage - 1]
                    totals[stage] = StageTotal(
                        stage=stage,
                        amount=amount,
                        projects=1,
                        entered=entered,
                        no_budget=int(bool(entered) and amount is None),
                    )
                yield CrossYearItem(
                    pk=pk,
                    ward=ward,
                    name=name,
                    fiscal_year=year,
                    number=number,
                    fund=fund,
                    pillar=pillar or "",
                    stages=totals,
                )


# --- Search ----------------------------------------------------------------------------------


def project_search_rows() -> QuerySet[Project]:
    """Every project of every year with its figures, each stage only where that project's
    year has published it (the gate is in the SQL, so drafts never come back).

    The figures are correlated subqueries, not a join and GROUP BY: a page of 25 results
    then reads the figures of its 25 projects only, not of every project searched."""
    annotations = {}
    for stage in Stage:
        # No ordering: the model's (by project) would join and sort for each row.
        figure = StageFigure.objects.filter(project=OuterRef("pk"), stage=stage).order_by()
        published = Q(fiscal_year__published_stage__gte=stage)
        annotations[f"amount_{stage}"] = Case(
            When(published, then=Subquery(figure.values("amount")[:1]))
        )
        # A scalar LIMIT 1 subquery, not EXISTS: PostgreSQL plans EXISTS in a select list
        # as a hashed subplan over every figure; this one reads the unique index per row.
        annotations[f"entered_{stage}"] = Case(
            When(published, then=Coalesce(Subquery(figure.values(one=Value(1))[:1]), 0)),
            default=0,
        )
    return (
        Project.objects.filter(fiscal_year__published_stage__isnull=False)
        .select_related("ward", "fiscal_year", "pillar", "fund")
        .annotate(**annotations)
        .order_by("-fiscal_year", "ward__position", "position", "id")
    )


@dataclass(frozen=True)
class YearComparison:
    fiscal_year: FiscalYear
    funds: list[FundRollup]


def previous_year_totals(*, previous: FiscalYear | None, ward: Ward) -> YearComparison | None:
    """The ward's fund totals in ``previous`` (the latest earlier year with published
    figures), in one query: each fund with its totals and allocation as subqueries."""
    if previous is None:
        return None
    visible = previous.published_stages
    projects = Project.objects.filter(fiscal_year=previous, ward=ward, fund=OuterRef("pk"))
    figures = StageFigure.objects.filter(
        project__fiscal_year=previous, project__ward=ward, project__fund=OuterRef("pk")
    )

    def scalar(queryset, aggregate):
        # One value per fund: group on the outer fund only, so the subquery has one row.
        return Subquery(
            queryset.order_by()
            .values("fund" if queryset.model is Project else "project__fund")
            .annotate(value=aggregate)
            .values("value")
        )

    annotations = {"n_projects": Coalesce(scalar(projects, Count("pk")), 0)}
    for stage in visible:
        at_stage = figures.filter(stage=stage)
        annotations[f"sum_{stage}"] = scalar(at_stage, Sum("amount"))
        annotations[f"entered_{stage}"] = Coalesce(scalar(at_stage, Count("pk")), 0)
        annotations[f"blank_{stage}"] = Coalesce(
            scalar(at_stage.filter(amount__isnull=True), Count("pk")), 0
        )
    annotations["allocation"] = Subquery(
        Allocation.objects.filter(fiscal_year=previous, ward=ward, fund=OuterRef("pk"))
        .order_by()
        .values("amount")[:1]
    )
    funds = Fund.objects.order_by("position").annotate(**annotations)
    return YearComparison(
        fiscal_year=previous,
        funds=[
            FundRollup(
                fund=fund,
                stages=_stage_totals({key: getattr(fund, key) for key in annotations}, visible),
                allocation=fund.allocation,
            )
            for fund in funds
        ],
    )


@dataclass(frozen=True)
class CompareRow:
    ward: Ward
    fund: Fund
    first: FundRollup
    second: FundRollup


def compare_rows(first: CityRollup, second: CityRollup) -> list[CompareRow]:
    """Ward × fund rows of two years' rollups (both already aggregated in SQL)."""
    rows = []
    for index, fund in enumerate(first.funds):
        for ward_a, ward_b in zip(first.wards, second.wards, strict=True):
            a, b = ward_a.funds[index], ward_b.funds[index]
            if a.is_empty and b.is_empty:
                continue
            rows.append(CompareRow(ward=ward_a.ward, fund=fund, first=a, second=b))
    return rows
