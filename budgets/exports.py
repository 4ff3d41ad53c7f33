"""Excel workbooks in the planners' own layout, and the open-data CSV and JSON.

The ward sheets follow the city's printed tables (令和3年度 北区まちづくりの取り組み): title,
（単位：千円）, № / 事業名 / 事業概要 / 予算額 / 9月補正後 / 2月補正後 / 決算額, pillar
headings as section rows, and every subtotal and total as a live SUM formula over the
project rows above. A hidden column carries each project's key and a hidden sheet says
which ward and year each sheet is, so a filled-in export can be imported back.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from budgets import selectors
from budgets.selectors import CityRollup, FundRollup, StageTotal, TotalState, WardLedger
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
# Characters that make a spreadsheet read text as a formula (CSV injection).
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_BAND = PatternFill("solid", fgColor="EEF3F8")
_SECTION = PatternFill("solid", fgColor="F2F2F2")
_BOLD = Font(bold=True)
_WRAP = Alignment(wrap_text=True, vertical="top")
# Totals left blank: nothing to add up yet, so a formula would show a 0 that is not a total.
_BLANK_TOTALS = (TotalState.UNPUBLISHED, TotalState.NO_PROJECTS, TotalState.NOT_ENTERED)


def clean_text(value: object) -> str:
    """Text safe for a workbook: no control characters openpyxl cannot store."""
    return ILLEGAL_CHARACTERS_RE.sub("", "" if value is None else str(value))


def neutralise(value: str) -> str:
    """A text value that a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_TRIGGERS) else value


def _text(ws: Worksheet, row: int, col: int, value: object):
    cell = ws.cell(row=row, column=col, value=clean_text(value))
    cell.data_type = "s"  # never a formula, whatever the first character
    return cell


def thousand(yen: int) -> int | float:
    """Yen as a number of thousand yen, as the printed tables show it."""
    value = Decimal(yen) / 1000
    return int(value) if value == value.to_integral_value() else float(value)


def _write_total(ws: Worksheet, row: int, col: int, total: StageTotal) -> None:
    """A project's own figure: number, ― (no budget), or an empty cell (not entered)."""
    if not total.visible or total.state in (TotalState.NOT_ENTERED, TotalState.NO_PROJECTS):
        return
    if total.state == TotalState.NO_BUDGET:
        _text(ws, row, col, NO_BUDGET).alignment = Alignment(horizontal="right")
        return
    cell = ws.cell(row=row, column=col, value=thousand(total.amount or 0))
    cell.number_format = AMOUNT_FORMAT


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


def _setup_sheet(ws: Worksheet, title: str, subtitle: str) -> None:
    ws.cell(row=1, column=1, value=clean_text(title)).font = Font(bold=True, size=14)
    ws.cell(row=2, column=1, value=clean_text(subtitle))
    unit = ws.cell(row=2, column=STAGE_COL[Stage.SETTLEMENT], value="（単位：千円）")
    unit.alignment = Alignment(horizontal="right")
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"1:{HEADER_ROW}"
    ws.freeze_panes = ws.cell(row=HEADER_ROW + 1, column=1)


def _header(ws: Worksheet, cells: Iterable[tuple[int, str]]) -> None:
    for col, label in cells:
        cell = _text(ws, HEADER_ROW, col, label)
        cell.font, cell.fill, cell.border = _BOLD, _BAND, _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


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


def write_ward_sheet(ws: Worksheet, ledger: WardLedger, *, drafts: bool = False) -> WardSheetTotals:
    """One ward's (or the pool's) projects in the printed layout."""
    fiscal_year, ward = ledger.fiscal_year, ledger.ward
    title = _("%(year)s %(ward)sまちづくりの取り組み") % {
        "year": fiscal_year.wareki,
        "ward": ward.name_ja,
    }
    if drafts:
        title += _("（入力中・未公表）")
    _setup_sheet(ws, title, _stage_subtitle(ledger.stages, drafts))
    _header(
        ws,
        [(NUMBER_COL, "№"), (NAME_COL, "事業名"), (SUMMARY_COL, "事業概要")]
        + [(STAGE_COL[s], STAGE_HEADERS[s]) for s in Stage]
        + [(KEY_COL, "key"), (NOTE_COL, "備考")],
    )
    widths = {NUMBER_COL: 5, NAME_COL: 30, SUMMARY_COL: 50, KEY_COL: 8, NOTE_COL: 18}
    for col, width in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = width
    for col in STAGE_COL.values():
        ws.column_dimensions[get_column_letter(col)].width = 12
    ws.column_dimensions[get_column_letter(KEY_COL)].hidden = True

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
            cell = _text(ws, row, NAME_COL, record["label"])
            for col in range(NUMBER_COL, NOTE_COL + 1):
                ws.cell(row=row, column=col).fill = _SECTION
            cell.font = _BOLD
            continue
        if kind == "project":
            project = record["project"]
            _text(ws, row, NUMBER_COL, project.number)
            _text(ws, row, NAME_COL, project.name).alignment = _WRAP
            _text(ws, row, SUMMARY_COL, project.summary).alignment = _WRAP
            for stage, col in STAGE_COL.items():
                _write_total(ws, row, col, record["stages"][stage])
            ws.cell(row=row, column=KEY_COL, value=project.pk)
            if record.get("other_fund"):
                _text(ws, row, NOTE_COL, project.fund.name_ja)
            project_rows.setdefault(project.fund_id, []).append(row)
            group_rows.setdefault(project.fund_id, []).append(row)
            continue
        _text(ws, row, NAME_COL, record["label"]).font = _BOLD
        if kind in ("subtotal", "total"):
            fund_id = record["fund_id"]
            rows = (
                group_rows.get(fund_id, []) if kind == "subtotal" else project_rows.get(fund_id, [])
            )
            for stage, col in STAGE_COL.items():
                if record["stages"][stage].state in _BLANK_TOTALS:
                    continue  # blank, never a 0 that reads as a real total
                cell = ws.cell(row=row, column=col, value=_sum_formula(col, rows))
                cell.number_format, cell.font = AMOUNT_FORMAT, _BOLD
            if kind == "total":
                total_rows[fund_id] = row
                missing = [t.missing for t in record["stages"].values() if t.visible]
                if any(missing):
                    _text(ws, row, NOTE_COL, _("未入力の事業あり（合計は未確定）"))
        elif kind == "allocation":
            fund_id = record["fund_id"]
            allocation_rows[fund_id] = row
            for stage, col in STAGE_COL.items():
                if stage in record["values"]:
                    cell = ws.cell(row=row, column=col, value=thousand(record["values"][stage]))
                    cell.number_format = AMOUNT_FORMAT
        elif kind == "remaining":
            fund_id = record["fund_id"]
            for stage, col in STAGE_COL.items():
                if record["values"].get(stage) is None:
                    continue  # total not final (not entered, incomplete): no remaining
                letter = get_column_letter(col)
                formula = f"={letter}{allocation_rows[fund_id]}-{letter}{total_rows[fund_id]}"
                ws.cell(row=row, column=col, value=formula).number_format = AMOUNT_FORMAT
            if not ledger.projects_complete:
                _text(ws, row, NOTE_COL, _("主な事業のみ掲載：使われずに残った額ではありません"))
        for col in range(NUMBER_COL, NOTE_COL + 1):
            ws.cell(row=row, column=col).fill = _BAND
    for r in range(HEADER_ROW + 1, row + 1):
        for col in range(NUMBER_COL, NOTE_COL + 1):
            ws.cell(row=r, column=col).border = _BORDER
    return WardSheetTotals(sheet=ws.title, total_rows=total_rows)


def _meta_sheet(wb: Workbook, fiscal_year: FiscalYear, sheets: dict[str, Ward], drafts: bool):
    ws = wb.create_sheet(META_SHEET)
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


def _summary_sheet(
    ws: Worksheet,
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
    _setup_sheet(ws, title, _stage_subtitle(rollup.stages, drafts))
    columns = [(1, "区"), (2, "経費"), (3, "配分額")]
    columns += [(3 + s, STAGE_HEADERS[s]) for s in Stage]
    columns += [(8, "残額"), (9, "執行率"), (10, "備考")]
    _header(ws, columns)
    for col, width in {1: 12, 2: 22, 3: 12, 8: 12, 9: 9, 10: 24}.items():
        ws.column_dimensions[get_column_letter(col)].width = width
    for stage in Stage:
        ws.column_dimensions[get_column_letter(3 + stage)].width = 12
    latest = rollup.stages[-1] if rollup.stages else None
    row = HEADER_ROW
    for index, fund in enumerate(rollup.funds):
        first = row + 1
        for ward_rollup in rollup.wards:
            row += 1
            fund_rollup = ward_rollup.funds[index]
            _text(ws, row, 1, ward_rollup.ward.name_ja)
            _text(ws, row, 2, fund.name_ja)
            if fund_rollup.allocation is not None:
                ws.cell(row=row, column=3, value=thousand(fund_rollup.allocation))
            sheet = ward_sheets.get(ward_rollup.ward.pk)
            total_row = sheet.total_rows.get(fund.pk) if sheet else None
            for stage in Stage:
                if total_row is None or not fund_rollup.stages[stage].visible:
                    continue
                ref = f"'{sheet.sheet}'!{get_column_letter(STAGE_COL[stage])}{total_row}"
                # A blank total (nothing entered) stays blank, not 0.
                ws.cell(row=row, column=3 + stage, value=f'=IF({ref}="","",{ref})')
            _derived(ws, row, latest, fund_rollup)
            if any(t.state == TotalState.INCOMPLETE for t in fund_rollup.stages.values()):
                _text(ws, row, 10, _("未入力の事業あり（合計は未確定）"))
        if not whole_city:
            continue  # a SUM over some wards is not the city total
        row += 1
        city = rollup.city[index]
        _text(ws, row, 1, _("市全体")).font = _BOLD
        _text(ws, row, 2, fund.name_ja)
        if city.allocation is not None:
            ws.cell(row=row, column=3, value=thousand(city.allocation))
        for stage in Stage:
            if city.stages[stage].state not in _BLANK_TOTALS:
                col = 3 + stage
                ws.cell(row=row, column=col, value=_sum_formula(col, range(first, row)))
        _derived(ws, row, latest, city)
        if any(t.state == TotalState.INCOMPLETE for t in city.stages.values()):
            _text(ws, row, 10, _("未入力の事業あり（合計は未確定）"))
        for col in range(1, 11):
            ws.cell(row=row, column=col).fill = _BAND
            ws.cell(row=row, column=col).font = _BOLD
    for r in range(HEADER_ROW + 1, row + 1):
        for col in range(1, 11):
            cell = ws.cell(row=r, column=col)
            cell.border = _BORDER
            if 3 <= col <= 8:
                cell.number_format = AMOUNT_FORMAT
        ws.cell(row=r, column=9).number_format = RATE_FORMAT


def _derived(ws: Worksheet, row: int, latest: Stage | None, rollup: FundRollup) -> None:
    """残額 (allocation − the latest published stage) and 執行率 (settlement ÷ February),
    where the app has them: never over a total that is not final."""
    if latest is not None and rollup.remaining(latest) is not None:
        latest_col = get_column_letter(3 + latest)
        ws.cell(row=row, column=8, value=f'=IF({latest_col}{row}="","",C{row}-{latest_col}{row})')
    if latest == Stage.SETTLEMENT and rollup.execution_rate is not None:
        feb, settled = (
            get_column_letter(3 + Stage.FEBRUARY),
            get_column_letter(3 + Stage.SETTLEMENT),
        )
        ws.cell(
            row=row,
            column=9,
            value=f'=IF(OR({feb}{row}="",{feb}{row}=0),"",{settled}{row}/{feb}{row})',
        )


def _save(wb: Workbook) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def year_workbook(
    *,
    fiscal_year: FiscalYear,
    stages: Sequence[Stage] | None = None,
    wards: Sequence[Ward] | None = None,
    drafts: bool = False,
) -> bytes:
    """The summary sheet and one sheet per ward and the pool (or only ``wards``)."""
    visible = list(fiscal_year.published_stages if stages is None else stages)
    rollup = selectors.city_rollup(fiscal_year=fiscal_year, stages=visible)
    ledgers = selectors.ward_ledgers(fiscal_year=fiscal_year, stages=visible, wards=wards)
    wb = Workbook()
    summary = wb.active
    summary.title = SUMMARY_SHEET
    ward_sheets: dict[int, WardSheetTotals] = {}
    sheets: dict[str, Ward] = {}
    for ledger in ledgers:
        ws = wb.create_sheet(ledger.ward.name_ja[:31])
        ward_sheets[ledger.ward.pk] = write_ward_sheet(ws, ledger, drafts=drafts)
        sheets[ws.title] = ledger.ward
    whole_city = True
    if wards is not None:
        wanted = {w.pk for w in wards}
        whole_city = wanted >= {w.ward.pk for w in rollup.wards}
        rollup = CityRollup(
            fiscal_year=rollup.fiscal_year,
            stages=rollup.stages,
            funds=rollup.funds,
            wards=[w for w in rollup.wards if w.ward.pk in wanted],
            city=rollup.city,
            allocated_to_wards=rollup.allocated_to_wards,
        )
    _summary_sheet(summary, rollup, ward_sheets, drafts, whole_city=whole_city)
    _meta_sheet(wb, fiscal_year, sheets, drafts)
    return _save(wb)


CROSS_YEAR_HEADERS = ["区", "事業名", "年度", "№", "経費", "まちづくりの方向性"]


def cross_year_workbook(*, first: int, last: int, drafts_for: Iterable[int] = ()) -> bytes:
    """Each project's figures by year, the same project's years next to each other."""
    projects = selectors.cross_year_projects(first=first, last=last)
    wb = Workbook()
    ws = wb.active
    ws.title = "年度比較"
    _setup_sheet(
        ws,
        _("年度比較 %(first)d年度〜%(last)d年度") % {"first": first, "last": last},
        _("公表済みの段階のみ。空欄は未入力または未公表、「―」は予算措置なし。"),
    )
    headers = CROSS_YEAR_HEADERS + [STAGE_HEADERS[s] for s in Stage] + ["key"]
    _header(ws, enumerate(headers, start=1))
    for col, width in enumerate([10, 32, 16, 5, 20, 28, 12, 12, 12, 12, 8], start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.column_dimensions[get_column_letter(len(headers))].hidden = True
    row = HEADER_ROW
    for item in projects:
        row += 1
        project = item.project
        values = [
            project.ward.name_ja,
            project.name,
            FiscalYear(year=project.fiscal_year_id).label,  # no query per project
            project.number,
            project.fund.name_ja,
            project.pillar.name if project.pillar else "",
        ]
        for col, value in enumerate(values, start=1):
            _text(ws, row, col, value)
        for stage in Stage:
            _write_total(ws, row, len(CROSS_YEAR_HEADERS) + stage, item.stages[stage])
        ws.cell(row=row, column=len(headers), value=project.pk)
    return _save(wb)


# --- Open data -------------------------------------------------------------------------------


def open_data_rows(fiscal_year: FiscalYear) -> tuple[list[str], list[list]]:
    table = OpenDataTable(
        selectors.open_data_projects(fiscal_year=fiscal_year),
        stages=fiscal_year.published_stages,
    )
    values = list(table.as_values())
    return values[0], values[1:]


def open_data_csv(fiscal_year: FiscalYear) -> bytes:
    """UTF-8 with a BOM, so Excel in Japan opens it; text cells cannot run as formulas."""
    header, rows = open_data_rows(fiscal_year)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _csv_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return neutralise(clean_text(value))
    return value


def _json_project(header: list[str], row: list) -> dict:
    """A project of the JSON download: an amount not entered (or not published) is null."""
    project = dict(zip(header, row, strict=True))
    for key, value in project.items():
        if key.endswith("_yen") and value == "":
            project[key] = None
    return project


def open_data_json(fiscal_year: FiscalYear) -> bytes:
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
        "projects": [_json_project(header, row) for row in rows],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
