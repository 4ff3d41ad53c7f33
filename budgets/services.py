"""Writes to funds, allocations, projects and stage figures.

Every function validates before it saves and runs in one transaction; the admin, forms,
imports and the seed loader all write through these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from concurrency.exceptions import RecordModifiedError
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from budgets.formatting import sen
from budgets.models import Allocation, Correction, Fund, PrintedTotal, Project, StageFigure
from kumamachi.audit import audit_context
from kumamachi.services import scoped_save, upsert, validated_save
from wards.models import FiscalYear, Stage, StagePublication, VisionPillar, Ward, WardSubmission
from wards.roles import user_can_enter, user_is_planner


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


# --- Staff entry and the stage workflow -------------------------------------------------------


@dataclass(frozen=True)
class RowProblem:
    """Why a save was refused, naming the project and field where there is one."""

    message: str
    project_id: int | None = None
    field: str | None = None  # "amount" or "reason"


class SaveRejected(Exception):
    """Nothing was saved; ``problems`` says why. ``conflict`` when someone saved first."""

    def __init__(self, problems: list[RowProblem], *, conflict: bool = False):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems
        self.conflict = conflict


@dataclass(frozen=True)
class SheetRow:
    project_id: int
    value: FigureValue
    reason: str = ""
    version: int = 0  # the figure's version when the sheet was opened; 0 = none existed


def _stage_label(stage: int) -> str:
    return str(Stage(stage).label)


def _amount_text(value: FigureValue) -> str:
    if value is NOT_ENTERED:
        return _("未入力")
    if value is None:
        return "―"
    return _("%(amount)s千円") % {"amount": sen(value)}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PermissionDenied(message)


def _locked_year(fiscal_year: FiscalYear) -> FiscalYear:
    # Serialises saves with opening and publishing the stage (a no-op on SQLite, whose
    # writers are serialised anyway).
    return FiscalYear.objects.select_for_update().get(pk=fiscal_year.pk)


def _figure_rule_problems(
    *, project: Project, stage: Stage, value: FigureValue, february: FigureValue
) -> list[RowProblem]:
    """Rules on one figure that need another of the same project."""
    if stage != Stage.SETTLEMENT or value in (None, NOT_ENTERED) or february is NOT_ENTERED:
        return []
    budget = february or 0
    if value > budget:
        return [
            RowProblem(
                _(
                    "%(project)s（決算額）：決算額 %(value)s が"
                    "2月補正後の予算額 %(budget)s を超えています。"
                )
                % {
                    "project": project.name,
                    "value": _amount_text(value),
                    "budget": _amount_text(february),
                },
                project.pk,
                "amount",
            )
        ]
    return []


def _allocation_problems(*, fiscal_year: FiscalYear, ward: Ward, stage: Stage) -> list[RowProblem]:
    """A capped fund's ward total above the ward's allocation, with the amount over."""
    totals = (
        StageFigure.objects.filter(
            project__fiscal_year=fiscal_year,
            project__ward=ward,
            project__fund__capped_by_allocation=True,
            stage=stage,
        )
        .values("project__fund_id", "project__fund__name_ja")
        .annotate(total=Sum("amount"))
    )
    allocations = dict(
        Allocation.objects.filter(fiscal_year=fiscal_year, ward=ward).values_list(
            "fund_id", "amount"
        )
    )
    problems = []
    for row in totals:
        allocation = allocations.get(row["project__fund_id"])
        total = row["total"] or 0
        if allocation is not None and total > allocation:
            problems.append(
                RowProblem(
                    _(
                        "%(ward)sの%(fund)sの%(stage)sの合計 %(total)s千円が、"
                        "配分額 %(allocation)s千円を %(over)s千円超えています。"
                    )
                    % {
                        "ward": ward.name_ja,
                        "fund": row["project__fund__name_ja"],
                        "stage": _stage_label(stage),
                        "total": sen(total),
                        "allocation": sen(allocation),
                        "over": sen(total - allocation),
                    }
                )
            )
    return problems


def _figure_value(figure: StageFigure | None) -> FigureValue:
    return NOT_ENTERED if figure is None else figure.amount


def _write_figure(
    *, project: Project, stage: Stage, figure: StageFigure | None, value: FigureValue, reason: str
) -> None:
    if value is NOT_ENTERED:
        if figure is not None:
            figure.delete()
        return
    if figure is None:
        figure = StageFigure(project=project, stage=stage)
    figure.amount = value
    figure.reason = reason
    validated_save(figure, exclude=["project", "version"])


@transaction.atomic
def figures_save_sheet(
    *,
    user,
    fiscal_year: FiscalYear,
    ward: Ward,
    rows: Sequence[SheetRow],
    stage: Stage | None = None,
) -> int:
    """Save a ward's entry sheet for the open stage: every row or none.

    ``stage`` is the stage the sheet was opened for; if another stage is open now, nothing
    is saved (None: whatever stage is open, for callers that just read it).

    Returns the number of figures changed. Raises SaveRejected, naming each project and
    field at fault, and PermissionDenied for a user outside the ward.
    """
    _require(user_can_enter(user, ward), _("この区の金額を入力する権限がありません。"))
    fiscal_year = _locked_year(fiscal_year)
    sheet_stage = stage
    stage = fiscal_year.open_stage
    if stage is None:
        raise SaveRejected([RowProblem(_("この年度には入力を受け付けている段階がありません。"))])
    stage = Stage(stage)
    if sheet_stage is not None and sheet_stage != stage:
        raise SaveRejected(
            [
                RowProblem(
                    _(
                        "この入力シートは%(sheet)sのものですが、現在の受付段階は%(open)sです。"
                        "何も保存していません。入力シートを開き直してください。"
                    )
                    % {"sheet": Stage(sheet_stage).label, "open": stage.label}
                )
            ],
            conflict=True,
        )
    if (
        not user_is_planner(user)
        and WardSubmission.objects.filter(ward=ward, fiscal_year=fiscal_year, stage=stage).exists()
    ):
        raise SaveRejected(
            [
                RowProblem(
                    _("この区の%(stage)sは提出済みのため編集できません。") % {"stage": stage.label}
                )
            ]
        )

    projects = {p.pk: p for p in Project.objects.filter(fiscal_year=fiscal_year, ward=ward)}
    wanted = [stage] + ([stage.previous] if stage.previous else [])
    if stage == Stage.SETTLEMENT:
        wanted.append(Stage.FEBRUARY)
    figures = {
        (f.project_id, f.stage): f
        for f in StageFigure.objects.select_for_update().filter(
            project__in=list(projects), stage__in=set(wanted)
        )
    }
    problems: list[RowProblem] = []
    conflicts: list[RowProblem] = []
    changes = []
    for row in rows:
        project = projects.get(row.project_id)
        if project is None:
            problems.append(RowProblem(_("この区・年度の事業ではない行があります。")))
            continue
        figure = figures.get((project.pk, stage))
        current = _figure_value(figure)
        if (figure.version if figure else 0) != row.version:
            conflicts.append(
                RowProblem(
                    _(
                        "%(project)s（%(stage)s）：画面を開いた後に他の人が変更しました"
                        "（現在 %(current)s）。"
                    )
                    % {
                        "project": project.name,
                        "stage": stage.label,
                        "current": _amount_text(current),
                    },
                    project.pk,
                    "amount",
                )
            )
            continue
        if row.value == current and (figure is None or row.reason == figure.reason):
            continue
        previous = (
            _figure_value(figures.get((project.pk, stage.previous))) if stage.previous else None
        )
        if (
            stage.previous
            and row.value is not NOT_ENTERED
            and row.value != previous
            and not row.reason
        ):
            problems.append(
                RowProblem(
                    _(
                        "%(project)s（補正理由）：%(previous)s から %(value)s に"
                        "変わる理由を入力してください。"
                    )
                    % {
                        "project": project.name,
                        "previous": _amount_text(previous),
                        "value": _amount_text(row.value),
                    },
                    project.pk,
                    "reason",
                )
            )
        problems += _figure_rule_problems(
            project=project,
            stage=stage,
            value=row.value,
            february=_figure_value(figures.get((project.pk, Stage.FEBRUARY))),
        )
        changes.append((project, figure, row))
    if conflicts:
        raise SaveRejected(conflicts, conflict=True)
    if problems:
        raise SaveRejected(problems)

    for project, figure, row in changes:
        with audit_context(user=user, reason=row.reason or _("入力シートで入力")):
            try:
                _write_figure(
                    project=project, stage=stage, figure=figure, value=row.value, reason=row.reason
                )
            except (RecordModifiedError, IntegrityError) as exc:
                raise SaveRejected(
                    [
                        RowProblem(
                            _("%(project)s：保存中に他の人が変更しました。")
                            % {"project": project.name},
                            project.pk,
                            "amount",
                        )
                    ],
                    conflict=True,
                ) from exc
    over = _allocation_problems(fiscal_year=fiscal_year, ward=ward, stage=stage)
    if over:
        raise SaveRejected(over)  # rolls back every row written above
    return len(changes)


@transaction.atomic
def figure_correct(
    *, user, project: Project, stage: Stage, value: FigureValue, reason: str, version: int
) -> Correction:
    """A planner corrects a figure of a published stage, with a reason shown publicly."""
    _require(user_is_planner(user), _("公表後の訂正は政策企画課だけが行えます。"))
    stage = Stage(stage)
    fiscal_year = _locked_year(project.fiscal_year)
    if not fiscal_year.is_published(stage):
        raise SaveRejected(
            [
                RowProblem(
                    _(
                        "%(stage)sはまだ公表されていません。訂正ではなく入力シートで入力してください。"
                    )
                    % {"stage": stage.label}
                )
            ]
        )
    reason = reason.strip()
    if not reason:
        raise SaveRejected([RowProblem(_("訂正理由を入力してください。"), project.pk, "reason")])
    if value is NOT_ENTERED:
        raise SaveRejected(
            [
                RowProblem(
                    _("訂正後の金額を入力してください（予算措置なしは「―」）。"),
                    project.pk,
                    "amount",
                )
            ]
        )
    figures = {
        f.stage: f
        for f in StageFigure.objects.select_for_update().filter(
            project=project, stage__in={stage, Stage.FEBRUARY}
        )
    }
    figure = figures.get(stage)
    if (figure.version if figure else 0) != version:
        raise SaveRejected(
            [
                RowProblem(
                    _("画面を開いた後に他の人が変更しました（現在 %(current)s）。")
                    % {"current": _amount_text(_figure_value(figure))},
                    project.pk,
                    "amount",
                )
            ],
            conflict=True,
        )
    old = _figure_value(figure)
    if value == old:
        raise SaveRejected([RowProblem(_("金額が変わっていません。"), project.pk, "amount")])
    problems = _figure_rule_problems(
        project=project,
        stage=stage,
        value=value,
        february=_figure_value(figures.get(Stage.FEBRUARY)),
    )
    if problems:
        raise SaveRejected(problems)
    with audit_context(user=user, reason=_("公表後の訂正：%(reason)s") % {"reason": reason}):
        _write_figure(
            project=project,
            stage=stage,
            figure=figure,
            value=value,
            reason=figure.reason if figure else "",
        )
        correction = validated_save(
            Correction(
                project=project,
                stage=stage,
                old_entered=old is not NOT_ENTERED,
                old_amount=None if old is NOT_ENTERED else old,
                new_amount=None if value is NOT_ENTERED else value,
                reason=reason,
                corrected_by=user,
            )
        )
    over = _allocation_problems(fiscal_year=fiscal_year, ward=project.ward, stage=stage)
    if over:
        raise SaveRejected(over)
    return correction


@transaction.atomic
def stage_open(*, user, fiscal_year: FiscalYear, stage: Stage) -> FiscalYear:
    """A planner opens the next stage of a year for entry."""
    _require(user_is_planner(user), _("段階の受付開始は政策企画課だけが行えます。"))
    fiscal_year = _locked_year(fiscal_year)
    stage = Stage(stage)
    expected = (
        Stage.INITIAL
        if fiscal_year.published_stage is None
        else Stage(fiscal_year.published_stage).next
    )
    if fiscal_year.open_stage is not None:
        raise SaveRejected(
            [
                RowProblem(
                    _("%(stage)sの入力を受付中です。先に公表してください。")
                    % {"stage": _stage_label(fiscal_year.open_stage)}
                )
            ]
        )
    if expected is None:
        raise SaveRejected([RowProblem(_("この年度は決算まで公表済みです。"))])
    if stage != expected:
        raise SaveRejected(
            [RowProblem(_("次に受付を開始できるのは%(stage)sです。") % {"stage": expected.label})]
        )
    with audit_context(user=user, reason=_("%(stage)sの入力受付を開始") % {"stage": stage.label}):
        fiscal_year.open_stage = stage
        return validated_save(fiscal_year)


@transaction.atomic
def ward_submit(*, user, fiscal_year: FiscalYear, ward: Ward) -> WardSubmission:
    """Ward staff hand in the open stage of their ward; every project must be entered."""
    _require(user_can_enter(user, ward), _("この区を提出する権限がありません。"))
    fiscal_year = _locked_year(fiscal_year)
    if fiscal_year.open_stage is None:
        raise SaveRejected([RowProblem(_("この年度には入力を受け付けている段階がありません。"))])
    stage = Stage(fiscal_year.open_stage)
    missing = list(
        Project.objects.filter(fiscal_year=fiscal_year, ward=ward)
        .exclude(figures__stage=stage)
        .values_list("name", flat=True)
    )
    if missing:
        raise SaveRejected(
            [
                RowProblem(
                    _("%(stage)sが未入力の事業があります：%(names)s")
                    % {"stage": stage.label, "names": "、".join(missing)}
                )
            ]
        )
    if WardSubmission.objects.filter(ward=ward, fiscal_year=fiscal_year, stage=stage).exists():
        raise SaveRejected(
            [RowProblem(_("この区の%(stage)sはすでに提出されています。") % {"stage": stage.label})]
        )
    with audit_context(user=user, reason=_("%(stage)sを提出") % {"stage": stage.label}):
        return validated_save(
            WardSubmission(ward=ward, fiscal_year=fiscal_year, stage=stage, submitted_by=user)
        )


@transaction.atomic
def ward_return(*, user, fiscal_year: FiscalYear, ward: Ward, reason: str) -> None:
    """A planner sends a submitted ward back for more entry (差し戻し)."""
    _require(user_is_planner(user), _("差し戻しは政策企画課だけが行えます。"))
    fiscal_year = _locked_year(fiscal_year)
    submission = WardSubmission.objects.filter(
        ward=ward, fiscal_year=fiscal_year, stage=fiscal_year.open_stage or 0
    ).first()
    if submission is None:
        raise SaveRejected([RowProblem(_("この区はまだ提出されていません。"))])
    if not reason.strip():
        raise SaveRejected([RowProblem(_("差し戻しの理由を入力してください。"), field="reason")])
    with audit_context(user=user, reason=_("差し戻し：%(reason)s") % {"reason": reason.strip()}):
        submission.delete()


@transaction.atomic
def stage_publish(*, user, fiscal_year: FiscalYear) -> StagePublication:
    """A planner publishes the open stage: the public sees it, and it is locked."""
    _require(user_is_planner(user), _("公表は政策企画課だけが行えます。"))
    fiscal_year = _locked_year(fiscal_year)
    if fiscal_year.open_stage is None:
        raise SaveRejected(
            [RowProblem(_("公表できる段階がありません（入力受付中の段階がありません）。"))]
        )
    stage = Stage(fiscal_year.open_stage)
    submitted = set(
        WardSubmission.objects.filter(fiscal_year=fiscal_year, stage=stage).values_list(
            "ward_id", flat=True
        )
    )
    waiting = list(
        Ward.objects.filter(projects__fiscal_year=fiscal_year)
        .exclude(pk__in=submitted)
        .distinct()
        .values_list("name_ja", flat=True)
    )
    if waiting:
        raise SaveRejected(
            [
                RowProblem(
                    _("まだ提出されていない区があります：%(wards)s") % {"wards": "、".join(waiting)}
                )
            ]
        )
    with audit_context(user=user, reason=_("%(stage)sを公表") % {"stage": stage.label}):
        fiscal_year.published_stage = stage
        fiscal_year.open_stage = None
        validated_save(fiscal_year)
        return validated_save(
            StagePublication(fiscal_year=fiscal_year, stage=stage, published_by=user)
        )


@transaction.atomic
def project_save(*, user, project: Project, reason: str) -> Project:
    """Create or edit a project from the admin: the ward's staff or a planner."""
    _project_validate(
        ward=project.ward,
        fiscal_year=project.fiscal_year,
        pillar=project.pillar,
        previous=project.previous,
    )
    if not user_is_planner(user) and project.fiscal_year.published_stage == Stage.SETTLEMENT:
        raise PermissionDenied(_("決算まで公表済みの年度の事業は政策企画課だけが編集できます。"))
    with audit_context(user=user, reason=reason):
        return scoped_save(user=user, instance=project, ward_id=project.ward_id)


@transaction.atomic
def allocation_save(*, user, allocation: Allocation, reason: str) -> Allocation:
    """Allocations are set by planners."""
    with audit_context(user=user, reason=reason):
        return scoped_save(
            user=user, instance=allocation, ward_id=allocation.ward_id, planner_only=True
        )
