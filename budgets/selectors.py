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
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, F, IntegerField, Max, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from budgets.models import Allocation, Correction, Fund, PrintedTotal, Project, StageFigure
from wards.models import FiscalYear, Stage, VisionPillar, Ward, WardSubmission, WardYear


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


def _allocations(fiscal_year: FiscalYear) -> dict[tuple[int | None, int], int]:
    rows = Allocation.objects.filter(fiscal_year=fiscal_year).values_list(
        "ward_id", "fund_id", "amount"
    )
    return {(ward_id, fund_id): amount for ward_id, fund_id, amount in rows}


def _printed_totals(
    fiscal_year: FiscalYear, visible: Sequence[Stage], ward: Ward | None = None
) -> dict[tuple[int, int], dict[Stage, int]]:
    rows = PrintedTotal.objects.filter(fiscal_year=fiscal_year, stage__in=list(visible))
    if ward is not None:
        rows = rows.filter(ward=ward)
    printed: dict[tuple[int, int], dict[Stage, int]] = {}
    values = rows.values_list("ward_id", "fund_id", "stage", "amount")
    for ward_id, fund_id, stage, amount in values:
        printed.setdefault((ward_id, fund_id), {})[Stage(stage)] = amount
    return printed


def fund_list() -> list[Fund]:
    return list(Fund.objects.order_by("position"))


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


def city_rollup(*, fiscal_year: FiscalYear, stages: Sequence[Stage] | None = None) -> CityRollup:
    """Every ward and the pool × fund × visible stage, and the city totals."""
    visible = list(fiscal_year.published_stages if stages is None else stages)
    funds = fund_list()
    wards = list(Ward.objects.order_by("position"))
    projects = Project.objects.filter(fiscal_year=fiscal_year)
    by_ward = _grouped_totals(projects, ["ward_id", "fund_id"], visible)
    by_fund = _grouped_totals(projects, ["fund_id"], visible)
    allocations = _allocations(fiscal_year)
    printed = _printed_totals(fiscal_year, visible)

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
    allocated = (
        Allocation.objects.filter(fiscal_year=fiscal_year, ward__isnull=False)
        .values("fund_id")
        .annotate(total=Sum("amount"))
    )
    return CityRollup(
        fiscal_year=fiscal_year,
        stages=visible,
        funds=funds,
        wards=ward_rollups,
        city=city,
        allocated_to_wards={row["fund_id"]: row["total"] for row in allocated},
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
    *, fiscal_year: FiscalYear, ward: Ward, stages: Sequence[Stage] | None = None
) -> WardLedger:
    return ward_ledgers(fiscal_year=fiscal_year, stages=stages, wards=[ward])[0]


def ward_ledgers(
    *,
    fiscal_year: FiscalYear,
    stages: Sequence[Stage] | None = None,
    wards: Sequence[Ward] | None = None,
) -> list[WardLedger]:
    """The ledgers of several wards (every ward and the pool by default) of a year, in a
    fixed number of queries however many wards and projects there are."""
    visible = list(fiscal_year.published_stages if stages is None else stages)
    funds = fund_list()
    if wards is None:
        wards = list(Ward.objects.order_by("position"))
    ward_ids = [w.pk for w in wards]
    projects_qs = Project.objects.filter(fiscal_year=fiscal_year, ward__in=ward_ids)
    by_pillar = _grouped_totals(projects_qs, ["ward_id", "pillar_id", "fund_id"], visible)
    by_fund = _grouped_totals(projects_qs, ["ward_id", "fund_id"], visible)
    allocations = _allocations(fiscal_year)
    printed = _printed_totals(fiscal_year, visible)
    fund_by_id = {fund.id: fund for fund in funds}
    complete = dict(
        WardYear.objects.filter(fiscal_year=fiscal_year, ward__in=ward_ids).values_list(
            "ward_id", "projects_complete"
        )
    )
    pillars: dict[int, list[VisionPillar]] = {pk: [] for pk in ward_ids}
    for pillar in (
        VisionPillar.objects.filter(fiscal_year=fiscal_year, ward__in=ward_ids)
        .prefetch_related("city_visions__plan")
        .order_by("position")
    ):
        pillars[pillar.ward_id].append(pillar)
    projects: dict[int, list[Project]] = {pk: [] for pk in ward_ids}
    rows = project_ledger_rows(fiscal_year=fiscal_year, ward=None, stages=visible)
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
                for (ward_id, pillar_id, fund_id), row in by_pillar.items()
                if ward_id == ward.pk
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
            projects_complete=complete.get(ward.pk, True),
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
        Project.objects.filter(fiscal_year=fiscal_year, ward=ward, pk=pk)
        .select_related("pillar", "fund", "ward", "fiscal_year", "previous__fiscal_year")
        .prefetch_related(
            Prefetch(
                "figures",
                queryset=StageFigure.objects.filter(stage__in=visible),
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
class EntrySheet:
    fiscal_year: FiscalYear
    ward: Ward
    stage: Stage | None  # the open stage, if any
    stages: list[Stage]
    projects: list[Project]
    ledger: WardLedger
    submission: WardSubmission | None

    @property
    def earlier_stages(self) -> list[Stage]:
        return [s for s in self.stages if s != self.stage]


def entry_sheet(*, fiscal_year: FiscalYear, ward: Ward) -> EntrySheet:
    stage = Stage(fiscal_year.open_stage) if fiscal_year.open_stage else None
    stages = staff_stages(fiscal_year)
    ledger = ward_ledger(fiscal_year=fiscal_year, ward=ward, stages=stages)
    projects = list(
        project_ledger_rows(fiscal_year=fiscal_year, ward=ward, stages=stages, with_entry=True)
    )
    submission = (
        WardSubmission.objects.filter(ward=ward, fiscal_year=fiscal_year, stage=stage)
        .select_related("submitted_by")
        .first()
        if stage
        else None
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
class CrossYearItem:
    project: Project
    stages: dict[Stage, StageTotal]


def cross_year_projects(*, first: int, last: int) -> list[CrossYearItem]:
    """Projects of the years ``first``..``last`` with their published figures, each
    project's earlier and later years next to it (following the links between years)."""
    years = list(FiscalYear.objects.filter(year__gte=first, year__lte=last))
    items: list[CrossYearItem] = []
    for fiscal_year in years:
        visible = fiscal_year.published_stages
        for project in project_ledger_rows(fiscal_year=fiscal_year, ward=None, stages=visible):
            items.append(
                CrossYearItem(project=project, stages=project_stage_totals(project, visible))
            )
    # The root of each project's chain of years, so a chain sorts together.
    previous = {item.project.pk: item.project.previous_id for item in items}

    def root(pk: int) -> int:
        seen = set()
        while previous.get(pk) and pk not in seen:
            seen.add(pk)
            pk = previous[pk]
        return pk

    return sorted(
        items,
        key=lambda item: (
            item.project.ward.position,
            root(item.project.pk),
            item.project.fiscal_year_id,
        ),
    )


# --- Search ----------------------------------------------------------------------------------


def project_search_rows() -> QuerySet[Project]:
    """Every project of every year with its figures, each stage only where that project's
    year has published it (the gate is in the SQL, so drafts never come back)."""
    annotations = {}
    for stage in Stage:
        shown = Q(figures__stage=stage, fiscal_year__published_stage__gte=stage)
        annotations[f"amount_{stage}"] = Max("figures__amount", filter=shown)
        annotations[f"entered_{stage}"] = Count("figures", filter=shown)
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


def previous_year_totals(*, fiscal_year: FiscalYear, ward: Ward) -> YearComparison | None:
    """The ward's fund totals in the latest earlier year with published figures."""
    previous = (
        FiscalYear.objects.filter(year__lt=fiscal_year.year, published_stage__isnull=False)
        .order_by("-year")
        .first()
    )
    if previous is None:
        return None
    visible = previous.published_stages
    projects = Project.objects.filter(fiscal_year=previous, ward=ward)
    by_fund = _grouped_totals(projects, ["fund_id"], visible)
    allocations = {
        fund_id: amount
        for (ward_id, fund_id), amount in _allocations(previous).items()
        if ward_id == ward.pk
    }
    funds = [
        FundRollup(
            fund=fund,
            stages=_stage_totals(by_fund.get((fund.id,)), visible),
            allocation=allocations.get(fund.id),
        )
        for fund in fund_list()
    ]
    return YearComparison(fiscal_year=previous, funds=funds)


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
