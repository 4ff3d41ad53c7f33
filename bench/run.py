"""The benchmark's measurements, its report, and the driver behind ``make bench``.

Three entry points:

- ``python manage.py bench_run --scale small --out bench/results.json`` measures the
  database it is pointed at (``measure``) and records the figures under that database's
  vendor and the scale's name, then prints the report of that vendor.
- ``python manage.py bench_run --report`` prints the report of a results file.
- ``python -m bench.run`` (what ``make bench`` runs) drives everything in subprocesses: a
  fresh SQLite file, migrate, load_seed, measure ``small``, bench_generate, measure the
  generated scale; the same on PostgreSQL (a ``kumamachi_bench`` database it creates and
  drops) when ``BENCH_PG=1`` or ``DATABASE_URL`` is a postgres URL. Environment:
  ``BENCH_SCALE`` (``large``, default, or ``smoke``), ``BENCH_WARDS`` / ``BENCH_YEARS`` /
  ``BENCH_PROJECTS`` (override the scale's size), ``BENCH_SQLITE=0`` (skip SQLite),
  ``BENCH_KEEP=1`` (keep the databases), ``BENCH_BUDGET`` (seconds of timed requests per
  URL), ``BENCH_STEP_TIMEOUT`` (seconds any one step may take, default 900).

What is measured (see BENCHMARKS.md for the figures and the targets):

1. queries per request of each public page type, the staff entry sheet and each download;
2. median and p95 server time of those requests, in process with django.test.Client,
   after a warm-up, as many requests as fit in a time budget (bounded by ``--requests``);
4. time and peak memory (tracemalloc) of the year workbook, the 10-year cross-year
   workbook and the CSV, against openpyxl writing the same cells in write-only mode with
   nothing else (and, for the CSV, the csv module writing the same rows);
5. importing a 500-row entry workbook: read_workbook (parse, validate, preview) and
   figures_save_sheet (apply).

This module imports Django only inside the functions that measure, so ``python -m
bench.run`` runs without settings.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from bench import SCALES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results.json"
SMALL = "small"

# Targets (the issue's): see evaluate().
MAX_QUERIES = 10
MAX_MEDIAN_RATIO = 1.5
# Requests that are downloads, not pages (by their name in page_urls).
DOWNLOADS = ("data.", "export")
MAX_CEILING_RATIO = 2.0
MAX_IMPORT_PREVIEW_S = 1.0

IMPORT_ROWS = 500
# At a larger scale the small scale's own URLs are measured again, named with this suffix.
SEED_SUFFIX = " (seed URL)"
SEARCH_WORD = "交流"


# --- Results file ----------------------------------------------------------------------------


def load_results(path: str | Path) -> dict:
    path = Path(path)
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"runs": {}}


def save_results(path: str | Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data["updated_at"] = _now()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


def _vendor_run(data: dict, vendor: str) -> dict:
    return data.setdefault("runs", {}).setdefault(vendor, {"scales": {}})


def record_generation(path: str | Path, info: dict) -> None:
    """Called by bench_generate: the size and time of the generated data."""
    from django.db import connection

    data = load_results(path)
    run = _vendor_run(data, connection.vendor)
    run["generate"] = {**info, "when": _now()}
    run["database"] = database_info()
    data["machine"] = machine_info()
    save_results(path, data)


def machine_info() -> dict:
    import sqlite3

    info = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(ImportError):
        import django
        import openpyxl

        info["django"] = django.get_version()
        info["openpyxl"] = openpyxl.__version__
    return info


def database_info() -> dict:
    import sqlite3

    from django.db import connection

    info = {"vendor": connection.vendor, "name": str(connection.settings_dict.get("NAME"))}
    if connection.vendor == "sqlite":
        info["version"] = sqlite3.sqlite_version
    else:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version" if connection.vendor == "postgresql" else "")
            info["version"] = cursor.fetchone()[0]
    return info


# --- Timing helpers --------------------------------------------------------------------------


def _p95(samples: list[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def timed_runs(fn: Callable[[], object], *, runs: int, budget: float) -> list[float]:
    """Up to ``runs`` timed calls, fewer (at least one) once ``budget`` seconds are spent."""
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < runs:
        gc.collect()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() - started > budget:
            break
    return samples


def traced_peak(fn: Callable[[], object]) -> int:
    """Peak bytes allocated by Python during one call (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- What to measure -------------------------------------------------------------------------


def pick_targets() -> dict:
    """The representative year, ward, project and ranges of the data in the database.

    - year: published through settlement, with the most projects (ties: the latest);
    - ward: the ward of that year with the most stage figures (ties: the first);
    - project: a project of that ward-year linked to earlier and later years if any;
    - cross-year range: the 10 years ending at the public year with the most projects.
    """
    from django.db.models import Count, Q

    from budgets.models import Project
    from wards.models import FiscalYear, Stage, Ward

    years = FiscalYear.objects.filter(published_stage__isnull=False).annotate(n=Count("projects"))
    year = (
        years.filter(published_stage=Stage.SETTLEMENT).order_by("-n", "-year").first()
        or years.order_by("-n", "-year").first()
    )
    if year is None:
        raise RuntimeError("No published fiscal year: load the seed data first.")
    ward = (
        Ward.objects.annotate(
            n=Count("projects__figures", filter=Q(projects__fiscal_year=year)),
            p=Count("projects", filter=Q(projects__fiscal_year=year)),
        )
        .filter(p__gt=0)
        .order_by("-n", "position")
        .first()
    )
    candidates = list(
        Project.objects.filter(fiscal_year=year, ward=ward)
        .annotate(later=Count("successors"))
        .values("id", "previous_id", "later", "position")
    )
    candidates.sort(key=lambda p: (-(bool(p["previous_id"]) + bool(p["later"])), p["position"]))
    last = years.order_by("-n", "-year").first().year
    return {
        "year": year.year,
        "ward": ward.slug,
        "project": candidates[0]["id"],
        "cross_from": last - 9,
        "cross_to": last,
    }


def page_urls(t: dict) -> list[tuple[str, str]]:
    y, w = t["year"], t["ward"]
    return [
        ("city", f"/{y}/"),
        ("ward", f"/{y}/{w}/"),
        ("project", f"/{y}/{w}/{t['project']}/"),
        ("search", "/search/"),
        ("search (filtered)", "/search/?" + urlencode({"q": SEARCH_WORD, "fiscal_year": y})),
        ("data.csv", f"/{y}/data.csv"),
        ("data.json", f"/{y}/data.json"),
        ("export year", f"/{y}/export.xlsx"),
        ("export ward", f"/{y}/{w}/export.xlsx"),
        (
            "export 10 years",
            "/export.xlsx?" + urlencode({"from": t["cross_from"], "to": t["cross_to"]}),
        ),
    ]


def data_counts() -> dict:
    from budgets.models import Project, StageFigure
    from wards.models import FiscalYear, VisionPillar, Ward

    return {
        "wards": Ward.objects.count(),
        "years": FiscalYear.objects.count(),
        "pillars": VisionPillar.objects.count(),
        "projects": Project.objects.count(),
        "figures": StageFigure.objects.count(),
        "figure_history": StageFigure.history.count(),
    }


_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+\b")


def query_shape(sql: str) -> str:
    """A query with its literals blanked and cut short, to compare queries across scales."""
    return _LITERALS.sub("?", " ".join(sql.split()))[:240]


def measure_request(client, url: str, *, max_requests: int, budget: float) -> dict:
    """Count the queries of a first request (which is also the warm-up, with two more if
    it is fast), then time requests: server time, in process."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get():
        # A streamed download is read whole, as a client would, inside the timing.
        response = client.get(url)
        return response, response.getvalue()

    t0 = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response, body = get()
    first = time.perf_counter() - t0
    result = {"url": url, "status": response.status_code, "bytes": len(body)}
    if response.status_code != 200:
        result["error"] = f"HTTP {response.status_code}"
        return result
    result["queries"] = len(queries.captured_queries)
    result["query_shapes"] = [query_shape(q["sql"]) for q in queries.captured_queries]
    for _ in range(2 if first < 1.0 else 0):
        get()
    samples = timed_runs(get, runs=max_requests, budget=budget)
    if len(samples) < 3 and max_requests >= 3:  # at least 3 samples, even when slow
        samples += timed_runs(get, runs=3 - len(samples), budget=float("inf"))
    result.update(
        n=len(samples),
        median_ms=_ms(statistics.median(samples)),
        p95_ms=_ms(_p95(samples)),
        min_ms=_ms(min(samples)),
    )
    return result


# --- Workbooks and CSV against the library's ceiling -----------------------------------------


def workbook_cells(content: bytes) -> list[tuple[str, list[list]]]:
    """Every sheet's rows of values (formulas as their text), as written by the app."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(content), read_only=True)
    try:
        return [
            (ws.title, [list(row) for row in ws.iter_rows(values_only=True)])
            for ws in wb.worksheets
        ]
    finally:
        wb.close()


def count_cells(sheets: list[tuple[str, list[list]]]) -> int:
    return sum(v is not None for _title, rows in sheets for row in rows for v in row)


def write_only_ceiling(sheets: list[tuple[str, list[list]]]) -> bytes:
    """openpyxl writing the same cells in write-only mode, with nothing else."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def csv_ceiling(rows: list[list]) -> bytes:
    """The csv module writing the same rows, with nothing else."""
    import csv

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _against(app: dict, ceiling: dict) -> dict:
    return {
        "ceiling_time_s": round(ceiling["time_s"], 3),
        "ceiling_peak_mib": ceiling["peak_mib"],
        "time_ratio": round(app["time_s"] / ceiling["time_s"], 2),
        "memory_ratio": round(app["peak_mib"] / ceiling["peak_mib"], 2),
    }


def _cost(fn: Callable[[], object], *, runs: int, budget: float) -> tuple[dict, object]:
    """Median time of up to ``runs`` calls (within ``budget``), and the peak memory of one
    more under tracemalloc; returns that and the first call's result."""
    gc.collect()
    t0 = time.perf_counter()
    output = fn()
    samples = [time.perf_counter() - t0]
    if runs > 1 and samples[0] < budget:
        samples += timed_runs(fn, runs=runs - 1, budget=budget - samples[0])
    cost = {
        "time_s": statistics.median(samples),
        "runs": len(samples),
        "peak_mib": round(traced_peak(fn) / 2**20, 2),
    }
    return cost, output


def measure_exports(t: dict, *, runs: int, budget: float, log: Callable[[str], None]) -> dict:
    import csv

    from budgets import exports
    from wards.models import FiscalYear

    year = FiscalYear.objects.get(year=t["year"])
    jobs = {
        "year workbook": lambda: exports.year_workbook(fiscal_year=year),
        "10-year workbook": lambda: exports.cross_year_workbook(
            first=t["cross_from"], last=t["cross_to"]
        ),
        # As the view streams it: each chunk is sent and dropped, never joined.
        "data.csv": lambda: sum(len(chunk) for chunk in exports.open_data_csv_chunks(year)),
    }
    results = {}
    for name, job in jobs.items():
        log(f"  {name} …")
        app, content = _cost(job, runs=runs, budget=budget)  # warm: the requests ran first
        if name == "data.csv":
            content = exports.open_data_csv(year)  # the rows to count, outside the timing
        entry = {
            "time_s": round(app["time_s"], 3),
            "runs": app["runs"],
            "peak_mib": app["peak_mib"],
            "bytes": len(content),
        }
        if name == "data.csv":
            rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
            entry["cells"] = sum(len(r) for r in rows)
            ceiling, _ = _cost(
                lambda rows=rows: write_only_ceiling([("csv", rows)]), runs=runs, budget=budget
            )
            entry.update(_against(app, ceiling))
            plain, _ = _cost(lambda rows=rows: csv_ceiling(rows), runs=runs, budget=budget)
            entry["vs_csv_module"] = _against(app, plain)
        else:
            sheets = workbook_cells(content)
            entry["cells"] = count_cells(sheets)
            entry["sheets"] = len(sheets)
            ceiling, _ = _cost(
                lambda sheets=sheets: write_only_ceiling(sheets), runs=runs, budget=budget
            )
            entry.update(_against(app, ceiling))
        results[name] = entry
    return results


# --- Staff: the entry sheet and the 500-row import (rolled back) ------------------------------


def _bench_users(wards):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from wards.roles import WARD_STAFF_GROUP

    user_model = get_user_model()
    staff = user_model(username="bench-staff")
    staff.set_unusable_password()
    staff.save()
    group = Group.objects.filter(name=WARD_STAFF_GROUP).first()
    if group is not None:
        staff.groups.add(group)
    for ward in wards:
        ward.members.add(staff)
    planner = user_model(username="bench-planner", is_staff=True, is_superuser=True)
    planner.set_unusable_password()
    planner.save()
    return staff, planner


def _open_year(planner):
    """The latest year with a stage open for entry; if there is none (the seed), the next
    stage of the latest year not published through settlement is opened (rolled back)."""
    from django.db.models import Q

    from budgets import services
    from wards.models import FiscalYear, Stage

    year = FiscalYear.objects.filter(open_stage__isnull=False).order_by("-year").first()
    if year is not None:
        return year, False
    year = (
        FiscalYear.objects.filter(
            Q(published_stage__isnull=True) | Q(published_stage__lt=Stage.SETTLEMENT)
        )
        .order_by("-year")
        .first()
    )
    if year is None:
        return None, False
    stage = Stage.INITIAL if year.published_stage is None else Stage(year.published_stage).next
    return services.stage_open(user=planner, fiscal_year=year, stage=stage), True


def _import_ward(fiscal_year, rows: int):
    """A ward with ``rows`` projects in the open year, their earlier stages entered."""
    from django.db.models import Max, QuerySet

    from budgets.models import Allocation, Fund, Project, StageFigure
    from wards.models import Stage, VisionPillar, Ward

    position = (Ward.objects.aggregate(m=Max("position"))["m"] or 0) + 1
    ward = Ward.objects.create(
        slug="bench-import", name_ja="ベンチ取込区", name_en="Bench import", position=position
    )
    fund = Fund.objects.order_by("position").first()
    QuerySet(model=Allocation).bulk_create(
        [Allocation(fiscal_year=fiscal_year, ward=ward, fund=fund, amount=rows * 2_000_000)]
    )
    pillars = QuerySet(model=VisionPillar).bulk_create(
        [
            VisionPillar(ward=ward, fiscal_year=fiscal_year, position=i + 1, name=f"方向性{i + 1}")
            for i in range(5)
        ]
    )
    projects = QuerySet(model=Project).bulk_create(
        [
            Project(
                ward=ward,
                fiscal_year=fiscal_year,
                pillar=pillars[i * len(pillars) // rows],
                fund=fund,
                number=str(i + 1),
                position=i + 1,
                name=f"取込検証事業{i + 1:03d}",
                summary="取込の性能測定のための事業。",
            )
            for i in range(rows)
        ],
        batch_size=2000,
    )
    open_stage = Stage(fiscal_year.open_stage)
    figures = [
        StageFigure(project=p, stage=stage, amount=(100 + i % 900) * 1000)
        for i, p in enumerate(projects)
        for stage in Stage
        if stage < open_stage
    ]
    QuerySet(model=StageFigure).bulk_create(figures, batch_size=2000)
    return ward


def _filled_workbook(fiscal_year, ward) -> bytes:
    """The ward's staff workbook with the open stage's column typed in on every row."""
    from openpyxl import load_workbook

    from budgets import exports, selectors
    from wards.models import Stage

    content = exports.year_workbook(
        fiscal_year=fiscal_year,
        stages=selectors.staff_stages(fiscal_year),
        wards=[ward],
        drafts=True,
    )
    wb = load_workbook(io.BytesIO(content))
    ws = wb[ward.name_ja[:31]]
    stage = Stage(fiscal_year.open_stage)
    source = exports.STAGE_COL[stage.previous] if stage.previous else None
    for index, row in enumerate(ws.iter_rows(min_row=exports.HEADER_ROW + 1)):
        if not isinstance(row[exports.KEY_COL - 1].value, int):
            continue
        before = row[source - 1].value if source else 500
        before = before if isinstance(before, int | float) else 500
        row[exports.STAGE_COL[stage] - 1].value = before if index % 2 else int(before * 0.9)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def measure_staff(
    *,
    max_requests: int,
    budget: float,
    log: Callable[[str], None],
    seed_sheet: str | None = None,
    import_runs: int = 3,
) -> dict:
    """The entry sheet (GET, logged in as ward staff) and the 500-row import; also the
    small scale's sheet (``seed_sheet``, /staff/<year>/<ward>/) when given. Everything
    written here (users, opened stages, the import ward) is rolled back."""
    from django.db import connection, transaction
    from django.db.models import Count, Q
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from budgets import imports, services
    from wards.models import FiscalYear, Stage, Ward

    out: dict = {}
    with transaction.atomic():
        staff, planner = _bench_users([])
        year, opened = _open_year(planner)
        if year is None:
            transaction.set_rollback(True)
            return {"skipped": "no year can be opened for entry"}
        ward = (
            Ward.objects.annotate(p=Count("projects", filter=Q(projects__fiscal_year=year)))
            .filter(p__gt=0)
            .order_by("-p", "position")
            .first()
        )
        ward.members.add(staff)
        client = Client()
        client.force_login(staff)
        url = f"/staff/{year.year}/{ward.slug}/"
        log(f"  entry sheet {url} ({Stage(year.open_stage).label} open)")
        sheet = measure_request(client, url, max_requests=max_requests, budget=budget)
        sheet["opened_for_bench"] = opened
        out["requests"] = {"entry sheet": sheet}
        if seed_sheet and seed_sheet != url:
            _year, _slug = seed_sheet.strip("/").split("/")[1:3]
            seed_year = FiscalYear.objects.get(year=int(_year))
            if seed_year.open_stage is None:
                stage = Stage(seed_year.published_stage or 0).next or Stage.INITIAL
                services.stage_open(user=planner, fiscal_year=seed_year, stage=stage)
            Ward.objects.get(slug=_slug).members.add(staff)
            staff = type(staff).objects.get(pk=staff.pk)  # drop the cached ward ids
            client.force_login(staff)
            log(f"  entry sheet {seed_sheet} (the small scale's)")
            out["requests"]["entry sheet" + SEED_SUFFIX] = measure_request(
                client, seed_sheet, max_requests=max_requests, budget=budget
            )

        log(f"  import of {IMPORT_ROWS} rows …")
        import_ward = _import_ward(year, IMPORT_ROWS)
        import_ward.members.add(staff)
        staff = type(staff).objects.get(pk=staff.pk)  # drop the cached ward ids
        content = _filled_workbook(year, import_ward)
        read = lambda: imports.read_workbook(content, fiscal_year=year, ward=import_ward)  # noqa: E731
        result = read()
        with CaptureQueriesContext(connection) as queries:
            read()
        preview = timed_runs(read, runs=import_runs + 2, budget=budget)
        rows = imports.SignedImport(
            stage=result.stage, file_name="bench.xlsx", changes=result.changes
        ).sheet_rows()

        def apply() -> int:
            with transaction.atomic():
                changed = services.figures_save_sheet(
                    user=staff, fiscal_year=year, ward=import_ward, rows=rows, stage=result.stage
                )
                transaction.set_rollback(True)
            return changed

        with CaptureQueriesContext(connection) as apply_queries:
            changed = apply()
        applied = timed_runs(apply, runs=import_runs, budget=budget)
        out["import"] = {
            "rows": IMPORT_ROWS,
            "workbook_bytes": len(content),
            "ok": result.ok,
            "changes": len(result.changes),
            "problems": [str(p) for p in result.problems[:5]],
            "preview_s": round(statistics.median(preview), 3),
            "preview_runs": len(preview),
            "preview_queries": len(queries.captured_queries),
            "preview_peak_mib": round(traced_peak(read) / 2**20, 2),
            "apply_s": round(statistics.median(applied), 3),
            "apply_runs": len(applied),
            "apply_queries": len(apply_queries.captured_queries),
            "applied": changed,
        }
        transaction.set_rollback(True)
    return out


# --- The whole measurement -------------------------------------------------------------------


def measure(
    *,
    scale: str,
    out: str | Path | None,
    max_requests: int = 50,
    budget: float = 10.0,
    export_runs: int = 3,
    import_runs: int = 3,
    log: Callable[[str], None] = print,
) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    # Whitenoise's notice that collectstatic has not run: the pages serve no static files.
    warnings.filterwarnings("ignore", message="No directory at")
    if settings.DEBUG:
        log("warning: DEBUG is on (DJANGO_DEBUG=1); the figures include its overhead.")
    started = time.perf_counter()
    targets = pick_targets()
    result = {
        "scale": scale,
        "when": _now(),
        "debug": settings.DEBUG,
        "data": data_counts(),
        "targets": targets,
        "settings": {
            "requests": max_requests,
            "budget_s": budget,
            "export_runs": export_runs,
            "import_runs": import_runs,
        },
        "requests": {},
        # Anything else running on the machine shows here (the figures assume nothing).
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    log(f"Measuring scale {scale!r} on {connection.vendor}: {result['data']}")
    urls = page_urls(targets)
    small: dict = {}
    if scale != SMALL and out:
        # The small scale's URLs again: the same pages, only the database has grown.
        small = load_results(out).get("runs", {}).get(connection.vendor, {})
        small = small.get("scales", {}).get(SMALL, {}).get("requests", {})
        urls += [
            (name + SEED_SUFFIX, r["url"])
            for name, r in small.items()
            # Not the 10-year workbook: at a larger scale its range holds generated years.
            if name not in ("entry sheet", "export 10 years")
            and r.get("url") != dict(urls).get(name)
        ]
    client = Client()
    for name, url in urls:
        log(f"  {name} {url}")
        result["requests"][name] = measure_request(
            client, url, max_requests=max_requests, budget=budget
        )
    log("Workbooks and CSV against the write-only ceiling:")
    result["exports"] = measure_exports(targets, runs=export_runs, budget=budget, log=log)
    log("Staff:")
    staff = measure_staff(
        max_requests=max_requests,
        budget=budget,
        log=log,
        seed_sheet=small.get("entry sheet", {}).get("url"),
        import_runs=import_runs,
    )
    result["requests"].update(staff.pop("requests", {}))
    result.update(staff)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if out:
        data = load_results(out)
        run = _vendor_run(data, connection.vendor)
        run["database"] = database_info()
        run["scales"][scale] = result
        data["machine"] = machine_info()
        save_results(out, data)
    return result


# --- Report ----------------------------------------------------------------------------------


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


def evaluate(run: dict) -> list[dict]:
    """Each target against each scale measured beside ``small``."""
    scales = run.get("scales", {})
    small = scales.get(SMALL)
    checks = []
    for name, big in scales.items():
        if name == SMALL:
            continue
        for page, r in big.get("requests", {}).items():
            s = (small or {}).get("requests", {}).get(page.removesuffix(SEED_SUFFIX), {})
            q_small, q_big = s.get("queries"), r.get("queries")
            checks.append(
                {
                    "scale": name,
                    "what": page,
                    "target": f"queries same as small and ≤ {MAX_QUERIES}",
                    "value": f"{_fmt(q_small)} → {_fmt(q_big)}",
                    "ok": None
                    if q_big is None or q_small is None
                    else (q_small == q_big and q_big <= MAX_QUERIES),
                }
            )
            ratio = (
                r["median_ms"] / s["median_ms"]
                if r.get("median_ms") and s.get("median_ms")
                else None
            )
            # The target is a page's own time at both scales: the same address, a database
            # that grew. A generated ward's page is another page (more projects than the
            # seed's), and a download grows with what it holds (its target is the ceiling):
            # their ratios are shown, not judged.
            judged = not page.startswith(DOWNLOADS) and r.get("url") == s.get("url")
            checks.append(
                {
                    "scale": name,
                    "what": page,
                    "target": f"median ≤ {MAX_MEDIAN_RATIO} × small"
                    + ("" if judged else " (shown only: another page or a download)"),
                    "value": f"{_fmt(s.get('median_ms'))} → {_fmt(r.get('median_ms'))} ms"
                    + (f" (× {ratio:.2f})" if ratio else ""),
                    "ok": None if ratio is None or not judged else ratio <= MAX_MEDIAN_RATIO,
                }
            )
        for what, e in big.get("exports", {}).items():
            checks.append(
                {
                    "scale": name,
                    "what": what,
                    "target": f"time ≤ {MAX_CEILING_RATIO} × write-only ceiling",
                    "value": f"× {e['time_ratio']:.2f} ({e['time_s']:.2f} s vs "
                    f"{e['ceiling_time_s']:.2f} s)",
                    "ok": e["time_ratio"] <= MAX_CEILING_RATIO,
                }
            )
            checks.append(
                {
                    "scale": name,
                    "what": what,
                    "target": f"peak memory ≤ {MAX_CEILING_RATIO} × write-only ceiling",
                    "value": f"× {e['memory_ratio']:.2f} ({e['peak_mib']:.1f} vs "
                    f"{e['ceiling_peak_mib']:.1f} MiB)",
                    "ok": e["memory_ratio"] <= MAX_CEILING_RATIO,
                }
            )
        imp = big.get("import")
        if imp:
            checks.append(
                {
                    "scale": name,
                    "what": f"import preview ({imp['rows']} rows)",
                    "target": f"< {MAX_IMPORT_PREVIEW_S:g} s",
                    "value": f"{imp['preview_s']:.3f} s",
                    "ok": imp["preview_s"] < MAX_IMPORT_PREVIEW_S and imp["ok"],
                }
            )
    return checks


def query_differences(run: dict) -> list[str]:
    """For each request whose query count differs from small: the extra or missing queries."""
    from collections import Counter

    scales = run.get("scales", {})
    small = scales.get(SMALL, {}).get("requests", {})
    lines = []
    for name, big in scales.items():
        if name == SMALL:
            continue
        for page, r in big.get("requests", {}).items():
            s = small.get(page.removesuffix(SEED_SUFFIX))
            if not s or "query_shapes" not in s or "query_shapes" not in r:
                continue
            if s["queries"] == r["queries"]:
                continue
            more = Counter(r["query_shapes"]) - Counter(s["query_shapes"])
            fewer = Counter(s["query_shapes"]) - Counter(r["query_shapes"])
            lines.append(f"- {name}, {page}: {s['queries']} → {r['queries']}")
            lines += [f"  - +{n} `{shape[:160]}`" for shape, n in more.items()]
            lines += [f"  - −{n} `{shape[:160]}`" for shape, n in fewer.items()]
    return lines


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def report(data: dict, vendors: list[str] | None = None) -> str:
    lines: list[str] = []
    machine = data.get("machine", {})
    if machine:
        lines.append(
            f"Machine: {machine.get('nproc')} CPUs ({machine.get('cpu', '?')}), "
            f"{machine.get('memory_gib', '?')} GiB, Python {machine.get('python')}, "
            f"Django {machine.get('django')}, openpyxl {machine.get('openpyxl')}, "
            f"SQLite {machine.get('sqlite')}"
        )
    for vendor, run in data.get("runs", {}).items():
        if vendors and vendor not in vendors:
            continue
        db = run.get("database", {})
        lines += ["", f"## {vendor} {db.get('version', '')}".rstrip()]
        if run.get("error"):
            lines.append(f"**The run failed:** {run['error']}")
        gen = run.get("generate")
        if gen:
            lines.append(
                f"Generated {gen['wards']} wards × {gen['years']} years × {gen['projects']} "
                f"projects per ward-year: {gen['written']['projects']:,} projects and "
                f"{gen['written']['figures']:,} figures in {gen['seconds']:.1f} s "
                "(bulk inserts, no history rows)"
            )
        scales = run.get("scales", {})
        names = list(scales)
        for name in names:
            d = scales[name]["data"]
            lines.append(
                f"- {name}: {d['wards']:,} wards, {d['years']} years, {d['projects']:,} projects,"
                f" {d['figures']:,} figures; year {scales[name]['targets']['year']}, ward "
                f"{scales[name]['targets']['ward']}, 10 years "
                f"{scales[name]['targets']['cross_from']}–{scales[name]['targets']['cross_to']}"
                f" (measured in {scales[name].get('seconds', 0):.0f} s, load average "
                f"{scales[name].get('loadavg_start', ['?'])[0]} → "
                f"{scales[name].get('loadavg_end', ['?'])[0]}"
                + (", DEBUG on" if scales[name].get("debug") else "")
                + ")"
            )
        pages: list[str] = []
        for name in names:
            for page in scales[name].get("requests", {}):
                base = page.removesuffix(SEED_SUFFIX)
                for p in (base, base + SEED_SUFFIX):
                    if p not in pages and any(p in scales[n].get("requests", {}) for n in names):
                        pages.append(p)
        header = ["request"]
        for name in names:
            header += [f"queries {name}", f"median ms {name}", f"p95 ms {name}", f"n {name}"]
        rows = []
        for page in pages:
            row = [page]
            for name in names:
                requests = scales[name].get("requests", {})
                r = requests.get(page) or (
                    requests.get(page.removesuffix(SEED_SUFFIX), {}) if name == SMALL else {}
                )
                if r.get("error"):
                    row += [r["error"], "", "", ""]
                    continue
                row += [
                    _fmt(r.get("queries")),
                    _fmt(r.get("median_ms")),
                    _fmt(r.get("p95_ms")),
                    _fmt(r.get("n")),
                ]
            rows.append(row)
        lines += ["", "### Requests (server time, in process)", ""] + _table(header, rows)
        rows = []
        for name in names:
            for what, e in scales[name].get("exports", {}).items():
                rows.append(
                    [
                        name,
                        what,
                        _fmt(e.get("cells")),
                        f"{e['time_s']:.3f}",
                        f"{e['ceiling_time_s']:.3f}",
                        f"× {e['time_ratio']:.2f}",
                        f"{e['peak_mib']:.1f}",
                        f"{e['ceiling_peak_mib']:.1f}",
                        f"× {e['memory_ratio']:.2f}",
                    ]
                )
        if rows:
            header = [
                "scale",
                "download",
                "cells",
                "time s",
                "ceiling s",
                "time ratio",
                "peak MiB",
                "ceiling MiB",
                "memory ratio",
            ]
            lines += ["", "### Workbooks and CSV vs the write-only ceiling", ""]
            lines += _table(header, rows)
            csv_rows = []
            for name in names:
                e = scales[name].get("exports", {}).get("data.csv", {})
                x = e.get("vs_csv_module")
                if x:
                    csv_rows.append(
                        [
                            name,
                            f"{x['ceiling_time_s']:.3f}",
                            f"× {x['time_ratio']:.2f}",
                            f"{x['ceiling_peak_mib']:.1f}",
                            f"× {x['memory_ratio']:.2f}",
                        ]
                    )
            if csv_rows:
                lines += ["", "The CSV against the csv module writing the same rows:", ""]
                lines += _table(
                    ["scale", "ceiling s", "time ratio", "ceiling MiB", "memory ratio"], csv_rows
                )
        rows = []
        for name in names:
            imp = scales[name].get("import")
            if imp:
                rows.append(
                    [
                        name,
                        imp["rows"],
                        f"{imp['preview_s']:.3f}",
                        imp["preview_queries"],
                        f"{imp['preview_peak_mib']:.1f}",
                        f"{imp['apply_s']:.3f}",
                        imp["apply_queries"],
                        "yes" if imp["ok"] and imp["changes"] == imp["rows"] else "NO",
                    ]
                )
        if rows:
            header = [
                "scale",
                "rows",
                "preview s",
                "preview queries",
                "preview peak MiB",
                "apply s",
                "apply queries",
                "all rows read",
            ]
            lines += ["", "### Import of a filled-in entry workbook", ""] + _table(header, rows)
        diffs = query_differences(run)
        if diffs:
            lines += ["", "### Queries that differ from small (count × query shape)", ""]
            lines += diffs
        checks = evaluate(run)
        if checks:
            lines += ["", "### Targets", ""]
            lines += _table(
                ["scale", "what", "target", "small → scale", "result"],
                [[c["scale"], c["what"], c["target"], c["value"], _mark(c["ok"])] for c in checks],
            )
            judged = [c for c in checks if c["ok"] is not None]
            met = sum(1 for c in judged if c["ok"])
            lines.append(
                f"\n{met} of {len(judged)} targets met ({len(checks) - len(judged)} shown only)."
            )
        from bench.load import report_lines  # no Django at import

        lines += report_lines(run)
    return "\n".join(lines)


# --- The driver behind `make bench` ----------------------------------------------------------


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "yes", "true", "on")


def _step(args: list[str], env: dict, timeout: float, *, module: str | None = None) -> None:
    """``manage.py args``, or ``python -m module args``, killed after ``timeout`` s."""
    print(f"$ {module and '-m ' + module or 'manage.py'} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *(["-m", module] if module else [str(ROOT / "manage.py")]), *args],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=timeout,
    )
    print(f"  ({time.perf_counter() - started:.1f} s)", flush=True)


def _postgres_urls(base: str, name: str) -> tuple[str, str]:
    """(maintenance URL, bench URL) on the server of ``base``: never the base database."""
    parts = urlsplit(base)
    return (
        urlunsplit(parts._replace(path="/postgres", scheme="postgresql")),
        urlunsplit(parts._replace(path=f"/{name}")),
    )


def _pg_database(maintenance_url: str, name: str, *, create: bool) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the whole benchmark (make bench).")
    parser.add_argument("--scale", default=os.environ.get("BENCH_SCALE", "large"))
    parser.add_argument("--out", default=os.environ.get("BENCH_OUT", str(DEFAULT_OUT)))
    args = parser.parse_args(argv)
    if args.scale not in SCALES:
        parser.error(f"BENCH_SCALE must be one of {', '.join(SCALES)}")
    size = dict(SCALES[args.scale])
    for key in size:
        if os.environ.get(f"BENCH_{key.upper()}"):
            size[key] = int(os.environ[f"BENCH_{key.upper()}"])
    timeout = float(os.environ.get("BENCH_STEP_TIMEOUT", "900"))
    keep = _env_flag("BENCH_KEEP")
    # In process, a page's own cost is measured: the page cache is off (the load step
    # measures it cold and warm).
    base_env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_PAGE_CACHE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    run_args = ["--out", args.out]
    if os.environ.get("BENCH_BUDGET"):
        run_args += ["--budget", os.environ["BENCH_BUDGET"]]
    if args.scale == "smoke":
        run_args += ["--requests", "3", "--export-runs", "1", "--import-runs", "1"]

    databases: list[tuple[str, str]] = []
    if os.environ.get("BENCH_SQLITE", "1") != "0":
        path = os.environ.get("BENCH_SQLITE_PATH", "/tmp/kumamachi-bench.sqlite3")
        databases.append(("sqlite", path))
    url = os.environ.get("DATABASE_URL", "")
    if _env_flag("BENCH_PG") or url.startswith(("postgres://", "postgresql://")):
        base = url if url.startswith("postgres") else "postgres://postgres@127.0.0.1:5432/postgres"
        databases.append(("postgresql", base))
    if not databases:
        print("Nothing to run (BENCH_SQLITE=0 and no PostgreSQL).", file=sys.stderr)
        return 2

    data = load_results(args.out)
    for vendor, _where in databases:
        data.get("runs", {}).pop(vendor, None)  # this run replaces that database's figures
    save_results(args.out, data)

    total = time.perf_counter()
    failed: list[str] = []
    for vendor, where in databases:
        print(f"\n=== {vendor}: small (seed) and {args.scale} {size} ===", flush=True)
        if vendor == "sqlite":
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(where + suffix).unlink(missing_ok=True)
            db_url = f"sqlite:///{where}"
        else:
            name = os.environ.get("BENCH_PG_DB", "kumamachi_bench")
            maintenance, db_url = _postgres_urls(where, name)
            _pg_database(maintenance, name, create=True)
        env = {**base_env, "DATABASE_URL": db_url}
        try:
            _step(["migrate", "--noinput", "-v0"], env, timeout)
            _step(["load_seed"], env, timeout)
            _step(["bench_run", "--scale", SMALL, *run_args], env, timeout)
            _step(
                [
                    "bench_generate",
                    "--wards",
                    str(size["wards"]),
                    "--years",
                    str(size["years"]),
                    "--projects",
                    str(size["projects"]),
                    "--out",
                    args.out,
                ],
                env,
                timeout,
            )
            _step(["bench_run", "--scale", args.scale, *run_args], env, timeout)
            if os.environ.get("BENCH_LOAD", "1") != "0":  # gunicorn + wrk (bench/load.py)
                load_args = ["--scale", args.scale, "--out", args.out, "--database-url", db_url]
                _step(load_args, env, timeout, module="bench.load")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            failed.append(f"{vendor}: {exc}")
            print(f"FAILED on {vendor}: {exc}", file=sys.stderr, flush=True)
            data = load_results(args.out)
            _vendor_run(data, vendor)["error"] = str(exc)
            save_results(args.out, data)
        finally:
            if not keep:
                if vendor == "sqlite":
                    Path(where).unlink(missing_ok=True)
                else:
                    _pg_database(maintenance, name, create=False)
    print(f"\nDone in {time.perf_counter() - total:.0f} s. Results: {args.out}\n")
    print(report(load_results(args.out)))
    if failed:
        print("\nFAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
