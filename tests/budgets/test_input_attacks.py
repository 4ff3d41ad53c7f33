"""Hostile input into every form and the import (issue #7, "Input"; OWASP ASVS 5.0 V1.2,
V1.3, V2.2).

Each form is driven through the real views with the test client, as the role that may use
it, with generated text: random Unicode, full-width digits and mixed scripts, huge and
negative numbers, control characters (NUL, U+202E), HTML and template syntax. A bad input
answers a 4xx (or the redirect with a message that the view uses) with a Japanese message
naming what is wrong, never a 500, and leaves every row of every table as it was. Valid
input is accepted, so the tests fail the other way too. Then: names, summaries and reasons
holding markup are shown escaped on every page, staff page, the admin and in JSON.
"""

import html
import io
import json
import re

import openpyxl
import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from budgets import imports, services
from budgets.exports import KEY_COL, STAGE_COL, XLSX_CONTENT_TYPE, clean_text
from budgets.forms import MAX_INPUT_LENGTH, parse_thousand_yen
from budgets.models import MAX_AMOUNT_YEN, StageFigure
from budgets.services import NOT_ENTERED, SheetRow
from tests.factories import ProjectFactory, StageFigureFactory, VisionPillarFactory
from wards.models import Stage, WardSubmission

pytestmark = pytest.mark.django_db

HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(HYPOTHESIS, max_examples=20)

# --- What is stored, before and after ------------------------------------------------------

# Logs of requests, not data: a login attempt is recorded by django-axes, a session by
# each login.
_NOT_DATA = {"axes", "sessions"}


def snapshot() -> dict:
    """Every row of every table of the project's data, history, accounts and admin log."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for config in apps.get_app_configs()
        if config.label not in _NOT_DATA
        for model in config.get_models()
    }


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _body(response) -> str:
    return html.unescape(response.content.decode())


def _message(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# --- Generated input ------------------------------------------------------------------------

NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "1\x00",
    "\u202e0001",
    "\u200b123",
    "１２３",
    "１，２３４．５",
    "٣",
    "²",
    "1e9",
    "0x10",
    "NaN",
    "Infinity",
    "-0",
    "－１",
    "1_000",
    "9" * 50,
    "9" * 5000,
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ request }}{% debug %}",
    "' OR 1=1 --",
    "\ud800",
    "北区𠮷",
]
# Characters Django's forms let through (a browser cannot send a lone surrogate: the
# body is UTF-8, and an undecodable byte becomes U+FFFD).
_any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
_digits = st.text(alphabet="0123456789０１２３４５６７８９,，.．-－―ー ", min_size=1, max_size=25)
hostile_text = st.one_of(st.sampled_from(NASTY_TEXT), _any_text, _digits)
amounts = st.one_of(
    hostile_text,
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=0, max_value=MAX_AMOUNT_YEN // 1000).map(lambda n: f"{n:,}"),
    st.integers(min_value=0, max_value=12_000).map(lambda n: f"{n:,}"),  # within allocation
)


def _sent(text: str) -> str:
    """What a browser sends for ``text``: a lone surrogate cannot be encoded as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


NUL_MESSAGE = "入力できない制御文字（NUL）が含まれています。"


def _parsed(text: str):
    """(value, None) as an amount field reads ``text``, or (None, what its message says)."""
    text = text.strip()  # as CharField does first
    if len(text) > MAX_INPUT_LENGTH:
        return None, f"{MAX_INPUT_LENGTH} 文字以下"
    if "\x00" in text:
        return None, NUL_MESSAGE
    try:
        return parse_thousand_yen(text), None
    except ValidationError as exc:
        return None, _message(exc)


def _reason_problem(reason: str) -> str | None:
    """What a reason field says of ``reason`` (None if it is fine)."""
    if len(reason.strip()) > 1000:
        return "1000 文字以下"
    if "\x00" in reason:
        return NUL_MESSAGE
    return None


def _over_allocation(response) -> bool:
    """Refused as over the ward's allocation (19,000千円): valid input, a business rule."""
    return response.status_code == 400 and "配分額 19,000千円を" in _body(response)


# --- The staff entry sheet ------------------------------------------------------------------


def _sheet_url() -> str:
    return reverse("budgets:staff-sheet", args=[2025, "kita"])


def _sheet_data(client) -> dict:
    """The sheet's form as a browser would post it unchanged."""
    response = client.get(_sheet_url())
    assert response.status_code == 200
    form = response.context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        data[name] = "" if value is None else str(int(value) if name == "stage" else value)
    return data


@HYPOTHESIS
@given(amount=amounts, reason=hostile_text)
@example(amount="1,000", reason="")
@example(amount="１，０００", reason="<script>alert(1)</script>")
@example(amount="\x00", reason="")
@example(amount="1", reason="\x00")
@example(amount="1", reason="あ" * 1001)
def test_entry_sheet_refuses_bad_input_and_saves_good(office, amount, reason):
    client = _client(office.kita_staff)
    project = office.kita_projects[0]
    data = _sheet_data(client)
    amount, reason = _sent(amount), _sent(reason)
    data[f"amount_{project.pk}"] = amount
    data[f"reason_{project.pk}"] = reason
    before = snapshot()
    response = client.post(_sheet_url(), data)
    assert response.status_code in (302, 400), response.status_code
    value, problem = _parsed(amount)
    reason_problem = _reason_problem(reason)
    needs_reason = problem is None and reason_problem is None and not reason.strip()
    if needs_reason and response.status_code == 400:
        # Valid, but a changed amount needs a reason: saved, or refused saying so.
        assert "に変わる理由を入力してください" in _body(response)
        assert snapshot() == before
        return
    if problem is None and reason_problem is None and _over_allocation(response):
        assert snapshot() == before
        return
    if problem is None and reason_problem is None:
        assert response.status_code == 302, _body(response)[:3000]
        figure = StageFigure.objects.filter(project=project, stage=Stage.SEPTEMBER).first()
        if value is NOT_ENTERED:
            assert figure is None  # not entered is no row
        else:
            assert figure.amount == value
        return
    body = _body(response)
    assert response.status_code == 400
    assert "保存できませんでした。何も保存されていません。" in body
    assert project.name in body  # the message names the row
    for expected in (problem, reason_problem):
        if expected is not None:
            assert expected in body, (expected, body[:3000])
    assert snapshot() == before


@HYPOTHESIS
@given(field=st.sampled_from(["stage", "version"]), text=hostile_text)
@example(field="version", text="99999999999999999999")
@example(field="version", text="-1")
@example(field="stage", text="9")
def test_entry_sheet_hidden_fields_are_checked(office, field, text):
    client = _client(office.kita_staff)
    project = office.kita_projects[0]
    data = _sheet_data(client)
    data[f"amount_{project.pk}"] = "1,234"
    key = "stage" if field == "stage" else f"version_{project.pk}"
    assume(_sent(text).strip() != data[key])
    data[key] = _sent(text)
    before = snapshot()
    response = client.post(_sheet_url(), data)
    # Refused (400), or read as another version or stage than the stored one (409).
    assert response.status_code in (400, 409), (text, response.status_code)
    body = _body(response)
    assert "保存できませんでした" in body or "他の" in body or "別の" in body, body[:3000]
    assert snapshot() == before


# --- The planner's correction of a published figure -------------------------------------------


@HYPOTHESIS
@given(amount=amounts, reason=hostile_text, stage=st.one_of(hostile_text, st.just("1")))
@example(amount="2,000", reason="誤記の訂正", stage="1")
@example(amount="2,000", reason="誤記の訂正", stage="²")
@example(amount="2,000", reason="誤記の訂正", stage="9" * 5000)
def test_correction_form_refuses_bad_input_and_saves_good(office, amount, reason, stage):
    client = _client(office.planner)
    project = office.kita_projects[1]
    figure = StageFigure.objects.get(project=project, stage=Stage.INITIAL)
    amount, reason, stage = _sent(amount), _sent(reason), _sent(stage)
    data = {"amount": amount, "reason": reason, "version": figure.version, "stage": stage}
    before = snapshot()
    response = client.post(reverse("budgets:staff-project", args=[project.pk]), data)
    assert response.status_code in (302, 400, 409), response.status_code
    value, problem = _parsed(amount)
    good = (
        problem is None
        and value is not NOT_ENTERED
        and stage.strip() == "1"
        and reason.strip()
        and _reason_problem(reason) is None
        and value != figure.amount
    )
    if good and _over_allocation(response):
        assert snapshot() == before
        return
    if good:
        assert response.status_code == 302, _body(response)[:3000]
        figure.refresh_from_db()
        assert figure.amount == value
        return
    assert response.status_code == 400, (amount, reason, stage)
    body = _body(response)
    assert re.search(r'class="[^"]*error', body), body[:3000]
    if problem is not None:
        assert problem in body
    assert snapshot() == before


@pytest.fixture
def september_entered(office):
    """北区's September figures entered (as the initial ones), so the ward can submit."""
    services.figures_save_sheet(
        user=office.kita_staff,
        fiscal_year=office.year,
        ward=office.kita,
        rows=[
            SheetRow(
                project_id=p.pk,
                value=StageFigure.objects.get(project=p, stage=Stage.INITIAL).amount,
            )
            for p in office.kita_projects
        ],
    )
    return office


# --- Returning a submitted ward, opening a stage ----------------------------------------------


@HYPOTHESIS
@given(reason=hostile_text)
@example(reason="金額の確認をお願いします")
@example(reason="<script>alert(1)</script>")
def test_return_with_reason(september_entered, reason):
    office = september_entered
    if not WardSubmission.objects.filter(ward=office.kita, fiscal_year=office.year).exists():
        services.ward_submit(user=office.kita_staff, fiscal_year=office.year, ward=office.kita)
    client = _client(office.planner)
    reason = _sent(reason)
    before = snapshot()
    response = client.post(
        reverse("budgets:staff-return", args=[2025, "kita"]), {"reason": reason}, follow=True
    )
    assert response.status_code == 200
    body = _body(response)
    returned = not WardSubmission.objects.filter(ward=office.kita, fiscal_year=office.year).exists()
    if reason.strip() and _reason_problem(reason) is None:
        assert returned
        assert "北区を差し戻しました" in body
        return
    assert not returned
    # Blank: "enter a reason"; typed but refused: the field's own message (and the next test).
    assert any(
        message in body
        for message in ("差し戻しの理由を入力してください", "1000 文字以下", "制御文字（NUL）")
    )
    assert snapshot() == before


def test_return_with_too_long_reason_says_it_is_too_long(september_entered):
    office = september_entered
    services.ward_submit(user=office.kita_staff, fiscal_year=office.year, ward=office.kita)
    response = _client(office.planner).post(
        reverse("budgets:staff-return", args=[2025, "kita"]), {"reason": "あ" * 1001}, follow=True
    )
    assert "1000 文字以下" in _body(response)


@HYPOTHESIS
@given(stage=hostile_text)
@example(stage="3")
@example(stage="2")
@example(stage="٢")
@example(stage="99999999999999999999")
def test_open_stage_refuses_what_is_not_the_next_stage(office, stage):
    client = _client(office.planner)
    stage = _sent(stage)
    before = snapshot()
    response = client.post(
        reverse("budgets:staff-open", args=[2025]), {"stage": stage}, follow=True
    )
    assert response.status_code == 200
    body = _body(response)
    # September is open: nothing can be opened before it is published.
    assert snapshot() == before
    assert (
        "段階の指定が正しくありません" in body
        or "入力を受付中です。先に公表してください" in body
        or "次に受付を開始できるのは" in body
    ), body[:3000]


# --- Public query forms ---------------------------------------------------------------------

_query_value = st.one_of(
    hostile_text,
    st.sampled_from(["2025", "kita", "machizukuri", "1", "on", "²", "１", "9" * 30]),
)


@HYPOTHESIS
@given(
    params=st.dictionaries(
        st.sampled_from(["q", "fiscal_year", "ward", "pillar", "fund", "is_new", "page", "sort"]),
        _query_value,
        max_size=5,
    )
)
@example(params={"fiscal_year": "²", "ward": "kita"})
@example(params={"fiscal_year": "2025", "ward": "kita", "pillar": "²"})
@example(params={"fiscal_year": "2025", "ward": "\x00"})
@example(params={"pillar": "99999999999999999999"})
@example(params={"q": "北区"})
def test_search_answers_every_query(office, params):
    params = {k: _sent(v) for k, v in params.items()}
    before = snapshot()
    response = Client().get(reverse("budgets:search"), params)
    assert response.status_code in (200, 400, 404), (params, response.status_code)
    if response.status_code == 400:
        assert re.search(r'class="[^"]*error', _body(response))
    if params == {"q": "北区"}:
        assert "北区事業1" in _body(response)
    assert snapshot() == before


@HYPOTHESIS
@given(a=_query_value, b=_query_value)
@example(a="2025", b="2025")
def test_compare_answers_every_query(office, a, b):
    response = Client().get(reverse("budgets:compare"), {"a": _sent(a), "b": _sent(b)})
    if a == b == "2025":
        assert response.status_code == 200
    else:
        assert response.status_code in (200, 400), (a, b, response.status_code)
    if response.status_code == 400:
        assert "入力内容を確認してください" in _body(response)
        assert re.search(r"<li>年度[12]：.+</li>", _body(response))


@HYPOTHESIS
@given(first=_query_value, last=_query_value)
@example(first="2016", last="2025")
@example(first="1", last="99999999999999999999")
def test_cross_year_range_answers_every_query(office, first, last):
    response = Client().get(
        reverse("budgets:cross-year-export"), {"from": _sent(first), "to": _sent(last)}
    )
    if (first, last) == ("2016", "2025"):
        assert response.status_code == 200
        assert response["Content-Type"] == XLSX_CONTENT_TYPE
    else:
        assert response.status_code in (200, 400), (first, last, response.status_code)
    if response.status_code == 400:
        assert re.search(r'class="[^"]*error', _body(response))


# --- Logging in -----------------------------------------------------------------------------


@FEW
@given(username=hostile_text, password=hostile_text)
@example(username="kita_staff", password="Kuma-machi-2026!")
@example(username="kita_staff\x00", password="Kuma-machi-2026!")
def test_login_refuses_every_wrong_input(office, username, password):
    username, password = _sent(username), _sent(password)
    client = Client()
    before = snapshot()
    response = client.post(
        reverse("budgets:staff-login"), {"username": username, "password": password}
    )
    if (username, password) == ("kita_staff", "Kuma-machi-2026!"):
        assert response.status_code == 302
        return
    # A form error, or django-axes' lockout page after repeated failures.
    assert response.status_code in (200, 429), response.status_code
    if response.status_code == 200:
        assert re.search(r'class="[^"]*error', _body(response))
        assert "_auth_user_id" not in client.session
    assert snapshot() == before


# --- The import's cells ---------------------------------------------------------------------


@pytest.fixture
def kita_export(office) -> bytes:
    response = _client(office.kita_staff).get(
        reverse("budgets:staff-ward-export", args=[2025, "kita"])
    )
    assert response.status_code == 200
    return response.content


_cell_value = st.one_of(
    hostile_text,
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.integers(min_value=0, max_value=10**6),
)


def _with_cell(data: bytes, project, value) -> tuple[bytes, object]:
    """The workbook with ``value`` in the project's September cell, and that cell's value
    as a spreadsheet reads it back (openpyxl writes infinity as an empty cell)."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb["北区"]
    row = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, KEY_COL).value == project.pk)
    ws.cell(row=row, column=STAGE_COL[Stage.SEPTEMBER]).value = value
    buffer = io.BytesIO()
    wb.save(buffer)
    read = openpyxl.load_workbook(io.BytesIO(buffer.getvalue()))["北区"]
    return buffer.getvalue(), read.cell(row=row, column=STAGE_COL[Stage.SEPTEMBER]).value


@HYPOTHESIS
@given(value=_cell_value)
@example(value="3,000")
@example(value="３，０００")
@example(value=-1)
@example(value=10**15)
@example(value=float("inf"))
@example(value="=1+1")
def test_import_cells_are_problems_or_changes_and_nothing_is_saved(office, kita_export, value):
    project = office.kita_projects[0]
    if isinstance(value, str):
        # openpyxl cannot write these control characters into a cell at all.
        value = clean_text(_sent(value))
    try:
        data, stored = _with_cell(kita_export, project, value)
    except (ValueError, TypeError):
        assume(False)  # a value no spreadsheet can hold
    client = _client(office.kita_staff)
    before = snapshot()
    response = client.post(
        reverse("budgets:staff-import", args=[2025, "kita"]),
        {"file": SimpleUploadedFile("北区.xlsx", data, content_type=XLSX_CONTENT_TYPE)},
    )
    assert response.status_code in (200, 400), response.status_code
    body = _body(response)
    assert snapshot() == before  # the preview saves nothing
    cell = f"北区!{chr(64 + STAGE_COL[Stage.SEPTEMBER])}"
    if isinstance(value, str) and value.startswith("=") and len(value) > 1:
        # openpyxl writes it as a formula: refused, not read.
        assert response.status_code == 400
        assert "数式は取り込めません" in body
        return
    try:
        read = imports.cell_amount(stored)
    except ValidationError as exc:
        assert response.status_code == 400, body[:3000]
        assert 'name="token"' not in body
        assert cell in body
        assert _message(exc) in body
        return
    assert response.status_code == 200, body[:3000]
    if read is not NOT_ENTERED:
        assert 'name="token"' in body
        assert imports.amount_text(read) in body


# --- Markup in names, summaries and reasons is shown escaped everywhere -------------------------

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ request.user }}{% debug %}",
    "</script><script>alert(2)</script>",
]
RAW = ["<script>alert(", "<img src=x", "</script><script>"]


@pytest.fixture
def marked_up(office):
    """北区 with a pillar, a project and a reason holding markup; the initial budget is
    published, September's reason saved."""
    payload = "".join(PAYLOADS)
    pillar = VisionPillarFactory(
        ward=office.kita, fiscal_year=office.year, position=2, name="方向" + payload
    )
    project = ProjectFactory(
        ward=office.kita,
        fiscal_year=office.year,
        fund=office.machizukuri,
        pillar=pillar,
        name="事業" + payload,
        summary="概要" + payload,
        position=9,
    )
    StageFigureFactory(project=project, stage=Stage.INITIAL, amount=1000)
    services.figures_save_sheet(
        user=office.kita_staff,
        fiscal_year=office.year,
        ward=office.kita,
        rows=[SheetRow(project_id=project.pk, value=2000, reason="理由" + payload)],
    )
    return project


def _assert_escaped(response, url):
    assert response.status_code == 200, (url, response.status_code)
    text = response.content.decode()
    for raw in RAW:
        assert raw not in text, (url, raw)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, url
    assert "{{ request.user }}" in text or "{{ request.user }}" in html.unescape(text), url


def test_markup_is_escaped_on_public_pages(client, marked_up):
    urls = [
        "/2025/",
        "/2025/kita/",
        f"/2025/kita/{marked_up.pk}/",
        "/search/?q=事業",
        "/search/?q=" + "<script>alert(1)</script>",
    ]
    for url in urls:
        response = client.get(url)
        if url.endswith("<script>alert(1)</script>"):
            text = response.content.decode()
            assert response.status_code == 200
            assert not any(raw in text for raw in RAW), url
            continue
        if url == "/2025/":
            # The city page lists wards, not projects: nothing of the payload to show.
            assert response.status_code == 200
            assert not any(raw in response.content.decode() for raw in RAW)
            continue
        _assert_escaped(response, url)


def test_markup_is_escaped_on_staff_pages_and_the_admin(september_entered, marked_up):
    office = september_entered
    staff = _client(office.kita_staff)
    for url in ["/staff/2025/kita/", f"/staff/projects/{marked_up.pk}/"]:
        _assert_escaped(staff.get(url), url)
    planner = _client(office.planner)
    services.ward_submit(user=office.kita_staff, fiscal_year=office.year, ward=office.kita)
    response = planner.get("/staff/2025/review/")
    assert response.status_code == 200
    assert not any(raw in response.content.decode() for raw in RAW)
    admin = _client(office.admin)
    for url in [
        "/admin/budgets/project/",
        f"/admin/budgets/project/{marked_up.pk}/change/",
        f"/admin/budgets/project/{marked_up.pk}/history/",
        "/admin/wards/visionpillar/",
    ]:
        response = admin.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert not any(raw in text for raw in RAW), url
        assert "&lt;script&gt;" in text, url


def test_markup_is_kept_as_data_in_json(client, marked_up):
    response = client.get("/2025/data.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"  # never sniffed as HTML
    document = json.loads(b"".join(response.streaming_content))
    project = next(p for p in document["projects"] if p["project_id"] == marked_up.pk)
    assert project["name"] == marked_up.name
    assert project["summary"] == marked_up.summary
