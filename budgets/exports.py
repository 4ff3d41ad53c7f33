"""Excel workbooks in the planners' own layout, and the open-data CSV and JSON.

The ward sheets follow the city's printed tables (令和3年度 北区まちづくりの取り組み): title,
（単位：千円）, № / 事業名 / 事業概要 / 予算額 / 9月補正後 / 2月補正後 / 決算額, pillar
headings as section rows, and every subtotal and total as a live SUM formula over the
project rows above. A hidden column carries each project's key and a hidden sheet says
which ward and year each sheet is, so a filled-in export can be imported back.

The workbooks are written in openpyxl's write-only mode: rows go to disk as they are
made, so memory does not grow with the rows. Each cell takes one of a few style arrays
built once per workbook (``_Styles``) rather than having its font, fill, border and
format assigned one by one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import groupby, islice
from operator import attrgetter
from types import SimpleNamespace

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE, Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

from budgets import selectors
from budgets.selectors import (
    CityRollup,
    FundRollup,
    StageTotal,
    TotalState,
    WardLedger,
)
from budgets.tables import OpenDataTable, ward_ledger_rows
from wards.models import FiscalYear, Stage, Ward

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
META_SHEET = "_kumamachi"
META_MARKER = "kumamachi-export-v1"
SUMMARY_SHEET = "集計"
# Fixed columns of a ward sheet, so an export can be read back.
NUMBER_COL, NAME_COL, SUMMARY_COL = 1, 2, 3
STAGE_COL = {Stage.INITIAL: 4, Stage.SEPTEMBER: 5, Stage.FEBRUARY: 6, Stage.SETTLEMENT: 7}
KEY_COL, NOTE_COL = 8, 9
HEADER_ROW = 3
STAGE_HEADERS = {
    Stage.INITIAL: "予算額",
    Stage.SEPTEMBER: "9月補正後",
    Stage.FEBRUARY: "2月補正後",
    Stage.SETTLEMENT: "決算額",
}
AMOUNT_FORMAT = "#,##0"
RATE_FORMAT = "0.0%"
NO_BUDGET = "―"
# Characters that make a spreadsheet read text as a formula (CSV injection), with their
# full-width forms: Excel in Japanese turns a typed ＝１＋１ into a formula.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
# Characters a sheet name cannot have, and the full-width ones shown instead.
_SHEET_NAME_CHARS = str.maketrans("\\*?:/[]", "￥＊？：／［］")

_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_BAND = PatternFill("solid", fgColor="EEF3F8")
_SECTION = PatternFill("solid", fgColor="F2F2F2")
_BOLD = Font(bold=True)
_WRAP = Alignment(wrap_text=True, vertical="top")
_RIGHT = Alignment(horizontal="right")
# Totals left blank: nothing to add up yet, so a formula would show a 0 that is not a total.
_BLANK_TOTALS = (TotalState.UNPUBLISHED, TotalState.NO_PROJECTS, TotalState.NOT_ENTERED)
# openpyxl keeps at most this many characters of a text cell.
_MAX_TEXT = 32767


def clean_text(value: object) -> str:
    """Text safe for a workbook: no control characters openpyxl cannot store."""
    return ILLEGAL_CHARACTERS_RE.sub("", "" if value is None else str(value))


def sheet_title(name: str, fallback: str) -> str:
    """A ward's name as a sheet name: at most 31 characters, none of \\ * ? : / [ ], and
    no ' at either end (Excel refuses such names)."""
    title = clean_text(name).translate(_SHEET_NAME_CHARS)[:31].strip("'")
    return title or fallback[:31]


def neutralise(value: str) -> str:
    """A text value that a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_TRIGGERS) else value


def thousand(yen: int) -> int | float:
    """Yen as a number of thousand yen, as the printed tables show it."""
    whole, rest = divmod(yen, 1000)
    return whole if rest == 0 else yen / 1000  # int division is exact, / correctly rounded


# --- Cells of a write-only sheet -------------------------------------------------------------


class _Styles:
    """Every cell style of the workbooks, as style arrays built once per workbook. A cell
    given one of them costs nothing more to style; assigning font, fill and border to each
    cell would hash openpyxl's style objects every time."""

    def __init__(self, wb: Workbook):
        holder = SimpleNamespace(parent=wb)  # all a cell needs to register its styles

        def style(font=None, fill=None, alignment=None, number_format=None, border=True):
            cell = Cell(holder)
            if border:
                cell.border = _BORDER
            if font is not None:
                cell.font = font
            if fill is not None:
                cell.fill = fill
            if alignment is not None:
                cell.alignment = alignment
            if number_format is not None:
                cell.number_format = number_format
            return cell._style

        self.title = style(font=Font(bold=True, size=14), border=False)
        self.unit = style(alignment=_RIGHT, border=False)
        self.header = style(
            font=_BOLD,
            fill=_BAND,
            alignment=Alignment(horizontal="center", vertical="center", wrap_text=True),
        )
        # Ward sheets: every cell below the header has a border.
        self.plain = style()
        self.wrap = style(alignment=_WRAP)
        self.amount = style(number_format=AMOUNT_FORMAT)
        self.no_budget = style(alignment=_RIGHT)
        self.section = style(fill=_SECTION)
        self.section_label = style(fill=_SECTION, font=_BOLD)
        self.band = style(fill=_BAND)
        self.band_label = style(fill=_BAND, font=_BOLD)
        self.band_amount = style(fill=_BAND, number_format=AMOUNT_FORMAT)
        self.band_total = style(fill=_BAND, font=_BOLD, number_format=AMOUNT_FORMAT)
        # The summary sheet: amounts in columns C–H, the rate in I; the city rows banded.
        self.summary = {
            city: [style(fill=fill, font=font)] * 2
            + [style(fill=fill, font=font, number_format=AMOUNT_FORMAT)] * 6
            + [style(fill=fill, font=font, number_format=RATE_FORMAT)]
            + [style(fill=fill, font=font)]
            for city, fill, font in ((False, None, None), (True, _BAND, _BOLD))
        }
        # The cross-year sheet: no borders.
        self.cross_amount = style(number_format=AMOUNT_FORMAT, border=False)
        self.cross_no_budget = style(alignment=_RIGHT, border=False)


class _Sheet(WriteOnlyWorksheet):
    """A write-only sheet whose rows may hold ready-made cells. openpyxl's own conversion
    first tries each cell as a plain value (an exception and a repr per styled cell) and
    makes a new cell after each styled one; here a cell is just placed. (No hyperlinks.)"""

    def _values_to_row(self, values, row_idx):
        plain = None  # one cell reused for the plain values, as openpyxl does
        for col_idx, value in enumerate(values, 1):
            if value is None:
                continue
            if type(value) is not Cell:
                if plain is None:
                    plain = WriteOnlyCell(self)
                plain.value = value
                value = plain
            value.column = col_idx
            value.row = row_idx
            yield value


def _sheet(wb: Workbook, title: str, index: int | None = None) -> _Sheet:
    """A new sheet of a write-only workbook, as Workbook.create_sheet makes one."""
    ws = _Sheet(parent=wb, title=title)
    wb._add_sheet(ws, index)
    return ws


def _cell(ws: _Sheet, value: object, style: StyleArray | None = None) -> Cell:
    """A cell with ``value`` as openpyxl reads it (a text starting with = is a formula)."""
    cell = Cell(ws, row=1, column=1, value=value)  # placed when appended
    cell._style = style
    return cell


def _typed(ws: _Sheet, value: object, data_type: str, style: StyleArray | None) -> Cell:
    """A cell of a known type, without openpyxl working out the type of ``value``."""
    cell = Cell(ws, row=1, column=1)
    cell._value, cell.data_type, cell._style = value, data_type, style
    return cell


def _number(ws: _Sheet, value: int | float, style: StyleArray) -> Cell:
    return _typed(ws, value, "n", style)


def _formula(ws: _Sheet, formula: str, style: StyleArray) -> Cell:
    return _typed(ws, formula, "f", style)


def _blank(ws: _Sheet, style: StyleArray) -> Cell:
    """An empty cell that still has its border (and fill)."""
    return _typed(ws, None, "n", style)


def _text(ws: _Sheet, value: object, style: StyleArray | None = None) -> Cell:
    """A text cell that is never a formula, whatever its first character."""
    return _typed(ws, clean_text(value)[:_MAX_TEXT], "s", style)


def _plain_text(ws: _Sheet, value: object) -> object:
    """Unstyled text for ``ws.append``: the string itself where openpyxl reads it as text
    anyway (no Cell to make), else a cell forced to text."""
    text = clean_text(value)[:_MAX_TEXT]
    if text.startswith("=") or text in ERROR_CODES:
        return _text(ws, text)
    return text


def _sum_formula(col: int, rows: Sequence[int]) -> str:
    """=SUM over the given rows of a column, as contiguous ranges."""
    letter = get_column_letter(col)
    parts, start, previous = [], None, None
    for row in sorted(rows):
        if start is None:
            start = previous = row
        elif row == previous + 1:
            previous = row
        else:
            parts.append(_range(letter, start, previous))
            start = previous = row
    if start is not None:
        parts.append(_range(letter, start, previous))
    return f"=SUM({','.join(parts)})" if parts else "=0"


def _range(letter: str, start: int, end: int) -> str:
    return f"{letter}{start}" if start == end else f"{letter}{start}:{letter}{end}"


@dataclass(frozen=True)
class WardSheetTotals:
    """Where a ward sheet's fund totals are, for the summary sheet's formulas."""

    sheet: str
    total_rows: dict[int, int]  # fund id → row of its total


def _setup_sheet(
    ws: _Sheet,
    styles: _Styles,
    title: str,
    subtitle: str,
    headers: Sequence[str],
    widths: dict[int, float],
    hidden: Sequence[int] = (),
) -> None:
    """Page setup, column widths, the title rows and the header row. In write-only mode
    the columns and the frozen pane must be set before the first row."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"1:{HEADER_ROW}"
    ws.freeze_panes = f"A{HEADER_ROW + 1}"
    for col, width in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = width
    for col in hidden:
        ws.column_dimensions[get_column_letter(col)].hidden = True
    ws.append([_cell(ws, clean_text(title), styles.title)])
    unit_col = STAGE_COL[Stage.SETTLEMENT]
    ws.append(
        [clean_text(subtitle)]
        + [None] * (unit_col - 2)
        + [_cell(ws, "（単位：千円）", styles.unit)]
    )
    ws.append([_text(ws, label, styles.header) for label in headers])


def _stage_subtitle(stages: Sequence[Stage], drafts: bool) -> str:
    if not stages:
        return _("この年度の金額はまだ公表されていません。")
    last = stages[-1].label
    if drafts:
        return _("入力中の未公表の数値を含みます（%(stage)sまで）。公表前の資料です。") % {
            "stage": last
        }
    return _("公表済み：%(stage)sまで。空欄は未入力または未公表、「―」は予算措置なし。") % {
        "stage": last
    }


WARD_HEADERS = {
    NUMBER_COL: "№",
    NAME_COL: "事業名",
    SUMMARY_COL: "事業概要",
    **{STAGE_COL[s]: STAGE_HEADERS[s] for s in Stage},
    KEY_COL: "key",
    NOTE_COL: "備考",
}
_WARD_WIDTHS = {
    NUMBER_COL: 5,
    NAME_COL: 30,
    SUMMARY_COL: 50,
    **{col: 12 for col in STAGE_COL.values()},
    KEY_COL: 8,
    NOTE_COL: 18,
}


def _project_figure(
    ws: _Sheet,
    total: StageTotal,
    amount: StyleArray,
    no_budget: StyleArray,
    blank: StyleArray | None = None,
) -> Cell | None:
    """A project's own figure: number, ― (no budget), or an empty cell (not entered),
    which is no cell at all without a ``blank`` style."""
    if not total.visible or total.state in (TotalState.NOT_ENTERED, TotalState.NO_PROJECTS):
        return None if blank is None else _blank(ws, blank)
    if total.state == TotalState.NO_BUDGET:
        return _text(ws, NO_BUDGET, no_budget)
    return _number(ws, thousand(total.amount or 0), amount)


def write_ward_sheet(
    ws: _Sheet,
    ledger: WardLedger,
    *,
    drafts: bool = False,
    styles: _Styles | None = None,
) -> WardSheetTotals:
    """One ward's (or the pool's) projects in the printed layout, on a new write-only
    sheet (rows are appended in order)."""
    styles = styles or _Styles(ws.parent)
    fiscal_year, ward = ledger.fiscal_year, ledger.ward
    title = _("%(year)s %(ward)sまちづくりの取り組み") % {
        "year": fiscal_year.wareki,
        "ward": ward.name_ja,
    }
    if drafts:
        title += _("（入力中・未公表）")
    _setup_sheet(
        ws,
        styles,
        title,
        _stage_subtitle(ledger.stages, drafts),
        list(WARD_HEADERS.values()),
        _WARD_WIDTHS,
        hidden=[KEY_COL],
    )
    row = HEADER_ROW
    project_rows: dict[int, list[int]] = {}  # fund id → rows of its projects
    group_rows: dict[int, list[int]] = {}  # the current pillar's project rows per fund
    total_rows: dict[int, int] = {}
    allocation_rows: dict[int, int] = {}
    for record in ward_ledger_rows(ledger):
        row += 1
        kind = record["kind"]
        if kind == "section":
            group_rows = {}
            cells = [_blank(ws, styles.section) for _col in range(NOTE_COL)]
            cells[NAME_COL - 1] = _text(ws, record["label"], styles.section_label)
            ws.append(cells)
            continue
        if kind == "project":
            project = record["project"]
            cells = [
                _text(ws, project.number, styles.plain),
                _text(ws, project.name, styles.wrap),
                _text(ws, project.summary, styles.wrap),
            ]
            cells += [
                _project_figure(
                    ws, record["stages"][s], styles.amount, styles.no_budget, styles.plain
                )
                for s in STAGE_COL
            ]
            cells.append(_number(ws, project.pk, styles.plain))
            if record.get("other_fund"):
                cells.append(_text(ws, project.fund.name_ja, styles.plain))
            else:
                cells.append(_blank(ws, styles.plain))
            ws.append(cells)
            project_rows.setdefault(project.fund_id, []).append(row)
            group_rows.setdefault(project.fund_id, []).append(row)
            continue
        cells = [_blank(ws, styles.band) for _col in range(NOTE_COL)]
        cells[NAME_COL - 1] = _text(ws, record["label"], styles.band_label)
        if kind in ("subtotal", "total"):
            fund_id = record["fund_id"]
            rows = (
                group_rows.get(fund_id, []) if kind == "subtotal" else project_rows.get(fund_id, [])
            )
            for stage, col in STAGE_COL.items():
                if record["stages"][stage].state in _BLANK_TOTALS:
                    continue  # blank, never a 0 that reads as a real total
                cells[col - 1] = _formula(ws, _sum_formula(col, rows), styles.band_total)
            if kind == "total":
                total_rows[fund_id] = row
                missing = [t.missing for t in record["stages"].values() if t.visible]
                if any(missing):
                    note = _("未入力の事業あり（合計は未確定）")
                    cells[NOTE_COL - 1] = _text(ws, note, styles.band)
        elif kind == "allocation":
            fund_id = record["fund_id"]
            allocation_rows[fund_id] = row
            for stage, col in STAGE_COL.items():
                if stage in record["values"]:
                    value = thousand(record["values"][stage])
                    cells[col - 1] = _number(ws, value, styles.band_amount)
        elif kind == "remaining":
            fund_id = record["fund_id"]
            for stage, col in STAGE_COL.items():
                if record["values"].get(stage) is None:
                    continue  # total not final (not entered, incomplete): no remaining
                letter = get_column_letter(col)
                formula = f"={letter}{allocation_rows[fund_id]}-{letter}{total_rows[fund_id]}"
                cells[col - 1] = _formula(ws, formula, styles.band_amount)
            if not ledger.projects_complete:
                note = _("主な事業のみ掲載：使われずに残った額ではありません")
                cells[NOTE_COL - 1] = _text(ws, note, styles.band)
        ws.append(cells)
    return WardSheetTotals(sheet=ws.title, total_rows=total_rows)


def _meta_sheet(wb: Workbook, fiscal_year: FiscalYear, sheets: dict[str, Ward], drafts: bool):
    ws = _sheet(wb, META_SHEET)
    ws.sheet_state = "hidden"
    rows = [
        ("marker", META_MARKER),
        ("year", fiscal_year.year),
        ("published_stage", fiscal_year.published_stage or ""),
        ("open_stage", fiscal_year.open_stage or ""),
        ("drafts", "yes" if drafts else "no"),
        ("generated_at", timezone.localtime().isoformat(timespec="seconds")),
    ]
    rows += [(f"sheet:{name}", ward.slug) for name, ward in sheets.items()]
    for row in rows:
        ws.append([clean_text(v) if isinstance(v, str) else v for v in row])


SUMMARY_HEADERS = ["区", "経費", "配分額", *STAGE_HEADERS.values(), "残額", "執行率", "備考"]
_SUMMARY_WIDTHS = {1: 12, 2: 22, 3: 12, **{3 + s: 12 for s in Stage}, 8: 12, 9: 9, 10: 24}


def _summary_sheet(
    ws: _Sheet,
    styles: _Styles,
    rollup: CityRollup,
    ward_sheets: dict[int, WardSheetTotals],
    drafts: bool,
    *,
    whole_city: bool = True,
) -> None:
    fiscal_year = rollup.fiscal_year
    title = _("%(year)s 区のまちづくり予算 集計") % {"year": fiscal_year.label}
    if drafts:
        title += _("（入力中・未公表）")
    _setup_sheet(
        ws,
        styles,
        title,
        _stage_subtitle(rollup.stages, drafts),
        SUMMARY_HEADERS,
        _SUMMARY_WIDTHS,
    )
    latest = rollup.stages[-1] if rollup.stages else None
    incomplete = _("未入力の事業あり（合計は未確定）")
    row = HEADER_ROW
    for index, fund in enumerate(rollup.funds):
        first = row + 1
        ward_styles = styles.summary[False]
        for ward_rollup in rollup.wards:
            row += 1
            fund_rollup = ward_rollup.funds[index]
            cells = [_blank(ws, style) for style in ward_styles]
            cells[0] = _text(ws, ward_rollup.ward.name_ja, ward_styles[0])
            cells[1] = _text(ws, fund.name_ja, ward_styles[1])
            if fund_rollup.allocation is not None:
                cells[2] = _number(ws, thousand(fund_rollup.allocation), ward_styles[2])
            sheet = ward_sheets.get(ward_rollup.ward.pk)
            total_row = sheet.total_rows.get(fund.pk) if sheet else None
            for stage in Stage:
                if total_row is None or not fund_rollup.stages[stage].visible:
                    continue
                letter = get_column_letter(STAGE_COL[stage])
                ref = f"{quote_sheetname(sheet.sheet)}!{letter}{total_row}"
                # A blank total (nothing entered) stays blank, not 0.
                formula = f'=IF({ref}="","",{ref})'
                cells[2 + stage] = _formula(ws, formula, ward_styles[2 + stage])
            _derived(ws, cells, row, latest, fund_rollup, ward_styles)
            if any(t.state == TotalState.INCOMPLETE for t in fund_rollup.stages.values()):
                cells[9] = _text(ws, incomplete, ward_styles[9])
            ws.append(cells)
        if not whole_city:
            continue  # a SUM over some wards is not the city total
        row += 1
        city = rollup.city[index]
        city_styles = styles.summary[True]
        cells = [_blank(ws, style) for style in city_styles]
        cells[0] = _text(ws, _("市全体"), city_styles[0])
        cells[1] = _text(ws, fund.name_ja, city_styles[1])
        if city.allocation is not None:
            cells[2] = _number(ws, thousand(city.allocation), city_styles[2])
        for stage in Stage:
            if city.stages[stage].state not in _BLANK_TOTALS:
                col = 3 + stage
                formula = _sum_formula(col, range(first, row))
                cells[col - 1] = _formula(ws, formula, city_styles[col - 1])
        _derived(ws, cells, row, latest, city, city_styles)
        if any(t.state == TotalState.INCOMPLETE for t in city.stages.values()):
            cells[9] = _text(ws, incomplete, city_styles[9])
        ws.append(cells)


def _derived(
    ws: _Sheet,
    cells: list[Cell],
    row: int,
    latest: Stage | None,
    rollup: FundRollup,
    styles: list[StyleArray],
) -> None:
    """残額 (allocation − the latest published stage) and 執行率 (settlement ÷ February),
    where the app has them: never over a total that is not final."""
    if latest is not None and rollup.remaining(latest) is not None:
        latest_col = get_column_letter(3 + latest)
        formula = f'=IF({latest_col}{row}="","",C{row}-{latest_col}{row})'
        cells[7] = _formula(ws, formula, styles[7])
    if latest == Stage.SETTLEMENT and rollup.execution_rate is not None:
        feb, settled = (
            get_column_letter(3 + Stage.FEBRUARY),
            get_column_letter(3 + Stage.SETTLEMENT),
        )
        formula = f'=IF(OR({feb}{row}="",{feb}{row}=0),"",{settled}{row}/{feb}{row})'
        cells[8] = _formula(ws, formula, styles[8])


def _save(wb: Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _with_projects(ledgers: Sequence[WardLedger], projects: Iterable) -> Iterator[WardLedger]:
    """Each ledger with its projects from the stream (in the same ward order); only one
    ward's projects are held at a time."""
    known = {ledger.ward.pk for ledger in ledgers}
    # A ward the ledgers do not have (added since they were read) is skipped.
    groups = (g for g in groupby(projects, key=attrgetter("ward_id")) if g[0] in known)
    pending = next(groups, None)
    for ledger in ledgers:
        own: list = []
        if pending is not None and pending[0] == ledger.ward.pk:
            own = list(pending[1])
            pending = next(groups, None)
        yield replace(ledger, projects=own)


def year_workbook(
    *,
    fiscal_year: FiscalYear,
    stages: Sequence[Stage] | None = None,
    wards: Sequence[Ward] | None = None,
    every_ward_id: frozenset[int] | None = None,
    drafts: bool = False,
) -> bytes:
    """The summary sheet and a sheet for each ward and the pool (or only ``wards``): see
    selectors.year_export for which wards a year's workbook has."""
    visible = list(fiscal_year.published_stages if stages is None else stages)
    export = selectors.year_export(
        fiscal_year=fiscal_year, stages=visible, wards=wards, every_ward_id=every_ward_id
    )
    wb = Workbook(write_only=True)
    styles = _Styles(wb)
    ward_sheets: dict[int, WardSheetTotals] = {}
    sheets: dict[str, Ward] = {}
    projects = selectors.year_export_projects(export)
    for ledger in _with_projects(export.ledgers, projects):
        ws = _sheet(wb, sheet_title(ledger.ward.name_ja, ledger.ward.slug))
        ward_sheets[ledger.ward.pk] = write_ward_sheet(ws, ledger, drafts=drafts, styles=styles)
        ws.close()  # written out now: an open sheet holds its pending XML until the save
        sheets[ws.title] = ledger.ward
    # The summary refers to the ward sheets' total rows, so it is written last, in front.
    summary = _sheet(wb, SUMMARY_SHEET, 0)
    wb.active = 0
    _summary_sheet(
        summary, styles, export.rollup, ward_sheets, drafts, whole_city=export.whole_city
    )
    _meta_sheet(wb, fiscal_year, sheets, drafts)
    return _save(wb)


CROSS_YEAR_HEADERS = ["区", "事業名", "年度", "№", "経費", "まちづくりの方向性"]


def cross_year_workbook(*, first: int, last: int, drafts_for: Iterable[int] = ()) -> bytes:
    """Each project's figures by year, the same project's years next to each other."""
    wb = Workbook(write_only=True)
    styles = _Styles(wb)
    ws = _sheet(wb, "年度比較")
    headers = CROSS_YEAR_HEADERS + [STAGE_HEADERS[s] for s in Stage] + ["key"]
    widths = [10, 32, 16, 5, 20, 28, 12, 12, 12, 12, 8]
    _setup_sheet(
        ws,
        styles,
        _("年度比較 %(first)d年度〜%(last)d年度") % {"first": first, "last": last},
        _("公表済みの段階のみ。空欄は未入力または未公表、「―」は予算措置なし。"),
        headers,
        dict(enumerate(widths, start=1)),
        hidden=[len(headers)],
    )
    texts: dict[str, object] = {}  # ward, fund and pillar names and year labels, made once

    def repeated(value: str) -> object:
        text = texts.get(value)
        if text is None:
            text = texts[value] = _plain_text(ws, value)
        return text if isinstance(text, str) else _text(ws, value)  # a cell is not shared

    stages = list(Stage)
    labels: dict[int, str] = {}  # no FiscalYear query per project
    for item in selectors.cross_year_projects(first=first, last=last):
        if item.fiscal_year not in labels:
            labels[item.fiscal_year] = FiscalYear(year=item.fiscal_year).label
        row = [
            repeated(item.ward),
            _plain_text(ws, item.name),
            repeated(labels[item.fiscal_year]),
            _plain_text(ws, item.number),
            repeated(item.fund),
            repeated(item.pillar),
        ]
        for stage in stages:
            total = item.stages[stage]
            row.append(_project_figure(ws, total, styles.cross_amount, styles.cross_no_budget))
        row.append(item.pk)
        ws.append(row)
    ws.close()
    return _save(wb)


# --- Open data -------------------------------------------------------------------------------


def open_data_rows(fiscal_year: FiscalYear) -> tuple[list[str], Iterator[list]]:
    """The header and the rows (streamed from the database) of OpenDataTable."""
    table = OpenDataTable(
        selectors.open_data_projects(fiscal_year=fiscal_year),
        stages=fiscal_year.published_stages,
    )
    values = table.iter_values()
    return next(values), values


# Rows per chunk of a streamed download.
_CHUNK_ROWS = 500


def open_data_csv_chunks(fiscal_year: FiscalYear) -> Iterator[bytes]:
    """The CSV in chunks of bytes (see open_data_csv)."""
    header, rows = open_data_rows(fiscal_year)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_csv_value(v) for v in row])
        if count % _CHUNK_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def open_data_csv(fiscal_year: FiscalYear) -> bytes:
    """UTF-8 with a BOM, so Excel in Japan opens it; text cells cannot run as formulas."""
    return b"".join(open_data_csv_chunks(fiscal_year))


def _csv_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return neutralise(clean_text(value))
    return value


# json's C encoder for single values (json.dumps with an indent uses the slower Python one).
_json_value = json.JSONEncoder(ensure_ascii=False).encode


def _json_project(keys: list[str], yen: list[bool], row: list) -> str:
    """A project of the JSON download, indented as in the document; an amount not entered
    (or not published) is null."""
    fields = ",\n   ".join(
        key + _json_value(None if is_yen and value == "" else value)
        for key, is_yen, value in zip(keys, yen, row, strict=True)
    )
    return "{\n   " + fields + "\n  }"


def open_data_json_chunks(fiscal_year: FiscalYear) -> Iterator[bytes]:
    """The JSON document in chunks of bytes, exactly as json.dumps(document,
    ensure_ascii=False, indent=1) writes it, a few hundred projects at a time."""
    header, rows = open_data_rows(fiscal_year)
    document = {
        "fiscal_year": fiscal_year.year,
        "label": fiscal_year.label,
        "published_stage": fiscal_year.published_stage,
        "licence": "CC BY 4.0",
        "source": "kumamachi",
        "generated_at": datetime.now(tz=timezone.get_current_timezone()).isoformat(
            timespec="seconds"
        ),
        "columns": header,
    }
    # Everything but the projects, then "projects" as the last key.
    head = json.dumps(document, ensure_ascii=False, indent=1)[: -len("\n}")]
    head += ',\n "projects": '
    keys = [_json_value(key) + ": " for key in header]
    yen = [key.endswith("_yen") for key in header]
    projects = (_json_project(keys, yen, row) for row in rows)
    opening, empty = head + "[\n  ", True
    while batch := list(islice(projects, _CHUNK_ROWS)):
        yield (opening + ",\n  ".join(batch)).encode("utf-8")
        opening, empty = ",\n  ", False
    yield (head + "[]\n}" if empty else "\n ]\n}").encode("utf-8")


def open_data_json(fiscal_year: FiscalYear) -> bytes:
    return b"".join(open_data_json_chunks(fiscal_year))
