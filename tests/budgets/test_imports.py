"""Excelで入力する (/staff/<year>/<ward>/import/): a filled-in export uploaded back, its
changes previewed, then confirmed through figures_save_sheet. A refused file answers 400
with a Japanese message and saves nothing; the preview itself never saves."""

import io
import random
import re
import zipfile
from html import unescape

import openpyxl
import pytest
from defusedxml import DefusedXmlException
from django.contrib.messages import get_messages
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from budgets import imports, services
from budgets.exports import KEY_COL, META_SHEET, NAME_COL, STAGE_COL, XLSX_CONTENT_TYPE
from budgets.models import StageFigure
from budgets.services import NOT_ENTERED, SheetRow
from tests.factories import ProjectFactory, StageFigureFactory
from wards.models import FiscalYear, Stage, WardSubmission

pytestmark = pytest.mark.django_db

E = STAGE_COL[Stage.SEPTEMBER]
D = STAGE_COL[Stage.INITIAL]
FILE_NAME = "北区_入力済み.xlsx"


def _url(ward="kita"):
    return reverse("budgets:staff-import", args=[2025, ward])


def _export(client, ward="kita") -> bytes:
    response = client.get(reverse("budgets:staff-ward-export", args=[2025, ward]))
    assert response.status_code == 200
    return response.content


def _open(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data))


def _save(wb) -> bytes:
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _row_of(ws, project) -> int:
    for row in range(1, ws.max_row + 1):
        if ws.cell(row=row, column=KEY_COL).value == project.pk:
            return row
    raise AssertionError(f"no row for {project}")


def _edited(client, edits: dict, ward="kita", sheet="北区") -> bytes:
    """The staff export with {(project, column): value} written in."""
    wb = _open(_export(client, ward))
    ws = wb[sheet]
    for (project, col), value in edits.items():
        # ws.cell(..., value=None) would leave the cell as it was.
        ws.cell(row=_row_of(ws, project), column=col).value = value
    return _save(wb)


def _upload(client, data: bytes, name=FILE_NAME, ward="kita"):
    return client.post(
        _url(ward), {"file": SimpleUploadedFile(name, data, content_type=XLSX_CONTENT_TYPE)}
    )


def _token(response) -> str:
    match = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert match, "no confirm form"
    return unescape(match.group(1))


def _confirm(client, token, ward="kita"):
    return client.post(_url(ward), {"token": token})


def _snapshot():
    """Every figure row with every stored field, and the history's size."""
    figures = sorted(
        StageFigure.objects.values_list("id", "project_id", "stage", "amount", "reason", "version")
    )
    return figures, StageFigure.history.count()


def _figure(project, stage=Stage.SEPTEMBER):
    return StageFigure.objects.filter(project=project, stage=stage).first()


def _html(response) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def september_saved(office):
    """September entered as the initial figures: 3,100 / 617 / 1,582."""
    services.figures_save_sheet(
        user=office.kita_staff,
        fiscal_year=office.year,
        ward=office.kita,
        rows=[
            SheetRow(project_id=p.pk, value=_figure(p, Stage.INITIAL).amount)
            for p in office.kita_projects
        ],
    )
    return office


def test_openpyxl_parses_through_defusedxml():
    assert openpyxl.DEFUSEDXML is True


# --- the page ---------------------------------------------------------------------------------


def test_upload_page_and_the_link_from_the_entry_sheet(kita_client):
    html = _html(kita_client.get(_url()))
    assert 'type="file"' in html and 'enctype="multipart/form-data"' in html
    assert "入力したExcelファイル（.xlsx）" in html
    assert "入力受付中の段階の列だけに" in html  # the help text
    assert reverse("budgets:staff-ward-export", args=[2025, "kita"]) in html
    sheet = _html(kita_client.get(reverse("budgets:staff-sheet", args=[2025, "kita"])))
    assert "Excelで入力する" in sheet
    assert _url() in sheet


def test_other_wards_staff_and_anonymous_users_are_refused(client, office):
    data = _edited(_logged_in(office.kita_staff), {(office.kita_projects[0], E): 3000})
    client.force_login(office.chuo_staff)
    before = _snapshot()
    assert client.get(_url("kita")).status_code == 403
    assert _upload(client, data).status_code == 403
    assert _snapshot() == before
    assert client.get(_url("chuo")).status_code == 200
    anonymous = Client()
    response = anonymous.get(_url())
    assert response.status_code == 302 and "login" in response["Location"]
    response = _upload(anonymous, data)
    assert response.status_code == 302 and "login" in response["Location"]
    assert _snapshot() == before


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_posts_without_a_csrf_token_are_refused(office):
    data = _edited(_logged_in(office.kita_staff), {(office.kita_projects[0], E): 3000})
    client = Client(enforce_csrf_checks=True)
    client.force_login(office.kita_staff)
    assert _upload(client, data).status_code == 403
    assert _confirm(client, "anything").status_code == 403


# --- round trip -------------------------------------------------------------------------------


def test_round_trip_previews_then_saves_with_history(kita_client, september_saved):
    office = september_saved
    a, b, c = office.kita_projects
    data = _edited(kita_client, {(a, E): 3000, (b, E): 1526.843, (c, E): "―"})
    before = _snapshot()
    response = _upload(kita_client, data)
    assert response.status_code == 200
    html = _html(response)
    assert _snapshot() == before  # the preview saves nothing
    for name, cell, old, new in (
        ("北区事業1", f"北区!E{_row_of(_open(data)['北区'], a)}", "3,100", "3,000"),
        ("北区事業2", f"北区!E{_row_of(_open(data)['北区'], b)}", "617", "1,526.843"),
        ("北区事業3", f"北区!E{_row_of(_open(data)['北区'], c)}", "1,582", "―"),
    ):
        assert re.search(
            rf"<th scope=\"row\">{name}</th><td>9月補正後</td><td>{cell}</td>"
            rf"<td class=\"num\">{old}</td><td class=\"num\">{new}</td>",
            html,
        ), name
    assert "変更点（3件）" in html
    assert "確定" in html

    response = _confirm(kita_client, _token(response))
    assert response.status_code == 302
    assert response["Location"] == reverse("budgets:staff-sheet", args=[2025, "kita"])
    assert [_figure(p).amount for p in (a, b, c)] == [3_000_000, 1_526_843, None]
    reason = f"Excel取込：{FILE_NAME}"
    assert {_figure(p).reason for p in (a, b, c)} == {reason}
    for project in (a, b, c):
        record = StageFigure.history.filter(project_id=project.pk).latest("history_date")
        assert record.history_change_reason == reason
        assert record.history_user == office.kita_staff
    # Other stages and the other ward are untouched.
    assert _figure(a, Stage.INITIAL).amount == 3_100_000
    assert not StageFigure.objects.filter(
        project__in=office.chuo_projects, stage=Stage.SEPTEMBER
    ).exists()
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert notes == [f"「{FILE_NAME}」から取り込みました（3件の変更）。"]


def test_empty_cell_clears_back_to_not_entered_and_text_is_read_as_typed(
    kita_client, september_saved
):
    a, b, c = september_saved.kita_projects
    data = _edited(kita_client, {(a, E): None, (b, E): "１，２００", (c, E): "1,582"})
    response = _upload(kita_client, data)
    html = _html(response)
    assert response.status_code == 200, html
    assert '<td class="num">3,100</td><td class="num">未入力</td>' in html
    assert '<td class="num">617</td><td class="num">1,200</td>' in html
    assert "変更点（2件）" in html  # 1,582 typed as text is no change
    assert _confirm(kita_client, _token(response)).status_code == 302
    assert _figure(a) is None
    assert _figure(b).amount == 1_200_000
    deleted = StageFigure.history.filter(project_id=a.pk, history_type="-").get()
    assert deleted.history_change_reason == f"Excel取込：{FILE_NAME}"


def test_first_entry_of_the_stage_shows_not_entered_as_old(kita_client, office):
    a = office.kita_projects[0]
    response = _upload(kita_client, _edited(kita_client, {(a, E): 3100}))
    html = _html(response)
    assert '<td class="num">未入力</td><td class="num">3,100</td>' in html
    assert _confirm(kita_client, _token(response)).status_code == 302
    assert _figure(a).amount == 3_100_000


def test_unchanged_export_has_no_changes_and_saves_nothing(kita_client, september_saved):
    before = _snapshot()
    response = _upload(kita_client, _export(kita_client))
    html = _html(response)
    assert response.status_code == 200
    assert "変更はありません" in html
    assert 'name="token"' not in html
    assert "取り込みません" not in html  # no notices either
    assert _snapshot() == before


def test_renamed_row_still_matches_its_project_by_key(kita_client, september_saved):
    a = september_saved.kita_projects[0]
    data = _edited(kita_client, {(a, NAME_COL): "名前を書き換えた事業", (a, E): 2900})
    response = _upload(kita_client, data)
    html = _html(response)
    assert response.status_code == 200
    assert '<th scope="row">北区事業1</th>' in html  # the stored name, not the file's
    assert "名前を書き換えた事業" not in html
    assert _confirm(kita_client, _token(response)).status_code == 302
    assert _figure(a).amount == 2_900_000


def test_values_in_other_stage_columns_are_ignored_with_a_notice(kita_client, september_saved):
    a, b, _c = september_saved.kita_projects
    data = _edited(kita_client, {(a, D): 9999, (b, STAGE_COL[Stage.FEBRUARY]): 600})
    before = _snapshot()
    response = _upload(kita_client, data)
    html = _html(response)
    assert response.status_code == 200
    row_a, row_b = _row_of(_open(data)["北区"], a), _row_of(_open(data)["北区"], b)
    assert (
        f"北区!D{row_a}: 当初予算の列は取り込みません（保存済みの 3,100 のまま。"
        "ファイルの値は無視しました）。（北区事業1）"
    ) in html
    assert f"北区!F{row_b}: 2月補正後の列は取り込みません（保存済みの 未入力 のまま" in html
    assert "変更はありません" in html
    assert _snapshot() == before


# --- problems in cells: listed with their cell, nothing to confirm ------------------------------


def test_malformed_number_is_a_problem_with_its_cell(kita_client, september_saved):
    a, b, _c = september_saved.kita_projects
    data = _edited(kita_client, {(a, E): "1,2O0", (b, E): 600})
    row = _row_of(_open(data)["北区"], a)
    before = _snapshot()
    response = _upload(kita_client, data)
    html = _html(response)
    assert response.status_code == 400
    assert f"北区!E{row}: 「1,2O0」は数値ではありません" in html
    assert "北区事業1" in html
    assert 'name="token"' not in html  # nothing to confirm
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.2345, "「1.2345」：小数点以下は3桁（1円単位）までです"),
        (-100, "「-100」：マイナスの金額は入力できません"),
        (True, "「TRUE」は数値ではありません"),
        ("abc", "「abc」は数値ではありません"),
        (10**13, "は大きすぎます"),
        ("=1000+200", "数式は取り込めません"),
    ],
)
def test_bad_cells_are_problems(kita_client, september_saved, value, message):
    a = september_saved.kita_projects[0]
    data = _edited(kita_client, {(a, E): value})
    before = _snapshot()
    response = _upload(kita_client, data)
    html = _html(response)
    assert response.status_code == 400, html
    assert f"北区!E{_row_of(_open(data)['北区'], a)}: " in html
    assert message in html
    assert _snapshot() == before


@pytest.mark.parametrize("key", ["chuo", 999_999, "abc"])
def test_unknown_project_key_is_a_problem_with_its_cell(kita_client, office, key):
    a = office.kita_projects[0]
    if key == "chuo":
        key = office.chuo_projects[0].pk
    data = _edited(kita_client, {(a, E): 3000, (a, KEY_COL): key})
    ws = _open(data)["北区"]
    row = next(r for r in range(1, ws.max_row + 1) if ws.cell(row=r, column=KEY_COL).value == key)
    before = _snapshot()
    response = _upload(kita_client, data)
    html = _html(response)
    assert response.status_code == 400
    assert f"北区!H{row}: キー「{key}」は令和7年度 北区の事業ではありません" in html
    assert _snapshot() == before


def test_duplicated_row_is_a_problem(kita_client, office):
    a, b, _c = office.kita_projects
    data = _edited(kita_client, {(b, KEY_COL): a.pk})
    response = _upload(kita_client, data)
    assert response.status_code == 400
    assert "同じ事業の行が重複しています" in _html(response)


# --- refused files: 400, a message, nothing saved -----------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _meta_edit(client, key, value) -> bytes:
    wb = _open(_export(client))
    ws = wb[META_SHEET]
    for row in ws.iter_rows():
        if row[0].value == key:
            row[1].value = value
    return _save(wb)


def _random_bytes(client, office):
    return random.Random(1).randbytes(4096), "Excelファイル（.xlsx）として読み込めませんでした"


def _csv_renamed(client, office):
    return "事業名,金額\n北区事業1,3000\n".encode(), "Excelファイル（.xlsx）として読み込めません"


def _truncated_zip(client, office):
    data = _export(client)
    return data[: len(data) // 2], "Excelファイル（.xlsx）として読み込めませんでした"


def _old_xls(client, office):
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024), "古い形式のExcelファイル（.xls）"


def _too_large(client, office):
    return bytes(imports.MAX_UPLOAD_BYTES + 1024), "ファイルが大きすぎます（上限 5MB）"


def _zip_bomb_ratio(client, office):
    return _zip({"xl/worksheets/sheet1.xml": bytes(4 * 1024 * 1024)}), "展開後の大きさが大きすぎる"


def _zip_bomb_total(client, office):
    # Small members each, too small for the ratio check, 54MB together.
    members = {f"xl/part{n}.xml": bytes(60 * 1024) for n in range(900)}
    return _zip(members), "展開後の大きさが大きすぎる"


LAUGHS = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'


def _with_entities(data: bytes) -> bytes:
    """The workbook with a billion-laughs style DTD in front of xl/workbook.xml."""
    source = zipfile.ZipFile(io.BytesIO(data))
    members = {i.filename: source.read(i.filename) for i in source.infolist()}
    head, sep, rest = members["xl/workbook.xml"].partition(b"?>")
    members["xl/workbook.xml"] = head + sep + LAUGHS + rest if sep else LAUGHS + head
    return _zip(members)


def _entity_bomb(client, office):
    return _with_entities(_export(client)), "Excelファイル（.xlsx）として読み込めませんでした"


def _too_many_rows(client, office):
    wb = _open(_export(client))
    ws = wb["北区"]
    for row in range(20, 20 + imports.MAX_DATA_ROWS):
        ws.cell(row=row, column=NAME_COL, value="行")
    return _save(wb), "シート「北区」の行が多すぎます（上限 5,000行）"


def _no_meta_sheet(client, office):
    wb = _open(_export(client))
    del wb[META_SHEET]
    return _save(wb), "このシステムから出力したExcelファイルではありません"


def _plain_workbook(client, office):
    wb = openpyxl.Workbook()
    wb.active.append(["事業名", "9月補正後"])
    return _save(wb), "このシステムから出力したExcelファイルではありません"


def _another_year(client, office):
    return _meta_edit(client, "year", 2024), "このファイルは2024年度のものです"


def _stage_no_longer_open(client, office):
    data = _meta_edit(client, "open_stage", int(Stage.FEBRUARY))
    return data, "この入力シートは2月補正後のものですが、現在の受付段階は9月補正後です"


def _nothing_open(client, office):
    data = _export(client)
    FiscalYear.objects.filter(pk=office.year.pk).update(open_stage=None)
    return data, "この年度には入力を受け付けている段階がありません"


def _public_export(client, office):
    response = client.get(reverse("budgets:ward-export", args=[2025, "kita"]))
    return response.content, "公開ページから出力したもので、入力中の金額を含みません"


def _another_wards_sheet(client, office):
    return _export(_logged_in(office.chuo_staff), "chuo"), (
        "このファイルには北区のシートがありません（中央区のファイルです）"
    )


def _renamed_sheet(client, office):
    wb = _open(_export(client))
    wb["北区"].title = "きたく"
    return _save(wb), "シート「北区」が見つかりません"


def _inserted_column(client, office):
    wb = _open(_export(client))
    wb["北区"].insert_cols(3)
    return _save(wb), "シート「北区」の見出し（3行目）が出力したときと違います"


@pytest.mark.parametrize(
    "make",
    [
        _random_bytes,
        _csv_renamed,
        _truncated_zip,
        _old_xls,
        _too_large,
        _zip_bomb_ratio,
        _zip_bomb_total,
        _entity_bomb,
        _too_many_rows,
        _no_meta_sheet,
        _plain_workbook,
        _another_year,
        _stage_no_longer_open,
        _nothing_open,
        _public_export,
        _another_wards_sheet,
        _renamed_sheet,
        _inserted_column,
    ],
)
def test_bad_files_are_refused_and_nothing_is_saved(kita_client, september_saved, make):
    data, message = make(kita_client, september_saved)
    before = _snapshot()
    response = _upload(kita_client, data)
    html = _html(response)
    assert response.status_code == 400, html[:2000]
    assert message in html
    assert "何も保存されていません" in html
    assert 'name="token"' not in html
    assert _snapshot() == before


def test_oversized_request_is_refused_before_its_body_is_read(kita_client, monkeypatch):
    def unreadable(*args, **kwargs):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr("django.http.request.HttpRequest._load_post_and_files", unreadable)
    response = _upload(kita_client, bytes(imports.MAX_UPLOAD_BYTES + 100 * 1024))
    assert response.status_code == 400
    assert "ファイルが大きすぎます" in _html(response)


def test_entities_are_refused_by_defusedxml(office, kita_client):
    data = _with_entities(_export(kita_client))
    with pytest.raises(imports.ImportRefused) as excinfo:
        imports.read_workbook(data, fiscal_year=office.year, ward=office.kita)
    chain, exc = [], excinfo.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, DefusedXmlException) for e in chain)


def test_archive_checks_declared_sizes():
    small = _zip({"a.xml": b"<a/>" * 10})
    imports.check_archive(small)  # nothing to refuse
    with pytest.raises(imports.ImportRefused):
        imports.check_archive(_zip({"a.xml": bytes(imports.RATIO_CHECK_FROM_BYTES * 200)}))


def test_cell_amounts():
    assert imports.cell_amount(None) is NOT_ENTERED
    assert imports.cell_amount("") is NOT_ENTERED
    assert imports.cell_amount("―") is None
    assert imports.cell_amount(3100) == 3_100_000
    assert imports.cell_amount(1526.843) == 1_526_843
    assert imports.cell_amount(0.001) == 1
    assert imports.cell_amount(3100.0) == 3_100_000
    assert imports.cell_amount(0) == 0
    for bad in (1.2345, -1, True, float("nan"), "1,2O0"):
        with pytest.raises(Exception) as excinfo:
            imports.cell_amount(bad)
        assert excinfo.type.__name__ == "ValidationError"


# --- confirmation -------------------------------------------------------------------------------


def test_figure_changed_between_preview_and_confirm_is_a_conflict(kita_client, september_saved):
    office = september_saved
    a, b, _c = office.kita_projects
    response = _upload(kita_client, _edited(kita_client, {(a, E): 3000, (b, E): 600}))
    token = _token(response)
    # Someone saves project 1 after the preview.
    services.figures_save_sheet(
        user=office.planner,
        fiscal_year=office.year,
        ward=office.kita,
        rows=[
            SheetRow(project_id=a.pk, value=2_000_000, reason="見直し", version=_figure(a).version)
        ],
    )
    before = _snapshot()
    response = _confirm(kita_client, token)
    html = _html(response)
    assert response.status_code == 409
    assert "北区事業1（9月補正後）：画面を開いた後に他の人が変更しました（現在 2,000千円）" in html
    assert "保存できませんでした。何も保存されていません。" in html
    assert _snapshot() == before
    assert _figure(b).amount == 617_000  # all rows or none


def test_stage_published_between_preview_and_confirm_saves_nothing(kita_client, september_saved):
    office = september_saved
    a = office.kita_projects[0]
    token = _token(_upload(kita_client, _edited(kita_client, {(a, E): 3000})))
    FiscalYear.objects.filter(pk=office.year.pk).update(
        published_stage=Stage.SEPTEMBER, open_stage=Stage.FEBRUARY
    )
    before = _snapshot()
    response = _confirm(kita_client, token)
    assert response.status_code == 409
    assert "この入力シートは9月補正後のものですが、現在の受付段階は2月補正後です" in _html(response)
    assert _snapshot() == before


def test_rejected_save_is_shown_on_the_preview_page(kita_client, september_saved):
    a = september_saved.kita_projects[0]
    response = _upload(kita_client, _edited(kita_client, {(a, E): 17_000}))
    assert response.status_code == 200
    before = _snapshot()
    response = _confirm(kita_client, _token(response))
    html = _html(response)
    assert response.status_code == 400
    assert "北区のまちづくり推進経費の9月補正後の合計 19,199千円が" in html
    assert '<td class="num">3,100</td><td class="num">17,000</td>' in html
    assert _snapshot() == before


def test_tampered_token_is_refused(kita_client, september_saved):
    a = september_saved.kita_projects[0]
    token = _token(_upload(kita_client, _edited(kita_client, {(a, E): 3000})))
    payload = signing.loads(token, salt=imports.TOKEN_SALT)
    payload["rows"][0][1] = 1  # 1 yen instead
    forged = signing.dumps(payload, salt="something else", compress=True)
    before = _snapshot()
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), forged, ""):
        response = _confirm(kita_client, bad)
        assert response.status_code == 400
        assert "確認用のデータが正しくありません（改ざんされたか、壊れています）" in _html(response)
    assert _snapshot() == before


def test_expired_token_is_refused(kita_client, september_saved, monkeypatch):
    a = september_saved.kita_projects[0]
    old = signing.b62_encode(int(signing.time.time()) - imports.TOKEN_MAX_AGE - 60)
    with monkeypatch.context() as patch:
        patch.setattr(signing.TimestampSigner, "timestamp", lambda self: old)
        token = _token(_upload(kita_client, _edited(kita_client, {(a, E): 3000})))
    before = _snapshot()
    response = _confirm(kita_client, token)
    assert response.status_code == 400
    assert "確認画面の有効期限（60分）が切れました" in _html(response)
    assert _snapshot() == before


def test_token_of_another_user_or_ward_is_refused(client, september_saved):
    office = september_saved
    a = office.kita_projects[0]
    kita = _logged_in(office.kita_staff)
    token = _token(_upload(kita, _edited(kita, {(a, E): 3000})))
    before = _snapshot()
    planner = _logged_in(office.planner)
    response = _confirm(planner, token)
    assert response.status_code == 400
    assert "別の利用者・区・年度のもの" in _html(response)
    response = _confirm(planner, token, ward="chuo")
    assert response.status_code == 400
    assert _snapshot() == before


def test_planner_may_import_for_any_ward(september_saved):
    office = september_saved
    planner = _logged_in(office.planner)
    c = office.chuo_projects[0]
    data = _edited(planner, {(c, E): 2500}, ward="chuo", sheet="中央区")
    response = _upload(planner, data, ward="chuo")
    assert response.status_code == 200
    assert _confirm(planner, _token(response), ward="chuo").status_code == 302
    assert _figure(c).amount == 2_500_000


def test_submitted_ward_cannot_import(kita_client, september_saved):
    office = september_saved
    data = _edited(kita_client, {(office.kita_projects[0], E): 3000})
    WardSubmission.objects.create(
        ward=office.kita,
        fiscal_year=office.year,
        stage=Stage.SEPTEMBER,
        submitted_by=office.kita_staff,
    )
    before = _snapshot()
    response = _upload(kita_client, data)
    assert response.status_code == 400
    assert "提出済みのため編集できません" in _html(response)
    assert _snapshot() == before


def test_figure_saved_after_the_export_is_noted(kita_client, september_saved):
    office = september_saved
    a = office.kita_projects[0]
    data = _edited(kita_client, {(a, E): 3000})
    StageFigure.objects.filter(project=a, stage=Stage.SEPTEMBER).update(
        updated_at=_figure(a).updated_at.replace(year=2099)
    )
    html = _html(_upload(kita_client, data))
    assert "ファイルの出力後に保存された金額（3,100）を、ファイルの値で上書きします" in html


# --- queries ----------------------------------------------------------------------------------


def _preview_queries(client, office) -> int:
    projects = list(office.kita.projects.filter(fiscal_year=office.year))
    data = _edited(client, {(p, E): 100 for p in projects})
    with CaptureQueriesContext(connection) as queries:
        response = _upload(client, data)
    assert response.status_code == 200, _html(response)[:2000]
    assert f"変更点（{len(projects)}件）" in _html(response)
    return len(queries)


def test_preview_queries_do_not_grow_with_the_rows(kita_client, office):
    def add_up_to(total):
        for n in range(office.kita.projects.count() + 1, total + 1):
            project = ProjectFactory(
                ward=office.kita,
                fiscal_year=office.year,
                fund=office.machizukuri,
                pillar=office.kita_projects[0].pillar,
                number=str(n),
                position=n,
                name=f"北区事業{n}",
            )
            StageFigureFactory(project=project, stage=Stage.INITIAL, amount=1_000)

    add_up_to(5)
    five = _preview_queries(kita_client, office)
    add_up_to(50)
    fifty = _preview_queries(kita_client, office)
    assert five == fifty
