"""Hostile files on the import upload (issue #7, "Files"; OWASP ASVS 5.0 V5.2.1-V5.2.3,
V1.5.2).

Random bytes, zips cut short, a zip that inflates to 1 GB (honestly declared, and lying
about its size), XML entity bombs and an external entity in every part openpyxl reads,
a 50 MB upload and a workbook with 100,000 rows: each is refused with a Japanese message,
the server's memory while refusing it stays bounded (tracemalloc's peak, a resource
bound, not a timing), and nothing is saved (every table is as it was). Files are made at
test time; none is committed. tests/budgets/test_imports.py has the smaller cases
(csv, .xls, wrong year/ward/stage, renamed sheets, 5 MB + 1 KB).
"""

import io
import random
import re
import struct
import tracemalloc
import zipfile
import zlib
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from budgets import imports, views
from budgets.exports import XLSX_CONTENT_TYPE
from tests.budgets.test_imports import _zip
from tests.budgets.test_input_attacks import snapshot

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
# What refusing a file may take, at most: generous against the 1 GB it could have cost.
MEMORY_BOUND = 64 * MB
NOT_XLSX = "Excelファイル（.xlsx）として読み込めませんでした"
TOO_BIG_UNPACKED = "ファイルの展開後の大きさが大きすぎるため読み込めません（上限 50MB"


@pytest.fixture
def export(kita_client) -> bytes:
    response = kita_client.get(reverse("budgets:staff-ward-export", args=[2025, "kita"]))
    assert response.status_code == 200
    return response.content


def _url() -> str:
    return reverse("budgets:staff-import", args=[2025, "kita"])


def _upload(office, data: bytes, name: str = "北区.xlsx"):
    """POST ``data`` as kita_staff through the view, measuring the memory it takes.

    The request (and its body) is built before tracing starts, so the peak is what the
    server allocates to answer it. Returns (response, text of the page, peak bytes)."""
    request = RequestFactory().post(
        _url(), {"file": SimpleUploadedFile(name, data, content_type=XLSX_CONTENT_TYPE)}
    )
    request.user = office.kita_staff
    request._dont_enforce_csrf_checks = True
    tracemalloc.start()
    try:
        response = views.staff_import(request, year=2025, ward="kita")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, unescape(response.content.decode()), peak


def _assert_refused(office, data: bytes, message: str) -> int:
    """The upload is refused with ``message``, nothing is saved; returns the memory peak."""
    before = snapshot()
    response, body, peak = _upload(office, data)
    assert response.status_code == 400, body[:2000]
    assert message in body, body[:4000]
    assert "何も保存されていません" in body
    assert 'name="token"' not in body
    assert peak < MEMORY_BOUND, f"{peak / MB:.1f} MB"
    assert snapshot() == before
    return peak


# --- Zips built by hand -----------------------------------------------------------------------


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def _kita_sheet(members: dict[str, bytes]) -> str:
    return next(
        n
        for n, c in members.items()
        if n.startswith("xl/worksheets/") and b"<row" in c and "北区事業1".encode() in c
    )


def _raw_zip(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip of (name, raw deflate data, crc, declared size, declared compressed size)."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, data, crc, size, csize in entries:
        offset = out.tell()
        encoded = name.encode()
        out.write(
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, csize, size, len(encoded), 0
            )
        )
        out.write(encoded + data)
        central.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                csize,
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
        )
        central.write(encoded)
    start, directory = out.tell(), central.getvalue()
    out.write(directory)
    out.write(
        struct.pack(
            "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), start, 0
        )
    )
    return out.getvalue()


def _deflated(members: dict[str, bytes]) -> list[tuple[str, bytes, int, int, int]]:
    entries = []
    for name, content in members.items():
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = c.compress(content) + c.flush()
        entries.append((name, data, zlib.crc32(content), len(content), len(data)))
    return entries


def _bomb(head: bytes, size: int) -> tuple[bytes, int]:
    """Raw deflate data inflating to ``head`` and then spaces, ``size`` bytes in all, and
    its CRC: 1 MB of spaces compressed once and repeated (a full flush makes each copy
    independent), so a 1 GB member is made in a moment from about 1 MB."""
    chunk = b" " * MB
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    piece = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    copies, rest = divmod(size - len(head), MB)
    tail = c.compress(b" " * rest) + c.flush()
    crc = zlib.crc32(head)
    for _ in range(copies):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(b" " * rest, crc)
    return first + piece * copies + tail, crc


GB = 1024 * MB


def test_a_zip_inflating_to_1_gb_is_refused_by_its_declared_size(office, export):
    members = _members(export)
    sheet = _kita_sheet(members)
    data, crc = _bomb(b'<?xml version="1.0"?><worksheet>', GB)
    entries = [e for e in _deflated(members) if e[0] != sheet]
    entries.append((sheet, data, crc, GB, len(data)))
    bomb = _raw_zip(entries)
    assert len(bomb) < imports.MAX_UPLOAD_BYTES  # small enough to be uploaded
    _assert_refused(office, bomb, TOO_BIG_UNPACKED)


def test_a_zip_lying_about_its_size_inflates_no_further_than_it_says(office, export):
    """The member declares 4 KB but inflates to 1 GB: zipfile stops at the declared size
    (and then finds the CRC wrong), so memory stays bounded."""
    members = _members(export)
    sheet = _kita_sheet(members)
    data, crc = _bomb(members[sheet][:100], GB)
    entries = [e for e in _deflated(members) if e[0] != sheet]
    entries.append((sheet, data, crc, 4096, len(data)))
    _assert_refused(office, _raw_zip(entries), NOT_XLSX)


def test_a_zip_of_many_small_parts_is_refused_by_their_total(office, export):
    members = _members(export)
    members |= {f"xl/media/part{n}.bin": bytes(60 * 1024) for n in range(imports.MAX_ZIP_MEMBERS)}
    _assert_refused(office, _zip(members), "上限 50MB")


# --- Random bytes and cut zips -----------------------------------------------------------------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.one_of(
        st.binary(min_size=1, max_size=4096),
        st.binary(max_size=4096).map(lambda b: b"PK\x03\x04" + b),
        st.binary(max_size=4096).map(lambda b: b"PK\x05\x06" + b),
    )
)
@example(data=b"\x00")
@example(data=b"PK\x05\x06" + bytes(18))  # an empty zip
def test_random_bytes_are_refused(office, data):
    peak = _assert_refused(office, data, "を取り込めません")
    assert peak < 8 * MB


def test_cut_zips_are_refused(office, export):
    """The export cut at 12 places, from its first byte to inside its central directory."""
    directory = export.rfind(b"PK\x01\x02")
    cuts = sorted(
        {
            1,
            4,
            30,
            100,
            1000,
            len(export) // 4,
            len(export) // 2,
            directory - 1,
            directory + 10,
            len(export) - 100,
            len(export) - 23,
            3 * len(export) // 4,
        }
    )
    for cut in cuts:
        _assert_refused(office, export[:cut], NOT_XLSX)
    # Bytes changed in the middle: the CRC or the XML gives it away.
    damaged = bytearray(export)
    for n in range(len(export) // 3, len(export) // 3 + 50):
        damaged[n] ^= 0xFF
    _assert_refused(office, bytes(damaged), NOT_XLSX)


# --- XML entities ---------------------------------------------------------------------------

LAUGHS = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode()
        for n in range(1, 10)
    )
    + b"]>"
)
XXE = b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
SHARED_STRINGS = (
    b'<?xml version="1.0" encoding="UTF-8"?>%s<sst xmlns="http://schemas.openxmlformats.org/'
    b'spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>'
)


def _with_doctype(xml: bytes, doctype: bytes, use: bytes) -> bytes:
    """``xml`` with ``doctype`` after its declaration and ``use`` inside its first text."""
    head, sep, rest = xml.partition(b"?>")
    if not sep:
        head, rest = b"", xml
    rest = re.sub(rb"<t>([^<]*)</t>", lambda m: b"<t>" + use + b"</t>", rest, count=1)
    return head + sep + doctype + rest


@pytest.mark.parametrize(
    "doctype,use", [(LAUGHS, b"&lol9;"), (XXE, b"&xxe;")], ids=["billion-laughs", "external-entity"]
)
@pytest.mark.parametrize(
    "part", ["sheet", "[Content_Types].xml", "xl/workbook.xml", "sharedStrings"]
)
def test_entities_are_refused_in_every_part(office, export, part, doctype, use):
    members = _members(export)
    if part == "sheet":
        name = _kita_sheet(members)
        members[name] = _with_doctype(members[name], doctype, use)
    elif part == "sharedStrings":
        members["xl/sharedStrings.xml"] = (
            SHARED_STRINGS % doctype
            if use == b"&lol9;"
            else (SHARED_STRINGS % doctype).replace(b"&lol9;", use)
        )
        members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
            b"</Types>",
            b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        )
    else:
        members[part] = _with_doctype(members[part], doctype, use)
    _assert_refused(office, _zip(members), NOT_XLSX)


# --- Size and rows ----------------------------------------------------------------------------


def test_a_50_mb_upload_is_refused_before_it_is_read(office, monkeypatch):
    def unreadable(*args, **kwargs):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr("django.http.request.HttpRequest._load_post_and_files", unreadable)
    data = random.Random(50).randbytes(50 * MB)
    peak = _assert_refused(office, data, "ファイルが大きすぎます（上限 5MB）")
    assert peak < MB  # not a byte of the 50 MB was copied


def test_a_file_just_over_the_limit_in_a_small_request_is_refused(office):
    """Under the request limit (the multipart overhead allowed), over the file limit."""
    data = random.Random(5).randbytes(imports.MAX_UPLOAD_BYTES + 1)
    _assert_refused(office, data, "ファイルが大きすぎます（上限 5MB）")


def _rows_xml(first: int, count: int, rng: random.Random) -> bytes:
    return b"".join(
        b'<row r="%d"><c r="B%d" t="inlineStr"><is><t>%d</t></is></c></row>'
        % (n, n, rng.randrange(10**8))
        for n in range(first, first + count)
    )


def test_a_workbook_with_100000_rows_is_refused_naming_the_limit(office, export):
    members = _members(export)
    last = max(int(r) for r in re.findall(rb'<row r="(\d+)"', members[_kita_sheet(members)]))
    data = _with_rows(export, _rows_xml(last + 1, 100_000, random.Random(100)))
    peak = _assert_refused(office, data, "シート「北区」の行が多すぎます（上限 5,000行）")
    assert peak < 32 * MB


def _with_rows(export: bytes, rows: bytes, extra: dict | None = None) -> bytes:
    """The export with ``rows`` (XML) added at the end of 北区's sheet."""
    members = _members(export)
    sheet = _kita_sheet(members)
    members[sheet] = members[sheet].replace(b"</sheetData>", rows + b"</sheetData>")
    data = _zip(members | (extra or {}))
    assert len(data) < imports.MAX_UPLOAD_BYTES
    return data


TOO_MANY_CELLS = "セルが多すぎるため読み込めません（1行に1,000個、全体で500,000個"


def test_one_row_with_a_million_cells_is_refused(office, export):
    """Only columns A..H are read, but openpyxl parses every cell of a row it reads."""
    rng = random.Random(1)
    cells = b"".join(b"<c><v>%d</v></c>" % rng.randrange(10**6) for _ in range(1_000_000))
    data = _with_rows(export, b'<row r="60000">%s</row>' % cells)
    _assert_refused(office, data, TOO_MANY_CELLS)


def test_too_many_cells_in_all_are_refused(office, export):
    rng = random.Random(2)
    rows = b"".join(
        b'<row r="%d">%s</row>'
        % (n, b"".join(b"<c><v>%d</v></c>" % rng.randrange(10**6) for _ in range(100)))
        for n in range(20, 20 + 6000)
    )
    _assert_refused(office, _with_rows(export, rows), TOO_MANY_CELLS)


def test_too_many_shared_strings_are_refused(office, export):
    rng = random.Random(3)
    strings = b"".join(b"<si><t>%d</t></si>" % rng.randrange(10**9) for _ in range(250_000))
    extra = {
        "xl/sharedStrings.xml": SHARED_STRINGS.replace(b"%s", b"").replace(
            b"<si><t>&lol9;</t></si>", strings
        )
    }
    members = _members(export)
    types = members["[Content_Types].xml"].replace(
        b"</Types>",
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    data = _with_rows(export, b"", extra | {"[Content_Types].xml": types})
    _assert_refused(office, data, TOO_MANY_CELLS)


def test_a_cell_a_million_rows_down_is_refused(office, export):
    """openpyxl yields every empty row above a cell: one cell far down costs a million."""
    data = _with_rows(
        export, b'<row r="1000000"><c r="B1000000" t="inlineStr"><is><t>x</t></is></c></row>'
    )
    _assert_refused(office, data, "シート「北区」の100,000行目より下は読み込めません")
