"""The ledger tables. Each Table class drives one list on the pages (and its exports).

Rows are plain dicts with a ``kind``: ``section`` rows head a pillar's group, the others
carry per-stage StageTotals (a project's own figure is a total over one project).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import django_tables2 as tables
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.encoding import force_str
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_tables2.rows import BoundRow
from django_tables2.utils import Accessor, signature

from budgets import formatting
from budgets.selectors import (
    CityRollup,
    FundRollup,
    StageTotal,
    TotalState,
    WardLedger,
    execution_rate,
    project_stage_totals,
)
from wards.models import Stage

GLOSSARY_ANCHORS = {
    "stage_1": "tousho",
    "stage_2": "hosei",
    "stage_3": "hosei",
    "stage_4": "kessan",
    "rate": "shikkouritsu",
    "unspent": "fuyougaku",
    "allocation": "haibun",
    "remaining": "haibun",
}


def glossary_link(label, anchor: str) -> SafeString:
    return format_html(
        '<a href="{}#{}" class="term">{}</a>', reverse("budgets:glossary"), anchor, label
    )


class LedgerTable(tables.Table):
    """Base: a caption, a row-header column and classes by row kind. Headers that use a
    budget term link to its entry in the glossary (unless the column sorts: no nested links)."""

    row_header = "name"

    def __init__(self, data, *, caption: str, caption_id: str, **kwargs):
        super().__init__(data, **kwargs)
        self.caption = caption
        self.caption_id = caption_id
        for name, anchor in GLOSSARY_ANCHORS.items():
            if name in self.columns and not self.columns[name].orderable:
                column = self.columns[name].column
                column.verbose_name = glossary_link(column.verbose_name, anchor)

    class Meta:
        template_name = "tables/ledger.html"
        orderable = False
        attrs = {"class": "ledger"}
        row_attrs = {"class": lambda record: f"row-{record['kind']}"}


class StageColumn(tables.Column):
    """A stage's figure or total, in its state (未入力, ―, 0, a marked partial sum)."""

    def __init__(self, stage: Stage, **kwargs):
        self.stage = stage
        kwargs.setdefault("verbose_name", stage.label)
        kwargs.setdefault("attrs", {"th": {"class": "num"}, "td": {"class": "num"}})
        kwargs.setdefault("empty_values", ())
        kwargs.setdefault("accessor", "kind")
        super().__init__(**kwargs)

    def render(self, record):
        if "stages" in record:
            printed = record.get("printed", {}).get(self.stage)
            return formatting.total_html(record["stages"][self.stage], printed)
        if "values" in record:
            return formatting.sen(record["values"].get(self.stage))
        return ""


def _stage_columns(stages: Sequence[Stage]) -> list[tuple[str, tables.Column]]:
    return [(f"stage_{stage}", StageColumn(stage)) for stage in stages]


class NumberColumn(tables.Column):
    def __init__(self, **kwargs):
        kwargs.setdefault("attrs", {"th": {"class": "num"}, "td": {"class": "num"}})
        kwargs.setdefault("empty_values", ())
        super().__init__(**kwargs)


# --- Ward ledger ------------------------------------------------------------------------------


class WardLedgerTable(LedgerTable):
    number = tables.Column(verbose_name=gettext_lazy("№"), empty_values=(), default="")
    name = tables.Column(verbose_name=gettext_lazy("事業名"), empty_values=())
    rate = NumberColumn(verbose_name=gettext_lazy("執行率"), accessor="kind")

    class Meta(LedgerTable.Meta):
        pass

    def __init__(
        self,
        ledger: WardLedger,
        rows: list[dict] | None = None,
        exclude: tuple[str, ...] = (),
        **kwargs,
    ):
        if Stage.SETTLEMENT not in ledger.stages:
            exclude += ("rate",)
        sequence = [name for name in ("number", "name") if name not in exclude] + ["..."]
        sequence += [] if "rate" in exclude else ["rate"]
        super().__init__(
            ward_ledger_rows(ledger) if rows is None else rows,
            extra_columns=_stage_columns(ledger.stages),
            exclude=exclude,
            sequence=sequence,
            **kwargs,
        )

    def render_name(self, record):
        if record["kind"] != "project":
            return record["label"]
        project = record["project"]
        url = reverse(
            "budgets:project",
            kwargs={"year": project.fiscal_year_id, "ward": record["ward_slug"], "pk": project.pk},
        )
        badges = []
        if project.is_new:
            badges.append(format_html(' <span class="badge new">{}</span>', _("新規")))
        if record.get("other_fund"):
            badges.append(
                format_html(' <span class="badge fund">{}</span>', project.fund.display_name)
            )
        return format_html(
            '<a href="{}">{}</a>{}', url, formatting.ja_text(project.name), *badges or [""]
        )

    def render_number(self, record):
        return record["project"].number if record["kind"] == "project" else ""

    def render_rate(self, record):
        return formatting.percent(record.get("rate"))


def ward_ledger_rows(ledger: WardLedger) -> list[dict]:
    """Projects grouped by pillar with per-fund subtotals, then each fund's total,
    allocation and what is left of it."""
    rows: list[dict] = []
    primary_fund = ledger.funds[0].id if ledger.funds else None
    current_pillar = object()
    group_funds: list[int] = []

    def close_group(pillar_id):
        for fund_id in group_funds:
            rollup = ledger.pillar_totals.get((pillar_id, fund_id))
            if rollup is None:
                continue
            rows.append(
                {
                    "kind": "subtotal",
                    "fund_id": fund_id,
                    "label": _("小計（%(fund)s）") % {"fund": rollup.fund.display_name},
                    "stages": rollup.stages,
                    "rate": rollup.execution_rate,
                }
            )

    for project in ledger.projects:
        if project.pillar_id != current_pillar:
            if group_funds:
                close_group(current_pillar)
            current_pillar, group_funds = project.pillar_id, []
            if project.pillar_id is not None or ledger.has_pillars:
                label = project.pillar.name if project.pillar else _("（方向性の記載なし）")
                rows.append({"kind": "section", "label": label})
        if project.fund_id not in group_funds:
            group_funds.append(project.fund_id)
        stages = project_stage_totals(project, ledger.stages)
        rows.append(
            {
                "kind": "project",
                "project": project,
                "ward_slug": ledger.ward.slug,
                "other_fund": project.fund_id != primary_fund,
                "stages": stages,
                "rate": _rate(stages),
            }
        )
    if group_funds and ledger.has_pillars:
        close_group(current_pillar)

    for rollup in ledger.fund_totals:
        if rollup.is_empty:
            continue
        rows.append(
            {
                "kind": "total",
                "fund_id": rollup.fund.id,
                "label": _("%(fund)s 合計") % {"fund": rollup.fund.display_name},
                "stages": rollup.stages,
                "printed": rollup.printed,
                "rate": rollup.execution_rate,
            }
        )
        if rollup.allocation is not None:
            rows.extend(_allocation_rows(rollup, ledger.stages))
    return rows


def _rate(stages: dict[Stage, StageTotal]) -> object:
    return execution_rate(stages[Stage.FEBRUARY], stages[Stage.SETTLEMENT])


def _allocation_rows(rollup: FundRollup, stages: Sequence[Stage]) -> list[dict]:
    return [
        {
            "kind": "allocation",
            "fund_id": rollup.fund.id,
            "label": _("配分額"),
            "values": {stage: rollup.allocation for stage in stages},
        },
        {
            "kind": "remaining",
            "fund_id": rollup.fund.id,
            "label": _("残額（配分額－合計）"),
            "values": {stage: rollup.remaining(stage) for stage in stages},
        },
    ]


# --- City overview ----------------------------------------------------------------------------


class CityFundTable(LedgerTable):
    """Every ward and the pool against its allocation for one fund, and the city total."""

    name = tables.Column(verbose_name=gettext_lazy("区"), empty_values=())
    allocation = NumberColumn(verbose_name=gettext_lazy("配分額"), accessor="kind")
    remaining = NumberColumn(verbose_name=gettext_lazy("残額"), accessor="kind")
    unspent = NumberColumn(verbose_name=gettext_lazy("不用額"), accessor="kind")
    rate = NumberColumn(verbose_name=gettext_lazy("執行率"), accessor="kind")

    class Meta(LedgerTable.Meta):
        pass

    def __init__(self, rollup: CityRollup, fund_index: int, **kwargs):
        stages = rollup.stages
        settled = Stage.SETTLEMENT in stages
        exclude = () if settled else ("unspent", "rate")
        super().__init__(
            city_fund_rows(rollup, fund_index),
            extra_columns=_stage_columns(stages),
            exclude=exclude,
            sequence=("name", "allocation", "...", "remaining", "unspent", "rate")
            if settled
            else ("name", "allocation", "...", "remaining"),
            **kwargs,
        )
        self.latest_stage = stages[-1] if stages else None
        if self.latest_stage is not None:
            self.columns["remaining"].column.verbose_name = glossary_link(
                _("残額（%(stage)s時点）") % {"stage": self.latest_stage.label}, "haibun"
            )

    def render_name(self, record):
        if record["kind"] == "city":
            return _("市全体")
        ward = record["ward"]
        if not record["has_data"]:
            return ward.display_name
        url = reverse("budgets:ward", kwargs={"year": record["year"], "ward": ward.slug})
        return format_html('<a href="{}">{}</a>', url, ward.display_name)

    def render_allocation(self, record):
        allocation = record["rollup"].allocation
        return formatting.sen(allocation) if allocation is not None else _("記載なし")

    def render_remaining(self, record):
        if self.latest_stage is None:
            return ""
        return formatting.sen(record["rollup"].remaining(self.latest_stage))

    def render_unspent(self, record):
        return formatting.sen(record["rollup"].unspent)

    def render_rate(self, record):
        return formatting.percent(record["rollup"].execution_rate)


def city_fund_rows(rollup: CityRollup, fund_index: int) -> list[dict]:
    rows = [
        {
            "kind": "ward",
            "ward": ward_rollup.ward,
            "year": rollup.fiscal_year.year,
            "has_data": ward_rollup.has_data,
            "rollup": ward_rollup.funds[fund_index],
            "stages": ward_rollup.funds[fund_index].stages,
            "printed": ward_rollup.funds[fund_index].printed,
        }
        for ward_rollup in rollup.wards
        # A ward with no project and no allocation that year has no row: the city page
        # lists the year's wards, not every ward there has ever been.
        if ward_rollup.has_data
    ]
    city = rollup.city[fund_index]
    rows.append({"kind": "city", "rollup": city, "stages": city.stages})
    return rows


# --- Staff screens ----------------------------------------------------------------------------


class WardTotalsTable(WardLedgerTable):
    """Only the fund totals, allocation and remaining rows of a ward's ledger."""

    class Meta(WardLedgerTable.Meta):
        pass

    def __init__(self, ledger: WardLedger, **kwargs):
        totals = [row for row in ward_ledger_rows(ledger) if row["kind"] in _TOTAL_KINDS]
        super().__init__(ledger, rows=totals, exclude=("number", "rate"), **kwargs)
        self.columns["name"].column.verbose_name = _("区分")


_TOTAL_KINDS = {"total", "allocation", "remaining"}


def entry_sheet_rows(sheet, form) -> list[dict]:
    """The entry sheet's rows: pillar headings, then each project with its earlier stages
    read-only and its inputs (bound form fields) for the open stage."""
    rows: list[dict] = []
    current_pillar = object()
    for project in sheet.projects:
        if project.pillar_id != current_pillar and sheet.ledger.has_pillars:
            current_pillar = project.pillar_id
            label = project.pillar.name if project.pillar else _("（方向性の記載なし）")
            rows.append({"kind": "section", "label": label})
        stages = project_stage_totals(project, sheet.stages)
        row = {
            "kind": "project",
            "project": project,
            "earlier": [stages[stage] for stage in sheet.earlier_stages],
            "current": stages[sheet.stage] if sheet.stage else None,
            "reason": getattr(project, f"reason_{sheet.stage}", "") if sheet.stage else "",
        }
        if form is not None:
            row["amount"] = form[f"amount_{project.pk}"]
            row["reason_field"] = form[f"reason_{project.pk}"]
            row["version"] = form[f"version_{project.pk}"]
        rows.append(row)
    return rows


def correction_targets(detail, fiscal_year) -> list:
    """The published stages of a project a planner may correct, with their current figures."""
    return [cell for cell in detail.cells if cell.visible and fiscal_year.is_published(cell.stage)]


# --- Open data --------------------------------------------------------------------------------

_STAGE_KEYS = {
    Stage.INITIAL: "initial",
    Stage.SEPTEMBER: "september",
    Stage.FEBRUARY: "february",
    Stage.SETTLEMENT: "settlement",
}
STATUS_NAMES = {
    TotalState.COMPLETE: "entered",
    TotalState.NO_BUDGET: "no_budget",
    TotalState.NOT_ENTERED: "not_entered",
    TotalState.UNPUBLISHED: "unpublished",
}


class FigureValueColumn(tables.Column):
    """A stage's figure in yen (empty unless entered), for machine-readable downloads."""

    def __init__(self, stage: Stage, *, status: bool, **kwargs):
        self.stage, self.status = stage, status
        suffix = "status" if status else "yen"
        kwargs.setdefault("verbose_name", f"{_STAGE_KEYS[stage]}_{suffix}")
        kwargs.setdefault("accessor", "pk")
        kwargs.setdefault("empty_values", ())
        super().__init__(**kwargs)

    def value(self, record, table, **kwargs):
        return self.value_of(project_stage_totals(record, table.stages))

    def value_of(self, totals: dict[Stage, StageTotal]) -> object:
        """The cell's value from its row's stage totals (computed once for every stage)."""
        total = totals[self.stage]
        if self.status:
            return STATUS_NAMES.get(total.state, total.state.value)
        return total.amount if total.state == TotalState.COMPLETE else ""


class OpenDataTable(tables.Table):
    """One row per project: the columns of the CSV and JSON downloads (see /data/)."""

    fiscal_year = tables.Column(accessor="fiscal_year_id", verbose_name="fiscal_year")
    ward = tables.Column(accessor="ward__name_ja", verbose_name="ward")
    ward_slug = tables.Column(accessor="ward__slug", verbose_name="ward_slug")
    pillar = tables.Column(accessor="pillar__name", verbose_name="pillar", default="")
    fund = tables.Column(accessor="fund__name_ja", verbose_name="fund")
    number = tables.Column(verbose_name="number", default="")
    name = tables.Column(verbose_name="name")
    summary = tables.Column(verbose_name="summary", default="")
    is_new = tables.Column(verbose_name="is_new")
    project_id = tables.Column(accessor="pk", verbose_name="project_id")
    previous_project_id = tables.Column(
        accessor="previous_id", verbose_name="previous_project_id", default=""
    )

    class Meta:
        orderable = False

    def __init__(self, data, *, stages, **kwargs):
        self.stages = list(stages)
        extra = []
        for stage in Stage:
            extra.append((f"{_STAGE_KEYS[stage]}_yen", FigureValueColumn(stage, status=False)))
            extra.append((f"{_STAGE_KEYS[stage]}_status", FigureValueColumn(stage, status=True)))
        super().__init__(data, extra_columns=extra, **kwargs)

    def value_is_new(self, value):
        return bool(value)

    def iter_values(self) -> Iterator[list]:
        """What ``as_values()`` yields (the header, then each project's values), without
        django-tables2's work per cell (an ``inspect.signature`` of the value method):
        each column's accessor and value method are looked up once, each row's stage
        totals are computed once for the eight figure columns, and a queryset is read with
        a streamed iterator rather than held whole."""
        columns = [c for c in self.columns.iterall() if not c.column.exclude_from_export]
        yield [force_str(c.header, strings_only=True) for c in columns]
        getters = [self._value_getter(c) for c in columns]
        data = self.data.data
        # 500 rows a fetch, as many as a streamed download writes a chunk: memory stays
        # at one chunk's projects (a server-side cursor on PostgreSQL).
        records = data.iterator(chunk_size=500) if isinstance(data, QuerySet) else data
        stages = self.stages
        for record in records:
            totals = project_stage_totals(record, stages)
            yield [get(record, totals) for get in getters]

    def _value_getter(self, bound_column) -> Callable[[object, dict], object]:
        """A function (record, stage totals) → the value ``as_values()`` gives the cell."""
        column = bound_column.column
        value_method = bound_column.value
        if isinstance(column, FigureValueColumn) and value_method == column.value:
            return lambda record, totals: column.value_of(totals)
        accessor = Accessor(bound_column.accessor)
        bits = accessor.bits
        field = accessor.get_field(getattr(self.data, "model", None))
        args, catch_all = signature(value_method)
        plain = (
            getattr(value_method, "__func__", None) is tables.Column.value
            and type(column).render is tables.Column.render
        )
        known_args = not catch_all and set(args) <= {"value", "record"}
        if getattr(field, "choices", None) or not (plain or known_args):
            # Choices (get_FOO_display) or other arguments: django-tables2's own path.
            def slow(record, totals):
                row = BoundRow(record, table=self)
                return force_str(row.get_cell_value(bound_column.name), strings_only=True)

            return slow

        def get(record, totals):
            value = record
            for bit in bits:  # as the accessor resolves it: attributes, None ends it
                value = getattr(value, bit)
                if value is None:
                    break
            if value in column.empty_values:
                return None  # as_values() gives None, not the column's default
            if not plain:
                given = {"value": value, "record": record}
                value = value_method(**{name: given[name] for name in args})
            return force_str(value, strings_only=True)

        return get


# --- Search results ---------------------------------------------------------------------------


class SearchStageColumn(tables.Column):
    """A stage's figure in a search result: only where the row's year has published it."""

    def __init__(self, stage: Stage, **kwargs):
        self.stage = stage
        kwargs.setdefault("verbose_name", stage.label)
        kwargs.setdefault("accessor", f"amount_{int(stage)}")
        kwargs.setdefault("attrs", {"th": {"class": "num"}, "td": {"class": "num"}})
        kwargs.setdefault("empty_values", ())
        kwargs.setdefault("order_by", (f"amount_{int(stage)}",))
        super().__init__(**kwargs)

    def render(self, record):
        published = record.fiscal_year.published_stage or 0
        stages = [s for s in Stage if s <= published]
        return formatting.total_html(project_stage_totals(record, stages)[self.stage])


class SearchTable(LedgerTable):
    """Search results: one row per project, sortable, paginated."""

    year = tables.Column(
        verbose_name=gettext_lazy("年度"), accessor="fiscal_year__year", order_by=("fiscal_year",)
    )
    ward = tables.Column(
        verbose_name=gettext_lazy("区"), accessor="ward__name_ja", order_by=("ward__position",)
    )
    number = tables.Column(verbose_name=gettext_lazy("№"), orderable=False, default="")
    name = tables.Column(verbose_name=gettext_lazy("事業名"))
    pillar = tables.Column(
        verbose_name=gettext_lazy("まちづくりの方向性"), accessor="pillar__name", default=""
    )
    fund = tables.Column(
        verbose_name=gettext_lazy("経費"), accessor="fund__name_ja", order_by=("fund__position",)
    )

    class Meta(LedgerTable.Meta):
        orderable = True
        row_attrs = {"class": "row-project"}
        empty_text = gettext_lazy("条件に合う事業はありません。")

    def __init__(self, data, **kwargs):
        super().__init__(
            data,
            extra_columns=[(f"stage_{int(s)}", SearchStageColumn(s)) for s in Stage],
            **kwargs,
        )

    def render_year(self, record):
        return record.fiscal_year.short_label

    def render_ward(self, record):
        return record.ward.display_name

    def render_fund(self, record):
        return record.fund.display_name

    def render_name(self, record):
        url = reverse(
            "budgets:project",
            kwargs={"year": record.fiscal_year_id, "ward": record.ward.slug, "pk": record.pk},
        )
        badge = (
            format_html(' <span class="badge new">{}</span>', _("新規")) if record.is_new else ""
        )
        return format_html('<a href="{}">{}</a>{}', url, formatting.ja_text(record.name), badge)
