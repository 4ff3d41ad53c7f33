"""Reading a filled-in entry workbook back (Excelで入力する).

Staff download their ward's workbook (exports.year_workbook with drafts), type the open
stage's column and upload it. This module reads the upload into an ImportResult: the
changes against the stored figures, the problems that block it (each with its sheet and
cell, 北区!E7) and notices (values in other stage columns, which are never read).
Nothing here writes: the changes are carried to the confirm step in a signed token and
saved through services.figures_save_sheet, with all its validations.

The upload is untrusted. Before openpyxl sees it: its size, that it is a zip at all, and
the zip's declared member sizes and compression ratios (zipfile never inflates a member
past its declared size, so checking those bounds what openpyxl can unpack). openpyxl
parses its XML through defusedxml (installed), so entity expansion is refused. Every XML
part is then counted in one streaming pass (cells per row, cells, shared strings), because
openpyxl holds a whole row, and every shared string, in memory at once.
"""

from __future__ import annotations

import io
import logging
import math
import unicodedata
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import IO
from xml.sax import SAXException
from xml.sax.handler import ContentHandler

from defusedxml import DefusedXmlException
from defusedxml import sax as defused_sax
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from budgets import selectors
from budgets.exports import (
    HEADER_ROW,
    KEY_COL,
    META_MARKER,
    META_SHEET,
    NAME_COL,
    NUMBER_COL,
    STAGE_COL,
    STAGE_HEADERS,
    SUMMARY_COL,
)
from budgets.formatting import sen
from budgets.forms import parse_thousand_yen
from budgets.models import Project, StageFigure
from budgets.services import NOT_ENTERED, FigureValue, SheetRow
from wards.models import FiscalYear, Stage, Ward, WardSubmission
from wards.roles import user_is_planner

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# What a multipart body may add around the file (boundaries, headers, the CSRF token).
MULTIPART_OVERHEAD_BYTES = 64 * 1024
MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
# Members smaller than this are harmless whatever their ratio (a tiny XML part can
# compress very well); the total above bounds them all together.
RATIO_CHECK_FROM_BYTES = 64 * 1024
MAX_ZIP_MEMBERS = 1000
MAX_DATA_ROWS = 5000
MAX_META_ROWS = 1000
MAX_FILE_NAME = 100
# The entry sheet has 8 columns and a few thousand rows; these bound what openpyxl keeps.
MAX_CELLS_PER_ROW = 1000
MAX_CELLS = 500_000
MAX_SHARED_STRINGS = 200_000
# Rows below this on a sheet are not read (openpyxl yields every empty row up to a cell).
MAX_ROW_NUMBER = 100_000

TOKEN_SALT = "budgets.imports.confirm"
TOKEN_MAX_AGE = 60 * 60  # seconds between the preview and the confirmation

_NOT_ENTERED_TOKEN = "NOT_ENTERED"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls (Excel 97-2003)
_HEADERS = {
    NUMBER_COL: "№",
    NAME_COL: "事業名",
    SUMMARY_COL: "事業概要",
    **{STAGE_COL[s]: STAGE_HEADERS[s] for s in Stage},
    KEY_COL: "key",
}


class ImportRefused(Exception):
    """The whole upload (or confirmation) is refused; ``message`` says why, in Japanese."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CellNote:
    """A problem or a notice, with the cell it is about (北区!E7) where there is one."""

    message: str
    cell: str = ""
    project: str = ""  # the project's name, when the note is about one project's row

    def __str__(self) -> str:
        text = f"{self.cell}: {self.message}" if self.cell else self.message
        return f"{text}（{self.project}）" if self.project else text


def amount_text(value: FigureValue) -> str:
    """A figure as the preview shows it, in thousand yen: 3,100 / ― / 未入力."""
    if value is NOT_ENTERED:
        return _("未入力")
    if value is None:
        return "―"
    return sen(value)


@dataclass(frozen=True)
class Change:
    """One project's figure at the open stage: stored (``old``) and in the file (``new``)."""

    project_id: int
    name: str
    stage: Stage
    old: FigureValue
    new: FigureValue
    version: int  # the stored figure's version when read; 0 when there is none
    cell: str = ""

    @property
    def old_text(self) -> str:
        return amount_text(self.old)

    @property
    def new_text(self) -> str:
        return amount_text(self.new)


@dataclass
class ImportResult:
    fiscal_year: FiscalYear
    ward: Ward
    stage: Stage
    sheet: str
    generated_at: str = ""
    changes: list[Change] = field(default_factory=list)
    problems: list[CellNote] = field(default_factory=list)
    notices: list[CellNote] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def generated_label(self) -> str:
        """When the file was made, as the preview shows it (2025-09-01 10:30)."""
        try:
            return datetime.fromisoformat(self.generated_at).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return ""


# --- The upload as bytes, and the zip around it ----------------------------------------------


def size_text(size: int) -> str:
    return f"{size / (1024 * 1024):g}MB"


def too_large_message() -> str:
    return _("ファイルが大きすぎます（上限 %(max)s）。") % {"max": size_text(MAX_UPLOAD_BYTES)}


def request_too_large(content_length: object) -> bool:
    """Whether a request's declared body size is over the limit, before reading any of it."""
    try:
        length = int(str(content_length or 0))
    except ValueError:
        return False  # Django reads such a body as empty
    return length > MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


def upload_name(name: str | None) -> str:
    """The uploaded file's name, as the history's reason quotes it."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    return base[:MAX_FILE_NAME] or "upload.xlsx"


def read_upload(file: IO[bytes] | bytes) -> bytes:
    """The upload's bytes, refusing more than MAX_UPLOAD_BYTES without reading them all."""
    if isinstance(file, bytes | bytearray):
        data = bytes(file)
    else:
        size = getattr(file, "size", None)
        if size is not None and size > MAX_UPLOAD_BYTES:
            raise ImportRefused(too_large_message())
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImportRefused(too_large_message())
    if not data:
        raise ImportRefused(_("ファイルが空です。"))
    return data


def _not_xlsx() -> ImportRefused:
    return ImportRefused(
        _(
            "Excelファイル（.xlsx）として読み込めませんでした。入力シートからダウンロードした"
            "ファイルに入力し、Excelの形式（.xlsx）のまま保存してください。"
        )
    )


def check_archive(data: bytes) -> None:
    """Refuse what is not a zip, and zips that would unpack to too much (zip bombs)."""
    if data.startswith(_OLE2_MAGIC):
        raise ImportRefused(
            _(
                "古い形式のExcelファイル（.xls）は読み込めません。"
                "「Excel ブック（.xlsx）」の形式で保存してください。"
            )
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise _not_xlsx() from exc
    too_big = ImportRefused(
        _(
            "ファイルの展開後の大きさが大きすぎるため読み込めません"
            "（上限 %(max)s、圧縮率 %(ratio)d倍まで）。"
        )
        % {"max": size_text(MAX_UNCOMPRESSED_BYTES), "ratio": MAX_COMPRESSION_RATIO}
    )
    if len(members) > MAX_ZIP_MEMBERS:
        raise too_big
    total = 0
    for member in members:
        total += member.file_size
        if total > MAX_UNCOMPRESSED_BYTES:
            raise too_big
        if member.file_size >= RATIO_CHECK_FROM_BYTES and (
            member.compress_size == 0
            or member.file_size / member.compress_size > MAX_COMPRESSION_RATIO
        ):
            raise too_big


class _CellCounter(ContentHandler):
    """Counts the cells of each row, all cells and shared strings of one XML part."""

    def __init__(self, totals: dict[str, int]):
        super().__init__()
        self.totals = totals
        self.in_row = 0

    def startElement(self, name, attrs):
        local = name.rsplit(":", 1)[-1]
        if local == "c":
            self.in_row += 1
            self.totals["cells"] += 1
            if self.in_row > MAX_CELLS_PER_ROW or self.totals["cells"] > MAX_CELLS:
                raise _TooManyCells
        elif local == "row":
            self.in_row = 0
        elif local == "si":
            self.totals["strings"] += 1
            if self.totals["strings"] > MAX_SHARED_STRINGS:
                raise _TooManyCells


class _TooManyCells(SAXException):
    def __init__(self):
        super().__init__("too many cells")


def check_parts(data: bytes) -> None:
    """Refuse entities anywhere, and more cells or shared strings than the limits, reading
    each XML part as a stream (call after check_archive: the sizes are bounded)."""
    too_many = ImportRefused(
        _(
            "セルが多すぎるため読み込めません（1行に%(row)s個、全体で%(cells)s個、"
            "文字列%(strings)s個まで）。"
        )
        % {
            "row": f"{MAX_CELLS_PER_ROW:,}",
            "cells": f"{MAX_CELLS:,}",
            "strings": f"{MAX_SHARED_STRINGS:,}",
        }
    )
    totals = {"cells": 0, "strings": 0}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            try:
                with archive.open(member) as part:
                    defused_sax.parse(part, _CellCounter(totals))
            except _TooManyCells as exc:
                raise too_many from exc
            except DefusedXmlException as exc:
                logger.info("workbook refused: %r", exc)
                raise _not_xlsx() from exc
            except (SAXException, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError):
                continue  # not XML (an image), or damaged: openpyxl refuses it if it needs it


# --- Cells -----------------------------------------------------------------------------------


def cell_amount(value: object) -> FigureValue:
    """A cell of a stage column as a figure: a number is thousand yen, text is read as
    typed on the entry sheet, an empty cell is not entered. Raises ValidationError."""
    if value is None:
        return NOT_ENTERED
    if isinstance(value, bool):
        raise ValidationError(
            _("「%(value)s」は数値ではありません。") % {"value": "TRUE" if value else "FALSE"}
        )
    if isinstance(value, int):
        return parse_thousand_yen(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(_("「%(value)s」は数値ではありません。") % {"value": value})
        # The shortest text that reads back as the same float: 1526.843, not 1526.84299…
        return parse_thousand_yen(format(Decimal(repr(value)), "f"))
    if isinstance(value, str):
        return parse_thousand_yen(value)
    # Dates, times and anything else a cell may hold.
    raise ValidationError(_("「%(value)s」は数値ではありません。") % {"value": value})


def _key(value: object) -> int | None:
    """The project key of the hidden column, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, float) and value.is_integer() and value > 0:
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip()) or None
    return None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _address(sheet: str, col: int, row: int) -> str:
    return f"{sheet}!{get_column_letter(col)}{row}"


# --- The workbook ----------------------------------------------------------------------------


@dataclass
class _Meta:
    values: dict[str, object]
    sheets: dict[str, str]  # sheet name → ward slug


def _load(data: bytes, *, data_only: bool):
    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=data_only)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        logger.info("workbook refused: %r", exc)
        raise _not_xlsx() from exc


def _read_meta(wb) -> _Meta:
    not_ours = ImportRefused(
        _(
            "このシステムから出力したExcelファイルではありません（%(sheet)s シートがありません）。"
            "入力シートの「Excelファイルをダウンロード」から出力したファイルに入力してください。"
        )
        % {"sheet": META_SHEET}
    )
    if META_SHEET not in wb.sheetnames:
        raise not_ours
    ws = wb[META_SHEET]
    ws.reset_dimensions()  # never trust the file's declared size
    values: dict[str, object] = {}
    sheets: dict[str, str] = {}
    for index, row in enumerate(ws.iter_rows(min_col=1, max_col=2, values_only=True)):
        if index >= MAX_META_ROWS:
            raise not_ours
        key, value = (tuple(row) + (None, None))[:2]
        if not isinstance(key, str):
            continue
        if key.startswith("sheet:"):
            sheets[key.removeprefix("sheet:")] = "" if value is None else str(value)
        else:
            values[key] = value
    if values.get("marker") != META_MARKER:
        raise not_ours
    return _Meta(values, sheets)


def _meta_stage(value: object) -> Stage | None:
    try:
        number = int(str(value).strip()) if value not in (None, "") else None
    except ValueError:
        return None
    return Stage(number) if number in Stage.values else None


def _check_meta(meta: _Meta, *, fiscal_year: FiscalYear, ward: Ward) -> tuple[Stage, str]:
    """The open stage the file was made for and its ward sheet's name, or ImportRefused."""
    year = meta.values.get("year")
    if str(year).strip() != str(fiscal_year.year):
        raise ImportRefused(
            _("このファイルは%(file)s年度のものです。%(year)sの取り込みには使えません。")
            % {"file": year, "year": fiscal_year.label}
        )
    if fiscal_year.open_stage is None:
        raise ImportRefused(_("この年度には入力を受け付けている段階がありません。"))
    open_stage = Stage(fiscal_year.open_stage)
    sheet_stage = _meta_stage(meta.values.get("open_stage"))
    if sheet_stage != open_stage:
        if sheet_stage is None:
            message = _(
                "この入力シートは入力受付のない時点で出力されたものです。現在の受付段階は"
                "%(open)sです。入力シートからダウンロードし直してください。"
            ) % {"open": open_stage.label}
        else:
            message = _(
                "この入力シートは%(sheet)sのものですが、現在の受付段階は%(open)sです。"
                "入力シートからダウンロードし直してください。"
            ) % {"sheet": sheet_stage.label, "open": open_stage.label}
        raise ImportRefused(message)
    if meta.values.get("drafts") != "yes":
        raise ImportRefused(
            _(
                "このファイルは公開ページから出力したもので、入力中の金額を含みません。"
                "入力シートの「Excelファイルをダウンロード」から出力したファイルに入力してください。"
            )
        )
    names = [name for name, slug in meta.sheets.items() if slug == ward.slug]
    if not names:
        others = "、".join(meta.sheets) or "-"
        raise ImportRefused(
            _(
                "このファイルには%(ward)sのシートがありません（%(others)sのファイルです）。"
                "%(ward)sの入力シートからダウンロードしたファイルを使ってください。"
            )
            % {"ward": ward.name_ja, "others": others}
        )
    if len(names) > 1:
        raise ImportRefused(
            _("このファイルには%(ward)sのシートが複数あります。") % {"ward": ward.name_ja}
        )
    return open_stage, names[0]


def _sheet_rows(ws, sheet: str) -> list[tuple[int, tuple]]:
    """The rows below the header that hold anything, as (row number, values A..H)."""
    ws.reset_dimensions()  # a file may declare a smaller size than it holds
    rows = []
    for number, values in enumerate(
        ws.iter_rows(min_row=HEADER_ROW + 1, max_col=KEY_COL, values_only=True),
        start=HEADER_ROW + 1,
    ):
        if number > MAX_ROW_NUMBER:
            raise ImportRefused(
                _("シート「%(sheet)s」の%(max)s行目より下は読み込めません。")
                % {"sheet": sheet, "max": f"{MAX_ROW_NUMBER:,}"}
            )
        values = (tuple(values) + (None,) * KEY_COL)[:KEY_COL]
        if all(_blank(v) for v in values):
            continue
        rows.append((number, values))
        if len(rows) > MAX_DATA_ROWS:
            raise ImportRefused(
                _("シート「%(sheet)s」の行が多すぎます（上限 %(max)s行）。")
                % {"sheet": sheet, "max": f"{MAX_DATA_ROWS:,}"}
            )
    return rows


def _header_values(ws) -> tuple:
    for row in ws.iter_rows(
        min_row=HEADER_ROW, max_row=HEADER_ROW, max_col=KEY_COL, values_only=True
    ):
        return (tuple(row) + (None,) * KEY_COL)[:KEY_COL]
    return (None,) * KEY_COL


def _formula_rows(data: bytes, sheet: str, col: int) -> set[int]:
    """Rows whose cell in ``col`` is a formula (data_only hides them behind their cached
    value, or none when the file was never calculated)."""
    wb = _load(data, data_only=False)
    try:
        ws = wb[sheet]
        ws.reset_dimensions()
        found = set()
        for cells in ws.iter_rows(min_row=HEADER_ROW + 1, min_col=col, max_col=col):
            for cell in cells:
                if getattr(cell, "data_type", None) == "f":
                    found.add(cell.row)
        return found
    finally:
        wb.close()


def _workbook_rows(data: bytes, *, fiscal_year: FiscalYear, ward: Ward):
    """Read everything needed from the file: (meta, stage, sheet, header, rows, formulas)."""
    wb = _load(data, data_only=True)
    try:
        meta = _read_meta(wb)
        stage, sheet = _check_meta(meta, fiscal_year=fiscal_year, ward=ward)
        if sheet not in wb.sheetnames:
            raise ImportRefused(
                _("シート「%(sheet)s」が見つかりません。シート名を変更せずに保存してください。")
                % {"sheet": sheet}
            )
        ws = wb[sheet]
        header = _header_values(ws)
        rows = _sheet_rows(ws, sheet)
    finally:
        wb.close()
    formulas = _formula_rows(data, sheet, STAGE_COL[stage])
    return meta, stage, sheet, header, rows, formulas


def _stored(project, stage: Stage) -> FigureValue:
    if not getattr(project, f"entered_{stage}"):
        return NOT_ENTERED
    return getattr(project, f"amount_{stage}")


def _exported_stages(meta: _Meta) -> set[Stage]:
    """The stages the file was written with (the staff's: published and the open one)."""
    published = _meta_stage(meta.values.get("published_stage"))
    opened = _meta_stage(meta.values.get("open_stage"))
    return set(Stage.up_to(max(published or 0, opened or 0) or None))


def read_workbook(file: IO[bytes] | bytes, *, fiscal_year: FiscalYear, ward: Ward) -> ImportResult:
    """Read an uploaded entry workbook of ``ward`` against the stored figures.

    Raises ImportRefused when the file cannot be used at all; problems of single cells are
    collected in the result. Reads the database, never writes it.
    """
    data = read_upload(file)
    check_archive(data)
    check_parts(data)
    try:
        meta, stage, sheet, header, rows, formulas = _workbook_rows(
            data, fiscal_year=fiscal_year, ward=ward
        )
    except ImportRefused:
        raise
    except Exception as exc:  # damaged XML, refused entities (defusedxml), bad zip members
        logger.info("workbook refused while reading: %r", exc)
        raise _not_xlsx() from exc

    for col, label in _HEADERS.items():
        found = header[col - 1]
        if (found.strip() if isinstance(found, str) else found) != label:
            raise ImportRefused(
                _(
                    "シート「%(sheet)s」の見出し（%(row)d行目）が出力したときと違います"
                    "（%(cell)sは「%(label)s」のはずです）。列の挿入・削除・移動をせずに"
                    "入力してください。"
                )
                % {
                    "sheet": sheet,
                    "row": HEADER_ROW,
                    "cell": _address(sheet, col, HEADER_ROW),
                    "label": label,
                }
            )

    result = ImportResult(
        fiscal_year=fiscal_year,
        ward=ward,
        stage=stage,
        sheet=sheet,
        generated_at=str(meta.values.get("generated_at") or ""),
    )
    projects = {
        p.pk: p
        for p in selectors.project_ledger_rows(
            fiscal_year=fiscal_year, ward=ward, stages=list(Stage), with_entry=True
        )
    }
    exported = _exported_stages(meta)
    stage_col = STAGE_COL[stage]
    seen: dict[int, int] = {}  # project pk → row
    for row, values in rows:
        raw_key = values[KEY_COL - 1]
        if _blank(raw_key):
            if not _blank(values[NUMBER_COL - 1]) and not _blank(values[stage_col - 1]):
                result.notices.append(
                    CellNote(
                        _(
                            "キー（非表示のH列）のない行は読み取りません。新しい事業は"
                            "管理画面から登録してください。"
                        ),
                        _address(sheet, NUMBER_COL, row),
                    )
                )
            continue
        key_cell = _address(sheet, KEY_COL, row)
        pk = _key(raw_key)
        project = projects.get(pk) if pk is not None else None
        if project is None:
            result.problems.append(
                CellNote(
                    _(
                        "キー「%(key)s」は%(year)s %(ward)sの事業ではありません"
                        "（非表示のH列は変更しないでください）。"
                    )
                    % {"key": raw_key, "year": fiscal_year.wareki, "ward": ward.name_ja},
                    key_cell,
                )
            )
            continue
        if pk in seen:
            result.problems.append(
                CellNote(
                    _("同じ事業の行が重複しています（%(row)d行目にもあります）。")
                    % {"row": seen[pk]},
                    key_cell,
                    project.name,
                )
            )
            continue
        seen[pk] = row

        cell = _address(sheet, stage_col, row)
        if row in formulas:
            result.problems.append(
                CellNote(
                    _("数式は取り込めません。金額を数値（千円単位）で入力してください。"),
                    cell,
                    project.name,
                )
            )
        else:
            try:
                value = cell_amount(values[stage_col - 1])
            except ValidationError as exc:
                result.problems.append(CellNote(" ".join(exc.messages), cell, project.name))
            else:
                old = _stored(project, stage)
                if value != old:
                    result.changes.append(
                        Change(
                            project_id=project.pk,
                            name=project.name,
                            stage=stage,
                            old=old,
                            new=value,
                            version=getattr(project, f"version_{stage}"),
                            cell=cell,
                        )
                    )

        for other in Stage:
            if other == stage:
                continue
            col = STAGE_COL[other]
            expected = _stored(project, other) if other in exported else NOT_ENTERED
            try:
                found = cell_amount(values[col - 1])
            except ValidationError:
                found = values[col - 1]
            if found != expected:
                result.notices.append(
                    CellNote(
                        _(
                            "%(stage)sの列は取り込みません"
                            "（保存済みの %(stored)s のまま。ファイルの値は無視しました）。"
                        )
                        % {"stage": other.label, "stored": amount_text(expected)},
                        _address(sheet, col, row),
                        project.name,
                    )
                )

    missing = [p.name for pk, p in projects.items() if pk not in seen]
    if missing:
        result.notices.append(
            CellNote(
                _("ファイルに行がない事業は変更しません：%(names)s") % {"names": "、".join(missing)}
            )
        )
    result.notices += _changed_since_export(result)
    return result


def _changed_since_export(result: ImportResult) -> list[CellNote]:
    """Changed rows whose stored figure was saved after the file was made (one query)."""
    try:
        generated = datetime.fromisoformat(result.generated_at)
    except ValueError:
        return []
    if generated.tzinfo is None or not result.changes:
        return []
    changed = {c.project_id: c for c in result.changes}
    later = StageFigure.objects.filter(
        # The file's time is to the second: a figure saved within that second is not later.
        project_id__in=list(changed),
        stage=result.stage,
        updated_at__gte=generated + timedelta(seconds=1),
    ).values_list("project_id", flat=True)
    return [
        CellNote(
            _("ファイルの出力後に保存された金額（%(old)s）を、ファイルの値で上書きします。")
            % {"old": changed[pk].old_text},
            changed[pk].cell,
            changed[pk].name,
        )
        for pk in sorted(later, key=lambda pk: changed[pk].cell)
    ]


# --- Submission state ------------------------------------------------------------------------


def import_closed_reason(*, user, fiscal_year: FiscalYear, ward: Ward) -> str | None:
    """Why this user cannot import into the ward now, or None."""
    if fiscal_year.open_stage is None:
        return _("この年度には入力を受け付けている段階がありません。")
    stage = Stage(fiscal_year.open_stage)
    if (
        not user_is_planner(user)
        and WardSubmission.objects.filter(ward=ward, fiscal_year=fiscal_year, stage=stage).exists()
    ):
        return _("この区の%(stage)sは提出済みのため編集できません。") % {"stage": stage.label}
    return None


# --- The confirmation token ------------------------------------------------------------------


@dataclass(frozen=True)
class SignedImport:
    """What the preview showed, as carried to the confirmation."""

    stage: Stage
    file_name: str
    changes: list[Change]

    @property
    def reason(self) -> str:
        return _("Excel取込：%(name)s") % {"name": self.file_name}

    def sheet_rows(self) -> list[SheetRow]:
        return [
            SheetRow(project_id=c.project_id, value=c.new, reason=self.reason, version=c.version)
            for c in self.changes
        ]


def _encode(value: FigureValue):
    return _NOT_ENTERED_TOKEN if value is NOT_ENTERED else value


def _decode(value) -> FigureValue:
    if value == _NOT_ENTERED_TOKEN:
        return NOT_ENTERED
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(value)


def sign_changes(*, user, result: ImportResult, file_name: str) -> str:
    payload = {
        "user": user.pk,
        "ward": result.ward.pk,
        "year": result.fiscal_year.year,
        "stage": int(result.stage),
        "file": file_name,
        "rows": [
            [c.project_id, _encode(c.new), c.version, _encode(c.old), c.cell]
            for c in result.changes
        ],
    }
    return signing.dumps(payload, salt=TOKEN_SALT, compress=True)


def unsign_changes(token: str, *, user, fiscal_year: FiscalYear, ward: Ward) -> SignedImport:
    """The preview's changes, or ImportRefused for a token that is tampered with, expired,
    or made for another user, ward or year. Project names are read back (one query)."""
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ImportRefused(
            _(
                "確認画面の有効期限（%(minutes)d分）が切れました。何も保存していません。"
                "もう一度ファイルをアップロードしてください。"
            )
            % {"minutes": TOKEN_MAX_AGE // 60}
        ) from exc
    except signing.BadSignature as exc:
        raise ImportRefused(
            _(
                "確認用のデータが正しくありません（改ざんされたか、壊れています）。"
                "何も保存していません。もう一度ファイルをアップロードしてください。"
            )
        ) from exc
    if not isinstance(payload, dict) or (
        payload.get("user"),
        payload.get("ward"),
        payload.get("year"),
    ) != (user.pk, ward.pk, fiscal_year.year):
        raise ImportRefused(
            _(
                "この確認用のデータは別の利用者・区・年度のものです。何も保存していません。"
                "もう一度ファイルをアップロードしてください。"
            )
        )
    try:
        stage = Stage(payload["stage"])
        rows = [
            (int(pid), _decode(new), int(version), _decode(old), str(cell))
            for pid, new, version, old, cell in payload["rows"]
        ]
        file_name = upload_name(str(payload["file"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ImportRefused(_("確認用のデータが正しくありません。何も保存していません。")) from exc
    names = _project_names(fiscal_year=fiscal_year, ward=ward, ids=[r[0] for r in rows])
    changes = [
        Change(
            project_id=pid,
            name=names.get(pid, str(pid)),
            stage=stage,
            old=old,
            new=new,
            version=version,
            cell=cell,
        )
        for pid, new, version, old, cell in rows
    ]
    return SignedImport(stage=stage, file_name=file_name, changes=changes)


def _project_names(*, fiscal_year: FiscalYear, ward: Ward, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        Project.objects.filter(fiscal_year=fiscal_year, ward=ward, pk__in=list(ids)).values_list(
            "pk", "name"
        )
    )
