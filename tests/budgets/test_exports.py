"""The Excel exports: the ward sheets cell by cell (令和3年度 北区 of the seed data), the
summary sheet, page setup, file names, the cross-year workbook, drafts for staff, query
counts, and LibreOffice recalculating every workbook to the app's own totals.

The LibreOffice tests need ``soffice`` (Debian: libreoffice-calc-nogui, installed by .ci/run)
and fail, never skip, without it: a workbook nobody recalculated is not a tested one.
"""

import csv
import io
import re
import shutil
import subprocess
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from budgets import selectors
from budgets.exports import HEADER_ROW, STAGE_COL, XLSX_CONTENT_TYPE
from budgets.models import Project
from budgets.selectors import TotalState
from budgets.tables import ward_ledger_rows
from tests.factories import (
    AllocationFactory,
    FiscalYearFactory,
    FundFactory,
    ProjectFactory,
    StageFigureFactory,
    VisionPillarFactory,
    WardFactory,
    WardYearFactory,
    project_with_figures,
    staff_user,
)
from wards.models import FiscalYear, Stage, Ward

pytestmark = pytest.mark.django_db

MACHI, FUKKO = "まちづくり推進経費", "復興支援自治推進経費"
SUB_MACHI, SUB_FUKKO = f"小計（{MACHI}）", f"小計（{FUKKO}）"
TOTAL_MACHI, TOTAL_FUKKO = f"{MACHI} 合計", f"{FUKKO} 合計"
ALLOCATION, REMAINING = "配分額", "残額（配分額－合計）"
P1 = "誰もが楽しく集い、笑顔が広がる「場」の創出"
P2 = "健康の大切さを知り、お互いを思いやり支え合う気持ちの醸成"
P3 = "地域での活動を支援"
P4 = "地域を支える土台づくり"
P5 = "防災・減災コミュニティ形成"

# 令和3年度 北区 as printed (/work/shared/reference/kumamoto-data.md), thousand yen:
# name: (№, pillar, fund, (予算額, 9月補正後, 2月補正後, 決算額)).
KITA_2021 = {
    "北区笑顔交流プロジェクト": ("①", P1, MACHI, (3100, 3100, 600, 100)),
    "北区居場所づくりプロジェクト": ("②", P1, MACHI, (617, 162, 162, 81)),
    "北区健康・支え合いプロジェクト": ("③", P2, MACHI, (1582, 1096, 1096, 886)),
    "北区安全・安心プロジェクト": ("④", P2, MACHI, (3015, 2233, 2233, 1527)),
    "自主自立のまちづくり推進プロジェクト": ("⑤", P3, MACHI, (6721, 3870, 3570, 2307)),
    "「北区の魅力」発信事業！": ("⑥", P4, MACHI, (1909, 1909, 1909, 1909)),
    "緊急課題対応費": ("⑦", P4, MACHI, (1746, 1746, 1746, 508)),
    "北区まちづくり懇話会": ("⑧", P4, MACHI, (310, 310, 310, 42)),
    "避難所運営委員会設立支援及び活動支援助成事業": ("", P5, FUKKO, (1200, 1200, 1200, 900)),
}
KITA_MACHI_TOTALS = (19000, 14426, 11626, 7360)
KITA_FUKKO_TOTALS = (1200, 1200, 1200, 900)

# Column B of the 北区 sheet from row 4 down, with each row's kind.
KITA_LAYOUT = [
    ("section", P1),
    ("project", "北区笑顔交流プロジェクト"),
    ("project", "北区居場所づくりプロジェクト"),
    ("subtotal", SUB_MACHI),
    ("section", P2),
    ("project", "北区健康・支え合いプロジェクト"),
    ("project", "北区安全・安心プロジェクト"),
    ("subtotal", SUB_MACHI),
    ("section", P3),
    ("project", "自主自立のまちづくり推進プロジェクト"),
    ("subtotal", SUB_MACHI),
    ("section", P4),
    ("project", "「北区の魅力」発信事業！"),
    ("project", "緊急課題対応費"),
    ("project", "北区まちづくり懇話会"),
    ("subtotal", SUB_MACHI),
    ("section", P5),
    ("project", "避難所運営委員会設立支援及び活動支援助成事業"),
    ("subtotal", SUB_FUKKO),
    ("total", TOTAL_MACHI),
    ("allocation", ALLOCATION),
    ("remaining", REMAINING),
    ("total", TOTAL_FUKKO),
]
WARD_SHEETS_2021 = ["中央区", "東区", "西区", "南区", "北区", "5区共通"]
HEADERS = ["№", "事業名", "事業概要", "予算額", "9月補正後", "2月補正後", "決算額", "key", "備考"]
SUMMARY_HEADERS = [
    "区",
    "経費",
    "配分額",
    "予算額",
    "9月補正後",
    "2月補正後",
    "決算額",
    "残額",
    "執行率",
    "備考",
]
AMOUNT_COLUMNS = "DEFG"


# --- Helpers ----------------------------------------------------------------------------------


def _workbook(response):
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == XLSX_CONTENT_TYPE
    return load_workbook(io.BytesIO(response.content))


def _get_workbook(client, url):
    return _workbook(client.get(url))


def _row_of(ws, label, column=2):
    """The row whose column (B by default) holds ``label``; it must be the only one."""
    rows = [cell.row for cell in ws[get_column_letter(column)] if cell.value == label]
    assert len(rows) == 1, f"{label!r} in rows {rows} of {ws.title}"
    return rows[0]


def _formula_rows(formula: str, letter: str) -> list[int]:
    """The rows a =SUM(D5:D6,D9) formula adds up, in column ``letter`` only."""
    match = re.fullmatch(r"=SUM\((.*)\)", formula)
    assert match, formula
    rows = []
    for part in match.group(1).split(","):
        ends = part.split(":")
        numbers = []
        for end in ends:
            ref = re.fullmatch(rf"{letter}(\d+)", end)
            assert ref, f"{end!r} of {formula!r} is not in column {letter}"
            numbers.append(int(ref.group(1)))
        rows.extend(range(numbers[0], numbers[-1] + 1))
    return rows


def _all_values(wb):
    return [
        cell.value
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for cell in row
        if cell.value is not None
    ]


def _kita_sheet(client):
    return _get_workbook(client, "/2021/export.xlsx")["北区"]


def _project_rows(ws):
    """{project name: row} of a ward sheet (rows whose hidden key column holds a pk)."""
    return {
        ws.cell(row, 2).value: row
        for row in range(HEADER_ROW + 1, ws.max_row + 1)
        if isinstance(ws.cell(row, 8).value, int)
    }


# --- LibreOffice ------------------------------------------------------------------------------

CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
# Always recalculate an xlsx on load, whatever values a file may carry.
RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" \
oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" \
oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


@pytest.fixture(scope="session")
def lo_profile(tmp_path_factory) -> Path:
    """A private LibreOffice profile for this test run, so parallel runs never share one."""
    profile = tmp_path_factory.mktemp("libreoffice-profile")
    (profile / "user").mkdir()
    (profile / "user" / "registrymodifications.xcu").write_text(RECALC_ALWAYS, encoding="utf-8")
    return profile


def recalculate(content: bytes, workdir: Path, profile: Path) -> dict[str, list[list[str]]]:
    """Open the workbook in LibreOffice headless, recalculate it and return every sheet's
    computed values as CSV rows (values, not formulas; raw numbers, not as displayed)."""
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail(
            "LibreOffice is not installed (no soffice on PATH): "
            "apt-get install --no-install-recommends libreoffice-calc-nogui (see .ci/run)",
            pytrace=False,
        )
    workdir.mkdir(parents=True, exist_ok=True)
    book = workdir / "book.xlsx"
    book.write_bytes(content)
    out = workdir / "csv"
    command = [
        soffice,
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless",
        "--norestore",
        "--convert-to",
        CSV_FILTER,
        "--outdir",
        str(out),
        str(book),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    sheets = {}
    for path in sorted(out.glob("book-*.csv")):
        with path.open(encoding="utf-8", newline="") as file:
            sheets[path.stem.removeprefix("book-")] = list(csv.reader(file))
    if result.returncode != 0 or not sheets:
        pytest.fail(f"soffice failed ({result.returncode}): {result.stdout}\n{result.stderr}")
    return sheets


def _number(text: str) -> Decimal | None:
    if text == "":
        return None
    if text.endswith("%"):
        return Decimal(text[:-1]) / 100
    return Decimal(text)


def _cell(text: str):
    return text if text == "―" else _number(text)


def _k(yen: int | None) -> Decimal | None:
    return None if yen is None else Decimal(yen) / 1000


def _total(total) -> Decimal | None:
    """A stage total as the workbook must compute it: blank until something is entered."""
    if total.state in (TotalState.UNPUBLISHED, TotalState.NO_PROJECTS, TotalState.NOT_ENTERED):
        return None
    return _k(total.amount or 0)


def _project_figure(total):
    if total.state == TotalState.COMPLETE:
        return _k(total.amount)
    if total.state == TotalState.NO_BUDGET:
        return "―"
    return None


def _rate(text: str) -> Decimal | None:
    value = _number(text)
    return None if value is None else (value * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)


def assert_ward_sheet_computes(rows: list[list[str]], ledger) -> None:
    """Every figure LibreOffice computed on a ward sheet equals the app's own figure."""
    records = ward_ledger_rows(ledger)
    assert rows[HEADER_ROW - 1][: len(HEADERS)] == HEADERS
    for offset, record in enumerate(records):
        number = HEADER_ROW + 1 + offset
        row = rows[number - 1]
        kind = record["kind"]
        label = record["project"].name if kind == "project" else record["label"]
        assert row[1] == label, f"{ledger.ward.name_ja} row {number}"
        if kind == "section":
            continue
        for stage, col in STAGE_COL.items():
            if kind == "project":
                want = _project_figure(record["stages"][stage])
            elif kind in ("subtotal", "total"):
                want = _total(record["stages"][stage])
            else:  # allocation, remaining
                want = _k(record["values"].get(stage))
            got = _cell(row[col - 1])
            assert got == want, f"{ledger.ward.name_ja} {label} {stage.label}: {got} != {want}"
    below = rows[HEADER_ROW + len(records) :]
    assert not any(any(row) for row in below), below


def assert_summary_computes(rows: list[list[str]], rollup, ward_ids=None) -> None:
    """The summary sheet as LibreOffice computes it equals city_rollup: each ward and the
    pool per fund, and the city total (only in a workbook of every ward)."""
    assert rows[HEADER_ROW - 1] == SUMMARY_HEADERS
    latest = rollup.stages[-1] if rollup.stages else None
    wards = [w for w in rollup.wards if ward_ids is None or w.ward.pk in ward_ids]
    number = HEADER_ROW
    for index, fund in enumerate(rollup.funds):
        lines = [(w.ward.name_ja, w.funds[index]) for w in wards]
        if ward_ids is None:
            lines.append(("市全体", rollup.city[index]))
        for name, fund_rollup in lines:
            row = rows[number]
            number += 1
            where = f"集計 row {number} {name} {fund.name_ja}"
            assert row[:2] == [name, fund.name_ja], where
            assert _number(row[2]) == _k(fund_rollup.allocation), where
            for stage in Stage:
                got, want = _number(row[2 + stage]), _total(fund_rollup.stages[stage])
                assert got == want, f"{where} {stage.label}: {got} != {want}"
            remaining = fund_rollup.remaining(latest) if latest else None
            assert _number(row[7]) == _k(remaining), f"{where} 残額"
            assert _rate(row[8]) == fund_rollup.execution_rate, f"{where} 執行率"
    assert not any(any(row) for row in rows[number:]), rows[number:]


# --- The ward sheet, cell by cell ---------------------------------------------------------------


def test_sheets_are_named_in_japanese(seeded, client):
    wb = _get_workbook(client, "/2021/export.xlsx")
    assert wb.sheetnames == ["集計", *WARD_SHEETS_2021, "_kumamachi"]
    assert wb["_kumamachi"].sheet_state == "hidden"
    assert all(wb[name].sheet_state == "visible" for name in ["集計", *WARD_SHEETS_2021])
    assert _get_workbook(client, "/2021/kita/export.xlsx").sheetnames == [
        "集計",
        "北区",
        "_kumamachi",
    ]


def test_kita_title_unit_and_headers(seeded, client):
    ws = _kita_sheet(client)
    assert ws["A1"].value == "令和3年度 北区まちづくりの取り組み"
    assert ws["A1"].font.bold
    assert "（単位：千円）" in [cell.value for cell in ws[2]]
    assert [cell.value for cell in ws[HEADER_ROW]][: len(HEADERS)] == HEADERS
    assert all(cell.font.bold for cell in ws[HEADER_ROW][: len(HEADERS)])


def test_kita_layout_sections_projects_and_totals_in_order(seeded, client):
    ws = _kita_sheet(client)
    labels = [ws.cell(row, 2).value for row in range(HEADER_ROW + 1, ws.max_row + 1)]
    assert labels == [label for _, label in KITA_LAYOUT]
    for offset, (kind, _) in enumerate(KITA_LAYOUT):
        row = HEADER_ROW + 1 + offset
        values = [ws.cell(row, col).value for col in range(1, 10)]
        if kind == "section":
            # A pillar heading: its name alone, in bold, across a shaded row.
            assert values[0] is None and values[2:] == [None] * 7, values
            assert ws.cell(row, 2).font.bold
            assert ws.cell(row, 1).fill.fgColor.rgb == ws.cell(row, 9).fill.fgColor.rgb
            assert ws.cell(row, 1).fill.fill_type == "solid"


def test_kita_project_rows_cell_by_cell(seeded, client):
    from budgets.models import Project

    ws = _kita_sheet(client)
    rows = _project_rows(ws)
    assert list(rows) == list(KITA_2021)
    projects = {p.name: p for p in Project.objects.filter(fiscal_year_id=2021, ward__slug="kita")}
    for name, (number, pillar, fund, figures) in KITA_2021.items():
        row = rows[name]
        project = projects[name]
        assert ws.cell(row, 1).value == (number or None), name
        assert ws.cell(row, 2).value == name
        assert ws.cell(row, 3).value == project.summary
        assert [ws.cell(row, col).value for col in (4, 5, 6, 7)] == list(figures), name
        for col in (4, 5, 6, 7):
            assert ws.cell(row, col).data_type == "n"
            assert ws.cell(row, col).number_format == "#,##0"
        assert ws.cell(row, 8).value == project.pk  # the hidden key
        # The 復興支援 project sits among まちづくり ones: its fund is noted.
        assert ws.cell(row, 9).value == (FUKKO if fund == FUKKO else None)
        for col in (2, 3):  # Japanese text wraps
            assert ws.cell(row, col).alignment.wrap_text, (name, col)
            assert ws.cell(row, col).data_type == "s"
        # The pillar heading above it is its pillar.
        heading = next(
            ws.cell(r, 2).value
            for r in range(row, HEADER_ROW, -1)
            if ws.cell(r, 1).value is None and ws.cell(r, 4).value is None
        )
        assert heading == pillar


def test_kita_totals_are_sum_formulas_over_the_project_rows(seeded, client):
    ws = _kita_sheet(client)
    rows = _project_rows(ws)
    machi_rows = sorted(rows[n] for n, v in KITA_2021.items() if v[2] == MACHI)
    fukko_rows = sorted(rows[n] for n, v in KITA_2021.items() if v[2] == FUKKO)
    for label, wanted in ((TOTAL_MACHI, machi_rows), (TOTAL_FUKKO, fukko_rows)):
        row = _row_of(ws, label)
        for letter in AMOUNT_COLUMNS:
            cell = ws[f"{letter}{row}"]
            assert isinstance(cell.value, str) and cell.value.startswith("=SUM("), cell.value
            assert cell.data_type == "f"
            assert cell.number_format == "#,##0"
            assert sorted(_formula_rows(cell.value, letter)) == wanted, (label, cell.value)
    # Each pillar's subtotal adds up the projects between its heading and itself.
    for offset, (kind, _) in enumerate(KITA_LAYOUT):
        if kind != "subtotal":
            continue
        row = HEADER_ROW + 1 + offset
        start = max(r for r in range(HEADER_ROW + 1, row) if KITA_LAYOUT[r - 4][0] == "section")
        for letter in AMOUNT_COLUMNS:
            formula = ws[f"{letter}{row}"].value
            assert formula.startswith("=SUM("), formula
            assert sorted(_formula_rows(formula, letter)) == list(range(start + 1, row))
    # 配分額 is typed; 残額 is a formula of 配分額 and the total.
    allocation, remaining, total = (
        _row_of(ws, ALLOCATION),
        _row_of(ws, REMAINING),
        _row_of(ws, TOTAL_MACHI),
    )
    for letter in AMOUNT_COLUMNS:
        assert ws[f"{letter}{allocation}"].value == 19000
        assert ws[f"{letter}{remaining}"].value == f"={letter}{allocation}-{letter}{total}"
    # No total anywhere is a typed number.
    for label in (TOTAL_MACHI, TOTAL_FUKKO, SUB_MACHI, SUB_FUKKO):
        for row in (c.row for c in ws["B"] if c.value == label):
            assert all(ws[f"{letter}{row}"].data_type == "f" for letter in AMOUNT_COLUMNS)


def test_no_budget_is_a_dash_and_not_entered_is_empty(seeded, client):
    """中央区 令和3年度: two projects with ―, and only the initial budgets entered."""
    ws = _get_workbook(client, "/2021/export.xlsx")["中央区"]
    rows = _project_rows(ws)
    dash = rows["企業資源活用によるまちづくり事業"]
    assert ws.cell(dash, 4).value == "―"
    assert ws.cell(dash, 4).data_type == "s"
    assert ws.cell(dash, 4).alignment.horizontal == "right"
    assert ws.cell(rows["中央区広報広聴事業"], 4).value == "―"
    for row in rows.values():
        # 9月補正後 and later were never entered: empty, never 0 or ―.
        assert [ws.cell(row, col).value for col in (5, 6, 7)] == [None, None, None]
    total = _row_of(ws, TOTAL_MACHI)
    assert ws.cell(total, 4).value.startswith("=SUM(")
    assert [ws.cell(total, col).value for col in (5, 6, 7)] == [None, None, None]
    assert ws.cell(total, 9).value == "未入力の事業あり（合計は未確定）"
    # Nothing to subtract from the allocation where the total is blank.
    remaining = _row_of(ws, REMAINING)
    assert ws.cell(remaining, 4).value.startswith("=")
    assert [ws.cell(remaining, col).value for col in (5, 6, 7)] == [None, None, None]


def test_ward_sheet_page_setup(seeded, client):
    wb = _get_workbook(client, "/2021/export.xlsx")
    for name in ["集計", *WARD_SHEETS_2021]:
        ws = wb[name]
        assert ws.freeze_panes == "A4", name  # the header row stays in view
        assert ws.print_title_rows.replace("$", "") == "1:3", name
        assert ws.page_setup.orientation == "landscape", name
        assert int(ws.page_setup.paperSize) == 9, name  # A4
        assert int(ws.page_setup.fitToWidth) == 1, name
        assert ws.sheet_properties.pageSetUpPr.fitToPage, name
    for name in WARD_SHEETS_2021:
        ws = wb[name]
        assert ws["H3"].value == "key"
        assert ws.column_dimensions["H"].hidden, name
        assert not any(ws.column_dimensions[c].hidden for c in "ABCDEFGI"), name


def test_meta_sheet_names_year_and_sheets(seeded, client):
    meta = dict(_get_workbook(client, "/2021/export.xlsx")["_kumamachi"].values)
    assert meta["marker"] == "kumamachi-export-v1"
    assert meta["year"] == 2021
    assert meta["drafts"] == "no"
    assert meta["sheet:北区"] == "kita"
    assert meta["sheet:5区共通"] == "common"


def test_a_fund_with_an_allocation_and_no_projects_has_blank_totals(client):
    """Nothing to add up: blank totals and remaining, never a 0 that reads as a total."""
    year = FiscalYearFactory(year=2022, published_stage=Stage.SETTLEMENT)
    ward = WardFactory(slug="kita", name_ja="北区", position=5)
    machi, fukko = FundFactory(code="machizukuri"), FundFactory(code="fukko")
    AllocationFactory(fiscal_year=year, ward=ward, fund=fukko, amount=1_000_000)
    project_with_figures(
        {s: 1_000_000 for s in Stage}, ward=ward, fiscal_year=year, fund=machi, number="1"
    )
    wb = _get_workbook(client, "/2022/export.xlsx")
    ws = wb["北区"]
    total, remaining = _row_of(ws, TOTAL_FUKKO), _row_of(ws, REMAINING)
    assert [ws.cell(total, col).value for col in (4, 5, 6, 7)] == [None] * 4
    assert [ws.cell(remaining, col).value for col in (4, 5, 6, 7)] == [None] * 4
    summary = wb["集計"]
    city = [r for r in range(4, summary.max_row + 1) if summary.cell(r, 1).value == "市全体"]
    fukko_city = next(r for r in city if summary.cell(r, 2).value == FUKKO)
    assert [summary.cell(fukko_city, c).value for c in (4, 5, 6, 7, 8, 9)] == [None] * 6


# --- The summary sheet --------------------------------------------------------------------------


def test_summary_sheet_every_ward_and_pool_per_fund_and_the_city(seeded, client):
    wb = _get_workbook(client, "/2021/export.xlsx")
    ws, kita_sheet = wb["集計"], wb["北区"]
    assert ws["A1"].value == "令和3年度 (2021年度) 区のまちづくり予算 集計"
    assert "（単位：千円）" in [cell.value for cell in ws[2]]
    assert [cell.value for cell in ws[HEADER_ROW]] == SUMMARY_HEADERS
    names = [(ws.cell(r, 1).value, ws.cell(r, 2).value) for r in range(4, ws.max_row + 1)]
    assert names == [(w, MACHI) for w in [*WARD_SHEETS_2021, "市全体"]] + [
        (w, FUKKO) for w in [*WARD_SHEETS_2021, "市全体"]
    ]
    kita = 4 + WARD_SHEETS_2021.index("北区")
    total = _row_of(kita_sheet, TOTAL_MACHI)
    assert ws.cell(kita, 3).value == 19000
    for stage, col in STAGE_COL.items():
        letter = get_column_letter(col)
        ref = f"'北区'!{letter}{total}"
        assert ws.cell(kita, 3 + stage).value == f'=IF({ref}="","",{ref})'
        assert ws.cell(kita, 3 + stage).number_format == "#,##0"
    assert ws.cell(kita, 8).value.startswith("=")  # 残額 at the latest stage
    assert ws.cell(kita, 9).value.startswith("=")  # 執行率
    assert ws.cell(kita, 9).number_format == "0.0%"
    city = 4 + len(WARD_SHEETS_2021)
    for letter in AMOUNT_COLUMNS:
        assert ws[f"{letter}{city}"].value == f"=SUM({letter}4:{letter}{city - 1})"
    assert ws.cell(city, 1).font.bold


def test_ward_workbook_summary_has_only_that_ward_and_no_city_row(seeded, client):
    """A SUM over one ward labelled 市全体 would be a wrong city total."""
    ws = _get_workbook(client, "/2021/kita/export.xlsx")["集計"]
    rows = [(ws.cell(r, 1).value, ws.cell(r, 2).value) for r in range(4, ws.max_row + 1)]
    assert rows == [("北区", MACHI), ("北区", FUKKO)]


# --- LibreOffice recalculates ---------------------------------------------------------------


def test_libreoffice_recalculates_the_2021_workbook_to_the_apps_totals(
    seeded, client, lo_profile, tmp_path
):
    content = client.get("/2021/export.xlsx").content
    sheets = recalculate(content, tmp_path, lo_profile)
    assert set(sheets) == {"集計", *WARD_SHEETS_2021, "_kumamachi"}
    fiscal_year = FiscalYear.objects.get(year=2021)

    # 北区 as printed, computed by the spreadsheet's own formulas.
    kita = sheets["北区"]
    labels = [row[1] for row in kita]
    machi, fukko = kita[labels.index(TOTAL_MACHI)], kita[labels.index(TOTAL_FUKKO)]
    assert [_number(v) for v in machi[3:7]] == list(KITA_MACHI_TOTALS)
    assert [_number(v) for v in fukko[3:7]] == list(KITA_FUKKO_TOTALS)
    remaining = kita[labels.index(REMAINING)]
    assert [_number(v) for v in remaining[3:7]] == [19000 - t for t in KITA_MACHI_TOTALS]

    # Every ward sheet against the app's ledger, every summary row against city_rollup.
    for ledger in selectors.ward_ledgers(fiscal_year=fiscal_year):
        assert_ward_sheet_computes(sheets[ledger.ward.name_ja], ledger)
    rollup = selectors.city_rollup(fiscal_year=fiscal_year)
    assert_summary_computes(sheets["集計"], rollup)

    summary = {(row[0], row[1]): row for row in sheets["集計"][HEADER_ROW:]}
    kita_machi = summary[("北区", MACHI)]
    assert [_number(v) for v in kita_machi[2:8]] == [19000, *KITA_MACHI_TOTALS, 11640]
    assert _rate(kita_machi[8]) == Decimal("63.3")
    kita_fukko = summary[("北区", FUKKO)]
    assert [_number(v) for v in kita_fukko[3:7]] == list(KITA_FUKKO_TOTALS)
    assert _rate(kita_fukko[8]) == Decimal("75.0")
    city_machi = summary[("市全体", MACHI)]
    # 中央区 entered only its initial budgets: 38,000 in all, the later stages 北区's only
    # (marked as not final), and no execution rate over a partial total.
    assert [_number(v) for v in city_machi[3:7]] == [38000, 14426, 11626, 7360]
    assert city_machi[8] == ""
    assert city_machi[9] == "未入力の事業あり（合計は未確定）"
    assert [_number(v) for v in summary[("市全体", FUKKO)][3:7]] == [3000, 1200, 1200, 900]


def test_libreoffice_2024_city_total_against_100000(seeded, client, lo_profile, tmp_path):
    sheets = recalculate(client.get("/2024/export.xlsx").content, tmp_path, lo_profile)
    fiscal_year = FiscalYear.objects.get(year=2024)
    rollup = selectors.city_rollup(fiscal_year=fiscal_year)
    assert_summary_computes(sheets["集計"], rollup)
    for ledger in selectors.ward_ledgers(fiscal_year=fiscal_year):
        assert_ward_sheet_computes(sheets[ledger.ward.name_ja], ledger)
    city = next(row for row in sheets["集計"] if row[:2] == ["市全体", MACHI])
    assert _number(city[2]) == 100000
    assert _number(city[3]) == 17004  # the twelve featured projects
    assert _number(city[7]) == 100000 - 17004
    assert city[4:7] == ["", "", ""]  # not published yet


def test_libreoffice_recalculates_the_ward_workbook(seeded, client, lo_profile, tmp_path):
    sheets = recalculate(client.get("/2021/kita/export.xlsx").content, tmp_path, lo_profile)
    fiscal_year = FiscalYear.objects.get(year=2021)
    kita = Ward.objects.get(slug="kita")
    assert_ward_sheet_computes(
        sheets["北区"], selectors.ward_ledger(fiscal_year=fiscal_year, ward=kita)
    )
    assert_summary_computes(
        sheets["集計"], selectors.city_rollup(fiscal_year=fiscal_year), ward_ids={kita.pk}
    )


def _tamper_formula(ws):
    """A SUM that looks right but leaves out ⑧ 北区まちづくり懇話会."""
    row = _row_of(ws, TOTAL_MACHI)
    ws.cell(row, 4).value = ws.cell(row, 4).value.replace("D16:D18", "D16:D17")


def _tamper_text(ws):
    """① 9月補正後 stored as the text "3100": it reads the same, but SUM skips it."""
    ws["E5"] = "3100"


@pytest.mark.parametrize("tamper", [_tamper_formula, _tamper_text])
def test_libreoffice_check_fails_on_a_workbook_that_computes_wrong(
    seeded, client, lo_profile, tmp_path, tamper
):
    wb = load_workbook(io.BytesIO(client.get("/2021/kita/export.xlsx").content))
    tamper(wb["北区"])
    buffer = io.BytesIO()
    wb.save(buffer)
    sheets = recalculate(buffer.getvalue(), tmp_path, lo_profile)
    fiscal_year = FiscalYear.objects.get(year=2021)
    kita = Ward.objects.get(slug="kita")
    with pytest.raises(AssertionError):
        assert_ward_sheet_computes(
            sheets["北区"], selectors.ward_ledger(fiscal_year=fiscal_year, ward=kita)
        )
    with pytest.raises(AssertionError):
        assert_summary_computes(
            sheets["集計"], selectors.city_rollup(fiscal_year=fiscal_year), ward_ids={kita.pk}
        )


def test_libreoffice_keeps_formula_like_names_as_text(seeded, client, lo_profile, tmp_path):
    kita = Ward.objects.get(slug="kita")
    fund = FundFactory(code="machizukuri")
    names = ["=1+1", "+1", "-1", "@SUM(1,2)", '=HYPERLINK("http://example.com","x")']
    for position, name in enumerate(names, start=90):
        project = ProjectFactory(
            ward=kita, fiscal_year_id=2021, fund=fund, name=name, summary=name, position=position
        )
        for stage in Stage:
            StageFigureFactory(project=project, stage=stage, amount=1000)
    sheets = recalculate(client.get("/2021/kita/export.xlsx").content, tmp_path, lo_profile)
    shown = {row[1] for row in sheets["北区"]} | {row[2] for row in sheets["北区"]}
    assert set(names) <= shown
    assert "2" not in shown and "3" not in shown


def test_libreoffice_staff_export_with_drafts(office, client, lo_profile, tmp_path):
    StageFigureFactory(project=office.kita_projects[0], stage=Stage.SEPTEMBER, amount=4_321_000)
    client.force_login(office.kita_staff)
    sheets = recalculate(client.get("/staff/2025/export.xlsx").content, tmp_path, lo_profile)
    stages = selectors.staff_stages(office.year)
    assert_ward_sheet_computes(
        sheets["北区"],
        selectors.ward_ledger(fiscal_year=office.year, ward=office.kita, stages=stages),
    )
    assert_summary_computes(
        sheets["集計"],
        selectors.city_rollup(fiscal_year=office.year, stages=stages),
        ward_ids={office.kita.pk},
    )
    total = next(row for row in sheets["北区"] if row[1] == TOTAL_MACHI)
    assert [_number(v) for v in total[3:5]] == [5299, 4321]


# --- File names ---------------------------------------------------------------------------------

FILES = [
    ("/2021/export.xlsx", "令和3年度_区のまちづくり予算.xlsx"),
    ("/2021/kita/export.xlsx", "令和3年度_北区.xlsx"),
    ("/2021/common/export.xlsx", "令和3年度_5区共通.xlsx"),
    ("/export.xlsx?from=2021&to=2024", "年度比較_2021-2024.xlsx"),
]


def _disposition(response):
    value = response["Content-Disposition"]
    star = re.search(r"filename\*=(?i:utf-8)''([^;\s]+)", value)
    plain = re.search(r'(?:^|;)\s*filename="([^"]*)"', value)
    return value, (unquote(star.group(1)) if star else None), (plain.group(1) if plain else None)


@pytest.mark.parametrize("url, name", FILES)
def test_download_names_are_japanese_rfc5987(seeded, client, url, name):
    response = client.get(url)
    assert response.status_code == 200
    value, star, _ = _disposition(response)
    assert value.startswith("attachment;"), value
    assert value.isascii(), value  # header values must be ASCII; the name is %-encoded
    assert star == name, value


@pytest.mark.parametrize("url, name", FILES)
def test_download_names_have_an_ascii_fallback(seeded, client, url, name):
    """Browsers that ignore filename* need filename="…" (ASCII) beside it (RFC 6266)."""
    value, _, plain = _disposition(client.get(url))
    assert plain is not None, f"no ASCII filename= fallback in {value!r}"
    assert plain.isascii() and plain.endswith(".xlsx") and len(plain) > len(".xlsx"), value


def test_staff_download_name(office, client):
    client.force_login(office.kita_staff)
    value, star, _ = _disposition(client.get("/staff/2025/kita/export.xlsx"))
    assert star == "令和7年度_北区_入力中.xlsx", value


# --- Cross-year workbook -------------------------------------------------------------------------


def test_cross_year_workbook(seeded, client):
    from budgets.models import Project

    wb = _get_workbook(client, "/export.xlsx?from=2021&to=2024")
    assert wb.sheetnames == ["年度比較"]
    ws = wb["年度比較"]
    assert ws["A1"].value == "年度比較 2021年度〜2024年度"
    assert [c.value for c in ws[HEADER_ROW]] == [
        "区",
        "事業名",
        "年度",
        "№",
        "経費",
        "まちづくりの方向性",
        "予算額",
        "9月補正後",
        "2月補正後",
        "決算額",
        "key",
    ]
    assert ws.column_dimensions["K"].hidden
    assert ws.freeze_panes == "A4"
    rows = {
        ws.cell(r, 11).value: [ws.cell(r, c).value for c in range(1, 11)] + [r]
        for r in range(HEADER_ROW + 1, ws.max_row + 1)
    }
    assert set(rows) == set(Project.objects.values_list("pk", flat=True))  # 40 projects
    # Each project's figures by year.
    kita6 = Project.objects.get(fiscal_year_id=2021, ward__slug="kita", number="⑥")
    assert rows[kita6.pk][:10] == [
        "北区",
        "「北区の魅力」発信事業！",
        "令和3年度 (2021年度)",
        "⑥",
        MACHI,
        P4,
        1909,
        1909,
        1909,
        1909,
    ]
    # Its 2024 successor comes right after it; 2024 has only its initial budget published.
    later = Project.objects.get(previous=kita6)
    assert later.fiscal_year_id == 2024
    assert rows[later.pk][-1] == rows[kita6.pk][-1] + 1
    assert rows[later.pk][1] == "「北区の魅力！」発信事業"
    assert rows[later.pk][6:10] == [1181, None, None, None]
    dash = Project.objects.get(fiscal_year_id=2021, name="企業資源活用によるまちづくり事業")
    assert rows[dash.pk][6:10] == ["―", None, None, None]
    for r in range(HEADER_ROW + 1, ws.max_row + 1):
        for col in range(7, 11):
            cell = ws.cell(r, col)
            if isinstance(cell.value, int):
                assert cell.number_format == "#,##0"


def test_cross_year_one_year(seeded, client):
    ws = _get_workbook(client, "/export.xlsx?from=2021&to=2021")["年度比較"]
    years = {ws.cell(r, 3).value for r in range(HEADER_ROW + 1, ws.max_row + 1)}
    assert years == {"令和3年度 (2021年度)"}
    assert ws.max_row == HEADER_ROW + 28


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "から"),
        ("?from=2021", "まで"),
        ("?to=2024", "から"),
        ("?from=abc&to=2024", "から"),
        ("?from=2021&to=", "まで"),
        ("?from=2024&to=2021", "開始年度は終了年度以前にしてください。"),
        ("?from=1990&to=2024", "一度に出力できるのは30年度分までです。"),
        ("?from=1900&to=2024", "から"),
    ],
)
def test_cross_year_bad_or_missing_range_is_400_with_a_message(seeded, client, query, message):
    response = client.get("/export.xlsx" + query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in response
    html = response.content.decode()
    assert 'class="error-summary"' in html
    assert message in html
    assert "/export.xlsx?from=2021&amp;to=2024" in html


# --- Drafts: published figures only in public downloads ----------------------------------------


@pytest.fixture
def september_draft(office):
    """北区 entered a September figure; September is open, not published."""
    StageFigureFactory(project=office.kita_projects[0], stage=Stage.SEPTEMBER, amount=4_321_000)
    return office


def _mentions(values, *needles) -> list:
    return [v for v in values if any(n in str(v) for n in needles)]


@pytest.mark.parametrize("login", [None, "kita_staff", "planner"])
def test_public_workbooks_never_show_an_unpublished_figure(september_draft, client, login):
    if login:
        client.force_login(getattr(september_draft, login))
    for url in ("/2025/export.xlsx", "/2025/kita/export.xlsx"):
        wb = _get_workbook(client, url)
        values = _all_values(wb)
        assert not _mentions(values, "4321", "入力中"), url
        ws = wb["北区"]
        assert "入力中" not in ws["A1"].value
        rows = _project_rows(ws)
        assert [ws.cell(rows["北区事業1"], c).value for c in (4, 5, 6, 7)] == [
            3100,
            None,
            None,
            None,
        ]
        assert dict(wb["_kumamachi"].values)["drafts"] == "no"
    for url in ("/2025/data.csv", "/2025/data.json", "/export.xlsx?from=2025&to=2025"):
        response = client.get(url)
        if ".xlsx" in url:
            body = " ".join(str(v) for v in _all_values(_workbook(response)))
        else:
            assert response.status_code == 200
            body = response.getvalue().decode("utf-8-sig")
        assert "4321" not in body, url


@pytest.mark.parametrize("url", ["/staff/2025/export.xlsx", "/staff/2025/kita/export.xlsx"])
def test_staff_export_includes_own_drafts_marked_as_such(september_draft, client, url):
    client.force_login(september_draft.kita_staff)
    wb = _get_workbook(client, url)
    assert wb.sheetnames == ["集計", "北区", "_kumamachi"]
    ws = wb["北区"]
    assert "入力中" in ws["A1"].value
    assert "入力中" in wb["集計"]["A1"].value
    assert "入力中" in ws["A2"].value
    rows = _project_rows(ws)
    assert ws.cell(rows["北区事業1"], 5).value == 4321
    assert ws.cell(rows["北区事業2"], 5).value is None  # not entered yet
    assert dict(wb["_kumamachi"].values)["drafts"] == "yes"


def test_other_wards_staff_export_does_not_include_kita(september_draft, client):
    client.force_login(september_draft.chuo_staff)
    wb = _get_workbook(client, "/staff/2025/export.xlsx")
    assert wb.sheetnames == ["集計", "中央区", "_kumamachi"]
    values = _all_values(wb)
    assert not _mentions(values, "北区", "4321", "kita"), _mentions(values, "北区", "4321")
    # The summary has no city row: it would add up wards the user may not see.
    assert "市全体" not in values
    assert client.get("/staff/2025/kita/export.xlsx").status_code == 403


def test_planner_staff_export_has_every_ward_and_the_city(september_draft, client):
    client.force_login(september_draft.planner)
    wb = _get_workbook(client, "/staff/2025/export.xlsx")
    assert wb.sheetnames == ["集計", "中央区", "北区", "_kumamachi"]
    summary = [wb["集計"].cell(r, 1).value for r in range(4, wb["集計"].max_row + 1)]
    assert summary == ["中央区", "北区", "市全体", "中央区", "北区", "市全体"]


def test_staff_export_needs_a_login(september_draft, client):
    response = client.get("/staff/2025/export.xlsx")
    assert response.status_code == 302
    assert response["Location"].startswith("/staff/login/")


# --- Query counts ---------------------------------------------------------------------------------

DOWNLOADS = [
    ("/2021/export.xlsx", None),
    ("/2021/kita/export.xlsx", None),
    ("/export.xlsx?from=2020&to=2021", None),
    ("/2021/data.csv", None),
    ("/2021/data.json", None),
    ("/staff/2021/export.xlsx", "planner"),
    ("/staff/2021/kita/export.xlsx", "kita"),
]
WARDS = [
    ("kita", "北区", 5),
    ("chuo", "中央区", 1),
    ("higashi", "東区", 2),
    ("nishi", "西区", 3),
    ("minami", "南区", 4),
    ("common", "5区共通", 6),
]
ALL_STAGES = {
    Stage.INITIAL: 3_100_000,
    Stage.SEPTEMBER: 3_000_000,
    Stage.FEBRUARY: 600_000,
    Stage.SETTLEMENT: 100_000,
}


class _City:
    """Two years (2020 published, 2021 with February published and the settlement open)
    of some wards, with projects in two funds under pillars, 2021's linked to 2020's."""

    def __init__(self):
        self.y2020 = FiscalYearFactory(year=2020, published_stage=Stage.SETTLEMENT)
        self.y2021 = FiscalYearFactory(
            year=2021, published_stage=Stage.FEBRUARY, open_stage=Stage.SETTLEMENT
        )
        self.machi = FundFactory(code="machizukuri")
        self.fukko = FundFactory(code="fukko")
        self.wards = {}
        self.count = 0

    def add_ward(self, slug, name, position):
        ward = WardFactory(slug=slug, name_ja=name, position=position)
        if slug == "common":
            ward.kind = Ward.Kind.POOL
            ward.save()
        self.wards[slug] = ward
        for year in (self.y2020, self.y2021):
            WardYearFactory(ward=ward, fiscal_year=year)
            AllocationFactory(ward=ward, fiscal_year=year, fund=self.machi, amount=19_000_000)
            for position in (1, 2):
                VisionPillarFactory(ward=ward, fiscal_year=year, position=position)
        return ward

    def add_projects(self, slug, n):
        ward = self.wards[slug]
        for _ in range(n):
            self.count += 1
            fund = self.fukko if self.count % 4 == 0 else self.machi
            pillar2020, pillar2021 = (
                ward.pillars.filter(fiscal_year=y, position=1 + self.count % 2).first()
                for y in (self.y2020, self.y2021)
            )
            earlier = project_with_figures(
                ALL_STAGES, ward=ward, fiscal_year=self.y2020, fund=fund, pillar=pillar2020
            )
            project_with_figures(
                ALL_STAGES,
                ward=ward,
                fiscal_year=self.y2021,
                fund=fund,
                pillar=pillar2021,
                previous=earlier,
            )


def _queries(client, url) -> int:
    client.get(url)  # warm up anything cached per process
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        response.getvalue()  # a streamed download reads as it is sent
    assert response.status_code == 200, (url, response.status_code)
    return len(ctx.captured_queries)


def _login(client, city, who):
    if who == "planner":
        client.force_login(staff_user("planner", planner=True))
    elif who == "kita":
        client.force_login(staff_user("kita_staff", wards=[city.wards["kita"]]))


@pytest.mark.parametrize("url, who", DOWNLOADS)
def test_queries_do_not_grow_with_projects(client, url, who):
    city = _City()
    city.add_ward("kita", "北区", 5)
    city.add_ward("chuo", "中央区", 1)
    city.add_projects("kita", 3)
    city.add_projects("chuo", 2)
    _login(client, city, who)
    few = _queries(client, url)
    city.add_projects("kita", 25)
    city.add_projects("chuo", 20)
    assert city.count == 50
    assert _queries(client, url) == few


@pytest.mark.parametrize("url, who", DOWNLOADS)
def test_queries_do_not_grow_with_wards(client, url, who):
    city = _City()
    for slug, name, position in WARDS[:2]:
        city.add_ward(slug, name, position)
        city.add_projects(slug, 3)
    _login(client, city, who)
    few = _queries(client, url)
    for slug, name, position in WARDS[2:]:
        city.add_ward(slug, name, position)
        city.add_projects(slug, 3)
    assert len(city.wards) == 6
    assert _queries(client, url) == few


@pytest.mark.parametrize("url", [url for url, who in DOWNLOADS if who is None])
def test_public_downloads_take_at_most_ten_queries(client, url):
    city = _City()
    for slug, name, position in WARDS:
        city.add_ward(slug, name, position)
        city.add_projects(slug, 2)
    assert _queries(client, url) <= 10


def _years(first: int, last: int, ward, fund, per_year: int = 2) -> None:
    """Published years ``first``..``last``, each with ``per_year`` projects carried on from
    the year before."""
    previous = [None] * per_year
    for year in range(first, last + 1):
        fiscal_year = FiscalYearFactory(year=year, published_stage=Stage.SETTLEMENT)
        previous = [
            project_with_figures(
                ALL_STAGES, ward=ward, fiscal_year=fiscal_year, fund=fund, previous=earlier
            )
            for earlier in previous
        ]


def test_cross_year_queries_do_not_grow_with_years(client):
    ward = WardFactory(slug="kita", name_ja="北区", position=5)
    _years(2011, 2020, ward, FundFactory(code="machizukuri"))
    two = _queries(client, "/export.xlsx?from=2019&to=2020")
    assert _queries(client, "/export.xlsx?from=2011&to=2020") == two == 1


def _reference_order(first: int, last: int) -> list[int]:
    """The cross-year rows as the app first sorted them, reading each year on its own
    (newest first, each in printed order), then a stable sort by ward, the root of each
    project's chain of years, and year."""
    projects = list(
        Project.objects.filter(fiscal_year__gte=first, fiscal_year__lte=last).select_related(
            "ward", "pillar"
        )
    )
    projects.sort(
        key=lambda p: (
            -p.fiscal_year_id,
            p.ward.position,
            p.pillar is None,
            p.pillar.position if p.pillar else 0,
            p.position,
            p.id,
        )
    )
    previous = {p.pk: p.previous_id for p in projects}

    def root(pk):
        seen = set()
        while previous.get(pk) and pk not in seen:
            seen.add(pk)
            pk = previous[pk]
        return pk

    projects.sort(key=lambda p: (p.ward.position, root(p.pk), p.fiscal_year_id))
    return [p.pk for p in projects]


def test_cross_year_rows_follow_each_chain_of_years(client):
    """Chains that skip a year, start before the range, branch, move to another ward, or
    start with a later key than other chains: the rows come in the same order as before
    the export read every year in one query."""
    years = {
        y: FiscalYearFactory(year=y, published_stage=Stage.SETTLEMENT) for y in range(2017, 2022)
    }
    fund = FundFactory(code="machizukuri")
    a = WardFactory(slug="kita", name_ja="北区", position=5)
    b = WardFactory(slug="chuo", name_ja="中央区", position=1)
    pillar = VisionPillarFactory(ward=a, fiscal_year=years[2020], position=1)

    def add(ward, year, previous=None, **kwargs):
        return project_with_figures(
            {Stage.INITIAL: 1_000},
            ward=ward,
            fiscal_year=years[year],
            fund=fund,
            previous=previous,
            **kwargs,
        )

    later_root = add(a, 2021)  # a chain of one, with a small key
    p = add(a, 2018)
    add(a, 2020, add(a, 2019, p))
    add(a, 2019, p)  # a second successor in the same year
    q = add(a, 2019)
    add(a, 2021, q)  # skips 2020
    r = add(a, 2018, add(a, 2017))  # starts before the range
    add(a, 2019, r)
    s = add(a, 2019)
    add(a, 2020, s, position=5, pillar=pillar)  # two successors in one year
    add(a, 2020, s, position=2)
    add(a, 2020, s, position=2, pillar=pillar)
    add(b, 2021, add(a, 2020))  # moves to another ward
    add(b, 2020)
    v1 = add(a, 2018)  # a root with a larger key than the chains above
    add(a, 2019, v1)
    assert later_root.pk < v1.pk

    ws = _get_workbook(client, "/export.xlsx?from=2018&to=2021")["年度比較"]
    keys = [ws.cell(r, 11).value for r in range(HEADER_ROW + 1, ws.max_row + 1)]
    assert keys == _reference_order(2018, 2021)
    assert len(keys) == Project.objects.filter(fiscal_year__gte=2018).count()


# --- Which wards a year's workbook has --------------------------------------------------------


def test_year_workbook_leaves_out_wards_with_nothing_that_year(client):
    """A ward with no project and no allocation in the year has no sheet (and no summary
    row) unless it is one of the city's current wards, those of the latest published year.
    A ward asked for by name always has its sheet."""
    y2020 = FiscalYearFactory(year=2020, published_stage=Stage.SETTLEMENT)
    y2021 = FiscalYearFactory(year=2021, published_stage=Stage.INITIAL)
    machi = FundFactory(code="machizukuri")
    kita = WardFactory(slug="kita", name_ja="北区", position=5)
    chuo = WardFactory(slug="chuo", name_ja="中央区", position=1)  # nothing in 2020
    gone = WardFactory(slug="gone", name_ja="旧区", position=8)  # nothing since 2020
    paid = WardFactory(slug="paid", name_ja="配分区", position=9)  # an allocation only, 2020
    AllocationFactory(ward=paid, fiscal_year=y2020, fund=machi, amount=1_000_000)
    for ward, year in ((kita, y2020), (kita, y2021), (chuo, y2021), (gone, y2020)):
        project_with_figures(ALL_STAGES, ward=ward, fiscal_year=year, fund=machi)

    wb = _get_workbook(client, "/2021/export.xlsx")
    assert wb.sheetnames == ["集計", "中央区", "北区", "_kumamachi"]
    summary = wb["集計"]
    names = [summary.cell(r, 1).value for r in range(HEADER_ROW + 1, summary.max_row + 1)]
    assert names == ["中央区", "北区", "市全体"]
    meta = dict(wb["_kumamachi"].values)
    assert {k for k in meta if k.startswith("sheet:")} == {"sheet:中央区", "sheet:北区"}

    wb = _get_workbook(client, "/2020/export.xlsx")
    assert wb.sheetnames == ["集計", "中央区", "北区", "旧区", "配分区", "_kumamachi"]
    assert _project_rows(wb["中央区"]) == {}  # a current ward, blank that year

    assert _get_workbook(client, "/2021/gone/export.xlsx").sheetnames == [
        "集計",
        "旧区",
        "_kumamachi",
    ]


def test_ward_sheet_cells_keep_their_styles(seeded, client):
    """Every cell of the table has its border (blank ones too), headings and totals are
    bold on their band, and the summary's city rows are bold on the band."""
    wb = _get_workbook(client, "/2021/export.xlsx")
    ws = wb["北区"]
    for row in ws.iter_rows(min_row=HEADER_ROW, max_row=ws.max_row, max_col=9):
        for cell in row:
            assert cell.border.left.style == "thin", cell.coordinate
            assert cell.border.bottom.color.rgb.endswith("999999"), cell.coordinate
    header = ws[HEADER_ROW]
    assert all(c.alignment.horizontal == "center" and c.alignment.wrap_text for c in header[:9])
    total = _row_of(ws, TOTAL_MACHI)
    for col in range(1, 10):
        assert ws.cell(total, col).fill.fgColor.rgb.endswith("EEF3F8")
    assert ws.cell(total, 2).font.bold and ws.cell(total, 4).font.bold
    assert ws.cell(_row_of(ws, ALLOCATION), 4).number_format == "#,##0"
    assert not ws.cell(_row_of(ws, ALLOCATION), 4).font.bold
    summary = wb["集計"]
    city = [r for r in range(4, summary.max_row + 1) if summary.cell(r, 1).value == "市全体"]
    for col in range(1, 11):
        cell = summary.cell(city[0], col)
        assert cell.font.bold and cell.fill.fgColor.rgb.endswith("EEF3F8"), cell.coordinate
        assert cell.border.top.style == "thin"
    assert summary.cell(4, 3).number_format == "#,##0"
    assert summary.cell(4, 9).number_format == "0.0%"
    assert summary.cell(4, 10).number_format == "General"
