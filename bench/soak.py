"""Soak test (issue #7, "Load"): gunicorn under a bounded mixed load for minutes, with no 5xx
and no error in the server's log.

``python -m bench.soak --seconds 180`` (``make soak``):

1. creates its own database: ``kumamachi_soak`` on the PostgreSQL server of
   ``DATABASE_URL`` (or postgres://postgres@127.0.0.1:5432/), dropped first and afterwards
   unless ``--keep``; or a SQLite file with ``--sqlite PATH``; migrates it, loads the seed,
   opens the September revision of the latest year and creates a planner and ward staff
   (``add_staff``), two of them in one ward so that their saves meet;
2. serves it with gunicorn (``bench.load.Server``, 2 sync workers) in the production
   configuration (``DJANGO_ENV=production``, the page cache on, HTTPS-only cookies) behind
   a TLS-terminating proxy as far as the app can tell: the driver sends
   ``X-Forwarded-Proto: https`` (``DJANGO_PROXY_SSL_HEADER``) and the ``Origin`` and
   ``Referer`` a browser on https would, and passes the Secure cookies back as a proxy does;
3. drives it with Python threads (http.client, one connection each, closed loop):
   ``--readers`` anonymous readers going round the city, ward and project pages of every
   public year in Japanese and English, the search and the CSV download; ``--writers`` ward
   staff each logged in, who open their entry sheet and post it back with its CSRF token
   and the figures' versions, some amounts changed (a save: 302; two staff of one ward
   crossing: a clean 409 saying so; nothing else is expected);
4. reports requests, rate, status counts, p50/p99/max per kind, transport errors, and
   every ERROR or Traceback line of the server's log (Django's log included:
   ``--capture-output``), then fails (exit 1) on any 5xx, transport error, unexpected
   status, error in the log, or if no save went through.

The figures go to ``--out`` (JSON). No Django import here: the app runs in gunicorn and
in ``manage.py`` subprocesses.
"""

from __future__ import annotations

import argparse
import html.parser
import http.client
import json
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.load import HOST, ROOT, Server, _manage, _manage_plain, server_env
from bench.run import _pg_database, _postgres_urls

PASSWORD = "Soak-kumamachi-2026!"
PROXY_HEADER = "X-Forwarded-Proto"
# What a save may answer: saved (302 to the sheet), or refused cleanly (409: another
# staff member saved first; 400: a rule, e.g. over the allocation).
SAVE_OK = {302, 400, 409}
READ_OK = {200}
# What a 409 tells the staff member (budgets.services.figures_save_sheet).
CONFLICT_TEXT = "画面を開いた後に他の人が変更しました"
ERROR_LINE = re.compile(r"\bERROR\b|Traceback|\bCRITICAL\b")

SETUP = """
import json
from django.contrib.auth import get_user_model
from budgets import services
from budgets.models import Project
from wards.models import FiscalYear, Stage

planner = get_user_model().objects.get(username="soak_planner")
year = FiscalYear.objects.filter(published_stage__isnull=False).order_by("-year").first()
if year.open_stage is None:
    stage = Stage(year.published_stage).next
    year = services.stage_open(user=planner, fiscal_year=year, stage=stage)
wards = sorted(set(Project.objects.filter(fiscal_year=year).values_list("ward__slug", flat=True)))
public = []
for fy in FiscalYear.objects.filter(published_stage__isnull=False).order_by("year"):
    public.append(f"/{fy.year}/")
    public.append(f"/{fy.year}/data.csv")
    for slug in sorted(set(fy.projects.values_list("ward__slug", flat=True))):
        public.append(f"/{fy.year}/{slug}/")
    for p in fy.projects.select_related("ward").order_by("pk")[:40]:
        public.append(f"/{fy.year}/{p.ward.slug}/{p.pk}/")
public += ["/", "/search/", "/search/?q=%E4%BA%A4%E6%B5%81"]
print("BENCH_JSON " + json.dumps({"year": year.year, "wards": wards, "public": public}))
"""


# --- The database ------------------------------------------------------------------------------


def prepare(env: dict, *, writers: int) -> dict:
    """Migrate, seed, open a stage, create the staff: returns the year, the staff and the
    public URLs."""
    _manage_plain(["migrate", "--noinput", "-v0"], env)
    _manage_plain(["load_seed", "-v0"], env)
    staff_env = {**env, "SOAK_PASSWORD": PASSWORD}
    _manage_plain(
        ["add_staff", "soak_planner", "--planner", "--password-env", "SOAK_PASSWORD"], staff_env
    )
    info = _manage(["shell", "-c", SETUP], env)
    wards = info["wards"]
    staff = []
    for i in range(writers):
        # The first ward gets two staff (i = 0 and the last), whose saves cross.
        ward = wards[i % len(wards)] if i < writers - 1 or writers < 2 else wards[0]
        name = f"soak_{ward}_{i}"
        _manage_plain(
            ["add_staff", name, "--ward", ward, "--password-env", "SOAK_PASSWORD"], staff_env
        )
        staff.append({"username": name, "ward": ward})
    info["staff"] = staff
    return info


# --- HTTP --------------------------------------------------------------------------------------


class _Inputs(html.parser.HTMLParser):
    """The name and value of every <input> of a page (the entry sheet's form)."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "input":
            a = dict(attrs)
            if a.get("name") and a.get("type") != "submit":
                self.values[a["name"]] = a.get("value") or ""


def form_inputs(page: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(page)
    return parser.values


@dataclass
class Stats:
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    unexpected: list = field(default_factory=list)
    cache: Counter = field(default_factory=Counter)


class Browser:
    """One connection and its cookies, speaking to the app as a TLS-terminating proxy
    would (``X-Forwarded-Proto: https``)."""

    def __init__(self, port: int):
        self.port = port
        self.origin = f"https://{HOST}:{port}"
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None):
        headers = {PROXY_HEADER: "https", "Host": f"{HOST}:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
            headers["Referer"] = self.origin + path
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # a new connection next time
            raise
        elapsed = (time.perf_counter() - started) * 1000
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, content, dict(response.getheaders()), elapsed


def _record(stats: Stats, kind: str, fn, ok: set[int], lock: threading.Lock):
    try:
        status, content, headers, ms = fn()
    except (OSError, http.client.HTTPException) as exc:
        with lock:
            stats.errors[f"{kind}: {type(exc).__name__}"] += 1
        return None
    with lock:
        stats.statuses[f"{kind} {status}"] += 1
        stats.latencies_ms.append((kind, ms))
        if status not in ok and len(stats.unexpected) < 20:
            stats.unexpected.append(f"{kind} {status}: {content[:300]!r}")
    return status, content, headers


def login(browser: Browser, username: str) -> None:
    status, content, _h, _ms = browser.request("GET", "/staff/login/")
    token = form_inputs(content.decode()).get("csrfmiddlewaretoken", "")
    status, content, headers, _ms = browser.request(
        "POST",
        "/staff/login/",
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    if status != 302:
        raise RuntimeError(f"login of {username}: HTTP {status}\n{content[:1000]!r}")


def reader(port: int, urls: list[str], until: float, stats: Stats, lock, seed: int) -> None:
    rng = random.Random(seed)
    browser = Browser(port)
    while time.monotonic() < until:
        url = rng.choice(urls)
        got = _record(stats, "read", lambda u=url: browser.request("GET", u), READ_OK, lock)
        if got:
            with lock:  # how often the page cache answered (every save empties it)
                stats.cache[got[2].get("X-Page-Cache", "none")] += 1


def _amount(text: str, rng: random.Random) -> str:
    """An amount near the one shown (千円), never above it: it stays within the allocation."""
    digits = text.replace(",", "").strip()
    if not digits.isdigit() or int(digits) == 0:
        return text
    return str(max(1, int(int(digits) * rng.uniform(0.85, 1.0))))


def writer(port: int, year: int, staff: dict, until: float, stats: Stats, lock, seed: int) -> None:
    rng = random.Random(seed)
    browser = Browser(port)
    login(browser, staff["username"])
    path = f"/staff/{year}/{staff['ward']}/"
    base: dict[str, str] | None = None
    n = 0
    while time.monotonic() < until:
        got = _record(stats, "sheet", lambda: browser.request("GET", path), READ_OK, lock)
        if not got or got[0] != 200:
            time.sleep(0.5)
            continue
        values = form_inputs(got[1].decode())
        if base is None:  # the amounts first shown: each save stays near them
            base = {k: v for k, v in values.items() if k.startswith("amount_")}
        n += 1
        for name, shown in base.items():
            if rng.random() < 0.5:
                values[name] = _amount(shown, rng)
                values[name.replace("amount_", "reason_")] = f"ソーク試験 {staff['username']} {n}"
        saved = _record(
            stats, "save", lambda v=values: browser.request("POST", path, v), SAVE_OK, lock
        )
        if saved and saved[0] == 409 and CONFLICT_TEXT not in saved[1].decode():
            with lock:  # a conflict must say what happened, not just refuse
                stats.unexpected.append(f"save 409 without the conflict message: {path}")
        time.sleep(rng.uniform(0.2, 1.0))  # a person reads the sheet before saving again


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1], 1)


def summarize(stats: Stats, seconds: float) -> dict:
    kinds = sorted({k for k, _ in stats.latencies_ms})
    by_kind = {}
    for kind in kinds:
        ms = [v for k, v in stats.latencies_ms if k == kind]
        by_kind[kind] = {
            "requests": len(ms),
            "rate": round(len(ms) / seconds, 2),
            "p50_ms": _percentile(ms, 50),
            "p99_ms": _percentile(ms, 99),
            "max_ms": round(max(ms), 1),
        }
    total = len(stats.latencies_ms)
    return {
        "seconds": round(seconds, 1),
        "requests": total,
        "rate": round(total / seconds, 2) if seconds else 0.0,
        "statuses": dict(sorted(stats.statuses.items())),
        "by_kind": by_kind,
        "transport_errors": dict(stats.errors),
        "page_cache": dict(stats.cache),
        "server_5xx": sum(n for k, n in stats.statuses.items() if k.split()[-1].startswith("5")),
        "unexpected": stats.unexpected,
    }


# --- The run -----------------------------------------------------------------------------------


def run_load(env: dict, info: dict, args, log=print) -> dict:
    with tempfile.TemporaryDirectory(prefix="kumamachi-soak-") as tmp:
        server_log = Path(tmp) / "gunicorn.log"
        env = {
            **server_env(env["DATABASE_URL"], cache=True, ceiling_dir=tmp),
            # HTTPS behind the driver acting as the proxy, not the benchmark's plain http.
            "DJANGO_INSECURE_LOCAL": "0",
            "DJANGO_PROXY_SSL_HEADER": PROXY_HEADER,
            "DJANGO_LOG_LEVEL": "WARNING",
            # Django's own log (a 500's traceback) into the same file as gunicorn's.
            "GUNICORN_CMD_ARGS": "--capture-output",
        }
        if args.insecure_local:
            env.update({"DJANGO_INSECURE_LOCAL": "1", "DJANGO_PROXY_SSL_HEADER": ""})
        _manage_plain(["collectstatic", "--noinput", "-v0"], env)
        urls = info["public"] + ["/en" + u for u in info["public"] if not u.endswith(".csv")]
        stats, lock = Stats(), threading.Lock()
        with Server(env, args.workers, server_log) as server:
            server.wait_ready("/healthz")
            log(
                f"  gunicorn on :{server.port}, {args.workers} workers; {args.readers} readers, "
                f"{len(info['staff'])} staff; {args.seconds} s …"
            )
            started = time.monotonic()
            until = started + args.seconds
            failures: list[str] = []

            def guarded(fn, *a):
                def run():
                    try:
                        fn(*a)
                    except Exception as exc:  # a thread that dies is a failure, not silence
                        with lock:
                            failures.append(f"{fn.__name__}: {type(exc).__name__}: {exc}")

                return threading.Thread(target=run, daemon=True)

            threads = [
                guarded(reader, server.port, urls, until, stats, lock, i)
                for i in range(args.readers)
            ] + [
                guarded(writer, server.port, info["year"], s, until, stats, lock, 1000 + i)
                for i, s in enumerate(info["staff"])
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.seconds + 300)
            seconds = time.monotonic() - started
        log_text = server_log.read_text(errors="replace") if server_log.exists() else ""
    if args.server_log:  # kept for reading the tracebacks
        Path(args.server_log).write_text(log_text)
    result = summarize(stats, seconds)
    result["thread_failures"] = failures
    result["log_errors"] = [line for line in log_text.splitlines() if ERROR_LINE.search(line)][:50]
    result["settings"] = {
        "workers": args.workers,
        "readers": args.readers,
        "staff": len(info["staff"]),
        "page_cache": True,
        "https_via_proxy_header": not args.insecure_local,
        "cpus": os.cpu_count(),
    }
    saves = sum(n for k, n in stats.statuses.items() if k == "save 302")
    result["saved"] = saves
    result["conflicts"] = stats.statuses.get("save 409", 0)
    result["ok"] = not (
        result["server_5xx"]
        or result["transport_errors"]
        or result["unexpected"]
        or result["log_errors"]
        or failures
        or not saves
    )
    return result


def report(result: dict) -> str:
    lines = [
        f"Soak: {result['requests']:,} requests in {result['seconds']} s "
        f"({result['rate']}/s), {result['saved']} saves, {result['conflicts']} conflicts (409), "
        f"{result['server_5xx']} 5xx, {sum(result['transport_errors'].values())} transport "
        f"errors, {len(result['log_errors'])} error lines in the server log.",
        "",
        "| kind | requests | rate/s | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for kind, k in result["by_kind"].items():
        lines.append(
            f"| {kind} | {k['requests']:,} | {k['rate']} | {k['p50_ms']} | {k['p99_ms']} "
            f"| {k['max_ms']} |"
        )
    lines += ["", "Statuses: " + ", ".join(f"{k}: {v:,}" for k, v in result["statuses"].items())]
    cache = ", ".join(f"{k}: {v:,}" for k, v in result["page_cache"].items())
    lines.append(f"Reads' X-Page-Cache: {cache}")
    for name in ("unexpected", "thread_failures", "log_errors"):
        if result.get(name):
            lines += [f"{name}:"] + [f"  {x}" for x in result[name][:10]]
    if result.get("transport_errors"):
        lines.append(f"transport errors: {result['transport_errors']}")
    lines.append("PASS" if result["ok"] else "FAIL")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak test: gunicorn under a mixed load.")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", 180)))
    parser.add_argument("--readers", type=int, default=int(os.environ.get("SOAK_READERS", 4)))
    parser.add_argument("--writers", type=int, default=int(os.environ.get("SOAK_WRITERS", 4)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("SOAK_WORKERS", 2)))
    parser.add_argument("--sqlite", metavar="PATH", default=os.environ.get("SOAK_SQLITE") or None)
    parser.add_argument("--pg-db", default=os.environ.get("SOAK_PG_DB", "kumamachi_soak"))
    parser.add_argument("--keep", action="store_true", default=os.environ.get("SOAK_KEEP") == "1")
    parser.add_argument(
        "--insecure-local",
        action="store_true",
        help="DJANGO_INSECURE_LOCAL=1 (plain http) instead of the proxy header",
    )
    parser.add_argument("--out", default=os.environ.get("SOAK_OUT"))
    parser.add_argument(
        "--server-log",
        default=os.environ.get("SOAK_SERVER_LOG", "/tmp/kumamachi-soak-server.log"),
        help="where the server's log is kept",
    )
    args = parser.parse_args(argv)

    base_env = {**os.environ, "DJANGO_DEBUG": "0", "PYTHONUNBUFFERED": "1"}
    if args.sqlite:
        path = Path(args.sqlite)
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        db_url, vendor = f"sqlite:///{path.resolve()}", "sqlite"
    else:
        server = os.environ.get("DATABASE_URL", "")
        if not server.startswith("postgres"):
            server = "postgres://postgres@127.0.0.1:5432/postgres"
        maintenance, db_url = _postgres_urls(server, args.pg_db)
        _pg_database(maintenance, args.pg_db, create=True)
        vendor = "postgresql"
    env = {**base_env, "DATABASE_URL": db_url}
    print(f"Soak on {vendor} ({db_url}), {args.seconds} s", flush=True)
    try:
        info = prepare(env, writers=args.writers)
        result = run_load(env, info, args)
    finally:
        if not args.keep:
            if args.sqlite:
                Path(args.sqlite).unlink(missing_ok=True)
            else:
                _pg_database(maintenance, args.pg_db, create=False)
    result.update(
        {
            "vendor": vendor,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        }
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(report(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
