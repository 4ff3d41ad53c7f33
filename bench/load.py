"""Load under concurrency (issue #6, part 3): gunicorn + wrk, and the page cache's freshness.

``python -m bench.load --database-url URL --scale NAME`` (``python -m bench.run`` calls it
after the measurement of the generated scale; ``BENCH_LOAD=0`` skips it there):

1. picks the city, ward and project pages as ``bench.run.pick_targets`` does, so they are
   the pages of the in-process measurement;
2. serves the database with gunicorn (``kumamachi.wsgi``, ``DJANGO_ENV=production``) on
   127.0.0.1, pinned to CPU 0, and drives it with wrk pinned to CPU 1 (``taskset``);
3. cold (``DJANGO_PAGE_CACHE=0``): fetches each page once and saves its bytes, which the
   ceiling view (``bench/ceiling.py``, ``KUMAMACHI_BENCH_CEILING=1``) returns as they are;
   then the maximum rate of the ceiling and of the page: closed loop, ``--connections``
   connections, ``--duration`` seconds after ``--warmup`` seconds;
4. warm (the page cache on): the same, then a short run that counts the ``X-Page-Cache``
   header (hit / miss; absent while there is no page cache: the hit ratio is then null),
   then a fixed rate of 70% of the page's warm maximum, for p50 and p99;
5. freshness: corrects a published figure of the ward page's project through
   ``budgets.services.figure_correct`` (``manage.py bench_edit``), at once sends
   ``--fresh-requests`` requests round the city, ward and project pages, and counts the
   answers that do not show the new figures (``stale``, target 0).

The figures go to the results file under ``runs[vendor]["load"]``; ``report_lines`` prints
them as part of ``bench.run.report``. No Django import at module level: this runs outside
the app and talks to it over HTTP and through ``manage.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "wrk.lua"
PAGES = ("city", "ward", "project")
HOST = "127.0.0.1"

# Targets (the issue's).
MIN_COLD_RATIO = 0.25
MIN_WARM_RATIO = 0.80
MIN_HIT_RATIO = 0.95
MAX_P99_OVER_P50 = 4.0
FIXED_SHARE = 0.70

# Per scale: seconds of warm-up, of measurement and of the hit-ratio run. Smoke keeps CI fast.
TIMES = {"smoke": (1, 2, 2), "large": (3, 10, 5)}
# The maximum-rate and fixed-rate runs last until about this many requests, within 6 × the
# duration.
MAX_REQUESTS = 50
FIXED_REQUESTS = 200


# --- Numbers on a page (the freshness check) ---------------------------------------------------

# A number standing alone: not inside a word such as a CSRF token or a hashed file name
# (ASCII \w, so 1,234千円 still counts).
_NUMBER = re.compile(r"(?<!\w)\d[\d,.]*(?<![,.])(?!\w)", re.ASCII)


def number_tokens(text: str) -> dict[str, int]:
    return dict(Counter(_NUMBER.findall(text)))


def classify(tokens: dict, before: dict, after: dict) -> str:
    """'fresh' if the page's changed numbers are as after the edit, 'stale' if as before,
    'other' if neither; 'unchanged' if the edit changed no number on the page."""
    changed = {t for t in set(before) | set(after) if before.get(t, 0) != after.get(t, 0)}
    if not changed:
        return "unchanged"
    if all(tokens.get(t, 0) == after.get(t, 0) for t in changed):
        return "fresh"
    if all(tokens.get(t, 0) == before.get(t, 0) for t in changed):
        return "stale"
    return "other"


# --- Processes ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    # The step's timeout kills this process with SIGKILL: its servers must not outlive it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _pin(cpu: int) -> list[str]:
    """taskset to one CPU when there are two (the server on 0, wrk on 1)."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _manage(args: list[str], env: dict, timeout: float = 600) -> dict:
    """Run manage.py and return its BENCH_JSON line."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_die_with_parent,
    )
    if proc.returncode:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{proc.stderr[-3000:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"manage.py {args[0]} printed no result:\n{proc.stdout[-2000:]}")


class Server:
    """gunicorn serving the app on a free port, stopped on exit."""

    def __init__(self, env: dict, workers: int, log: Path):
        self.port = _free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log = log
        self.workers = workers
        cmd = [
            *_pin(0),
            sys.executable,
            "-m",
            "gunicorn",
            "kumamachi.wsgi:application",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(workers),
            "--timeout",
            "300",  # the slowest page at large is seconds long under load; not a failure
            "--error-logfile",
            str(log),
            "--log-level",
            "warning",
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )

    def wait_ready(self, path: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                urllib.request.urlopen(self.base + path, timeout=60).read()
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer in {timeout:.0f} s:\n{self.tail()}")

    def drain(self, path_or_url: str) -> None:
        """Wait for the requests left queued by a run that has ended: wrk closes its
        connections, but sync workers still answer every request already accepted, and
        those would eat into the next run. One probe per worker, queued behind them."""
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(lambda _: fetch(url, timeout=600), range(self.workers)))

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def fetch(url: str, timeout: float = 120) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


# --- wrk -----------------------------------------------------------------------------------------


def wrk(url: str, *, mode: str, seconds: int, connections: int, rate: float | None = None) -> dict:
    """One wrk run (one thread, on CPU 1): rate, latency percentiles and errors."""
    env = {
        **os.environ,
        "BENCH_WRK_MODE": mode,
        "BENCH_WRK_THREADS": "1",
        "BENCH_WRK_CONNECTIONS": str(connections),
        "BENCH_WRK_RATE": str(rate or 0),
    }
    cmd = [
        *_pin(1),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "120s",  # wrk's 2 s default would count a slow page's queueing as errors
        "-s",
        str(LUA),
        url,
    ]
    proc = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 180,
        preexec_fn=_die_with_parent,
    )
    line = next(
        (x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")),
        None,
    )
    if proc.returncode or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    lat = raw["latency_us"]
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    out = {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 2),
        "rate": round(raw["requests"] / seconds_run, 2) if seconds_run else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "errors": errors,
    }
    if errors:
        out["error_kinds"] = {k: v for k, v in raw["errors"].items() if v}
    if mode == "cache":
        out["cache"] = raw["cache"]
        out["non2xx"] = raw["non2xx"]
    if mode == "rate":
        out["target_rate"] = round(rate or 0, 2)
        out["late"] = raw["late"]  # requests sent over one interval after their slot
        out["max_lag_ms"] = raw["max_lag_ms"]
    return out


def _stretch(seconds: int, rate: float, want: int) -> int:
    """Long enough for about ``want`` requests at ``rate``, within 1–6 × ``seconds``."""
    if rate <= 0:
        return 6 * seconds
    return int(min(max(seconds, math.ceil(want / rate)), 6 * seconds))


def max_rate(
    url: str, *, warmup: int, seconds: int, connections: int, drain: Callable[[], None]
) -> dict:
    """Closed loop after a warm-up. A slow page runs longer (from the warm-up's rate) so that
    it is not judged on a handful of requests."""
    if warmup:
        first = wrk(url, mode="max", seconds=warmup, connections=connections)
        drain()
        # From the median latency, not the rate: a warm-up's first answers fill the page
        # cache and are slow, and that must not stretch the run of a page served from it.
        p50 = first["p50_ms"] / 1000
        seconds = _stretch(seconds, connections / p50 if p50 else first["rate"], MAX_REQUESTS)
    out = wrk(url, mode="max", seconds=seconds, connections=connections)
    drain()
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


# --- The measurement ---------------------------------------------------------------------------


def server_env(db_url: str, *, cache: bool, ceiling_dir: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_ENV": "production",
        # Production settings want a long random key; plain http on the loopback only.
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": HOST,
        "DJANGO_INSECURE_LOCAL": "1",
        "DJANGO_DEBUG": "0",
        "DJANGO_PAGE_CACHE": "1" if cache else "0",
        "KUMAMACHI_BENCH_CEILING": "1",
        "KUMAMACHI_BENCH_CEILING_DIR": ceiling_dir,
        "PYTHONUNBUFFERED": "1",
    }


def targets(db_url: str) -> dict:
    code = (
        "import json; from bench.run import pick_targets; "
        "print('BENCH_JSON ' + json.dumps(pick_targets()))"
    )
    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_DEBUG": "0"}
    return _manage(["shell", "-c", code], env)


def freshness(server: Server, env: dict, urls: dict[str, str], project: int, n: int) -> dict:
    """Correct a figure, then ``n`` requests at once; count the answers not showing it."""
    render_env = {**env, "DJANGO_PAGE_CACHE": "0"}
    # The edited project's page: the target project's unless it has no amount to lower.
    pick = _manage(["bench_edit", "--correct", str(project), "--dry-run"], env)
    urls = {**urls, "project": pick["project_url"]}
    before = _manage(["bench_edit", "--render", *urls.values()], render_env)
    # The control: the server's answers just before the edit must read as stale once the
    # edit is made, or the check could not tell a stale page from a fresh one.
    control = {page: fetch(server.base + url)[1] for page, url in urls.items()}
    edit = _manage(["bench_edit", "--correct", str(project)], env)
    order = [(PAGES[i % len(PAGES)]) for i in range(n)]
    bodies: dict[str, bytes] = {}

    def get(page: str) -> tuple[str, int, str]:
        status, body, _headers = fetch(server.base + urls[page])
        digest = hashlib.sha1(body).hexdigest()
        bodies.setdefault(digest, body)
        return page, status, digest

    started = time.perf_counter()
    # Two at a time, as many as workers: the first answers of each page come at once.
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(get, order))
    seconds = time.perf_counter() - started
    after = _manage(["bench_edit", "--render", *urls.values()], render_env)
    kinds: dict[tuple[str, str], str] = {}
    counts = {page: Counter() for page in PAGES}
    first: dict[str, str] = {}
    for page, status, digest in answers:
        url = urls[page]
        if status != 200:
            kind = f"HTTP {status}"
        else:
            if (page, digest) not in kinds:
                tokens = number_tokens(bodies[digest].decode("utf-8", "replace"))
                kinds[page, digest] = classify(tokens, before[url]["tokens"], after[url]["tokens"])
            kind = kinds[page, digest]
        counts[page][kind] += 1
        first.setdefault(page, kind)
    total = sum(counts.values(), Counter())
    control_kinds = {
        page: classify(
            number_tokens(body.decode("utf-8", "replace")),
            before[urls[page]]["tokens"],
            after[urls[page]]["tokens"],
        )
        for page, body in control.items()
    }
    # Not fresh is stale: an old figure, a mix, or an error instead of the page.
    stale = sum(v for k, v in total.items() if k not in ("fresh", "unchanged"))
    return {
        "edit": edit,
        "urls": urls,
        "requests": n,
        "seconds": round(seconds, 1),
        "stale": stale if all(k == "stale" for k in control_kinds.values()) else None,
        "control": control_kinds,
        "answers": dict(total),
        "by_page": {page: dict(c) for page, c in counts.items()},
        "first_answer": first,
        "changed_numbers": {
            page: sorted(
                t
                for t in set(before[u]["tokens"]) | set(after[u]["tokens"])
                if before[u]["tokens"].get(t, 0) != after[u]["tokens"].get(t, 0)
            )[:12]
            for page, u in urls.items()
        },
    }


def _page_runs(server: Server, mode: str, page: str, url: str, entry: dict, t: dict) -> None:
    """The ceiling's and the page's maximum rate on one server; warm: the hit ratio too."""
    ceiling_url = f"{server.base}/__bench__/ceiling/{page}/"
    for key, target in ((f"ceiling_{mode}", ceiling_url), (mode, server.base + url)):
        t["log"](f"    {page} {url}: {key} …")
        entry[key] = max_rate(
            target,
            warmup=t["warmup"],
            seconds=t["seconds"],
            connections=t["connections"],
            drain=lambda: server.drain(ceiling_url),
        )
    entry[f"{mode}_ratio"] = _ratio(entry[mode]["rate"], entry[f"ceiling_{mode}"]["rate"])
    if mode == "warm":
        # Its own run: response() makes wrk parse every answer, which slows the client.
        t["log"](f"    {page}: X-Page-Cache …")
        run = wrk(
            server.base + url,
            mode="cache",
            seconds=t["cache_seconds"],
            connections=t["connections"],
        )
        server.drain(ceiling_url)
        c = run["cache"]
        seen = c["hit"] + c["miss"]
        entry["cache"] = {
            **c,
            "non2xx": run["non2xx"],
            "hit_ratio": round(c["hit"] / seen, 4) if seen else None,
        }


def _fixed_run(server: Server, page: str, url: str, entry: dict, t: dict) -> None:
    """A fixed rate of 70% of the page's warm maximum: its p50 and p99."""
    rate = FIXED_SHARE * entry["warm"]["rate"]
    if rate <= 0:
        return  # nothing answered at all: no rate to hold
    seconds = _stretch(t["seconds"], rate, FIXED_REQUESTS)
    t["log"](f"    {page}: fixed rate {rate:.1f}/s for {seconds} s …")
    run = wrk(
        server.base + url, mode="rate", seconds=seconds, connections=t["connections"], rate=rate
    )
    server.drain(url)
    run["p99_over_p50"] = round(run["p99_ms"] / run["p50_ms"], 2) if run["p50_ms"] else None
    entry["fixed"] = run


def measure(args, result: dict, log=print) -> None:
    """Fills ``result`` as it goes, so a failure keeps what was measured."""
    started = time.perf_counter()
    warmup, seconds, cache_seconds = TIMES.get(args.scale, TIMES["large"])
    times = {
        "warmup": args.warmup if args.warmup is not None else warmup,
        "seconds": args.duration or seconds,
        "cache_seconds": cache_seconds,
        "connections": args.connections,
        "log": log,
    }
    targets_ = targets(args.database_url)
    from bench.run import page_urls

    # City, ward, project: the URLs of the in-process measurement.
    urls = {page: url for page, url in page_urls(targets_) if page in PAGES}
    result.update(
        {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "targets": targets_,
            "settings": {
                "workers": args.workers,
                "connections": args.connections,
                "warmup_s": times["warmup"],
                "duration_s": times["seconds"],
                "cache_run_s": cache_seconds,
                "fixed_share": FIXED_SHARE,
                "pinned": bool(_pin(0)),
                "wrk": _wrk_version(),
                "gunicorn": _gunicorn_version(),
            },
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "pages": {page: {"url": url} for page, url in urls.items()},
        }
    )
    with tempfile.TemporaryDirectory(prefix="kumamachi-load-") as tmp:
        # Production settings serve static files through the manifest storage.
        _manage_plain(
            ["collectstatic", "--noinput", "-v0"],
            server_env(args.database_url, cache=False, ceiling_dir=tmp),
        )
        for mode in ("cold", "warm"):
            env = server_env(args.database_url, cache=mode == "warm", ceiling_dir=tmp)
            log(
                f"  {mode}: gunicorn, {args.workers} workers, page cache {env['DJANGO_PAGE_CACHE']}"
            )
            with Server(env, args.workers, Path(tmp) / f"gunicorn-{mode}.log") as server:
                server.wait_ready(urls["project"])
                for page, url in urls.items():
                    entry = result["pages"][page]
                    if mode == "cold":  # the ceiling's bytes: the page as served
                        status, body, headers = fetch(server.base + url)
                        if status != 200:
                            raise RuntimeError(f"{url}: HTTP {status}\n{server.tail()}")
                        (Path(tmp) / f"{page}.html").write_bytes(body)
                        (Path(tmp) / f"{page}.type").write_text(headers.get("Content-Type", ""))
                        entry["bytes"] = len(body)
                    _page_runs(server, mode, page, url, entry, times)
                if mode == "warm":
                    for page, url in urls.items():
                        _fixed_run(server, page, url, result["pages"][page], times)
                    if args.fresh_requests:
                        log(f"    freshness: an edit, then {args.fresh_requests} requests …")
                        result["freshness"] = freshness(
                            server, env, urls, targets_["project"], args.fresh_requests
                        )
                errors = server.tail()
                if "Traceback" in errors or "[ERROR]" in errors:
                    result.setdefault("server_errors", {})[mode] = errors[-2000:]
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]


def _manage_plain(args: list[str], env: dict) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
        preexec_fn=_die_with_parent,
    )


def _wrk_version() -> str:
    proc = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (proc.stdout or proc.stderr).split(" [")[0].strip()


def _gunicorn_version() -> str:
    with contextlib.suppress(ImportError):
        import gunicorn

        return gunicorn.__version__
    return "?"


# --- Report ------------------------------------------------------------------------------------


def _f(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def evaluate(load: dict) -> list[dict]:
    checks = []
    for page, e in load.get("pages", {}).items():
        fixed, cache = e.get("fixed", {}), e.get("cache", {})
        checks += [
            {
                "what": page,
                "target": f"cold ≥ {MIN_COLD_RATIO:.0%} of the ceiling",
                "value": _pct(e.get("cold_ratio")),
                "ok": None if e.get("cold_ratio") is None else e["cold_ratio"] >= MIN_COLD_RATIO,
            },
            {
                "what": page,
                "target": f"warm ≥ {MIN_WARM_RATIO:.0%} of the ceiling",
                "value": _pct(e.get("warm_ratio")),
                "ok": None if e.get("warm_ratio") is None else e["warm_ratio"] >= MIN_WARM_RATIO,
            },
            {
                "what": page,
                "target": f"cache hit ratio ≥ {MIN_HIT_RATIO:.0%}",
                "value": _pct(cache.get("hit_ratio"))
                if cache.get("hit_ratio") is not None
                else "no X-Page-Cache header",
                "ok": None
                if cache.get("hit_ratio") is None
                else cache["hit_ratio"] >= MIN_HIT_RATIO,
            },
            {
                "what": page,
                "target": f"p99 ≤ {MAX_P99_OVER_P50:g} × p50 at {FIXED_SHARE:.0%}, no error",
                "value": f"{_f(fixed.get('p99_ms'))} / {_f(fixed.get('p50_ms'))} ms "
                f"(× {_f(fixed.get('p99_over_p50'), 2)}), {fixed.get('errors', '–')} errors"
                if fixed
                else "–",
                "ok": None
                if not fixed or fixed.get("p99_over_p50") is None
                else fixed["p99_over_p50"] <= MAX_P99_OVER_P50
                and not fixed["errors"]
                and not e.get("warm", {}).get("errors")
                and not e.get("cold", {}).get("errors"),
            },
        ]
    fresh = load.get("freshness")
    if fresh:
        checks.append(
            {
                "what": "city, ward, project",
                "target": f"0 stale answers in {fresh['requests']:,} after an edit",
                "value": _f(fresh.get("stale")),
                "ok": None if fresh.get("stale") is None else fresh["stale"] == 0,
            }
        )
    return checks


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def report_lines(run: dict) -> list[str]:
    """The load section of one database's report (bench.run.report)."""
    load = run.get("load")
    if not load:
        return []
    if load.get("skipped"):
        return ["", "### Load (gunicorn + wrk)", "", f"Skipped: {load['skipped']}"]
    s = load.get("settings", {})
    lines = [
        "",
        f"### Load (gunicorn + wrk), scale {load.get('scale')}",
        "",
        f"gunicorn {s.get('gunicorn')}, {s.get('workers')} sync workers"
        + (" on CPU 0, wrk on CPU 1" if s.get("pinned") else " (not pinned)")
        + f"; {s.get('wrk')}, 1 thread, {s.get('connections')} connections; "
        f"{s.get('duration_s')} s after {s.get('warmup_s')} s of warm-up; requests/s. "
        "Cold: DJANGO_PAGE_CACHE=0. The ceiling: the page's bytes from a trivial view "
        f"through the same middleware and server. Took {load.get('seconds', 0):.0f} s, "
        f"load average {load.get('loadavg_start', ['?'])[0]} → "
        f"{load.get('loadavg_end', ['?'])[0]}. Fixed rate: achieved of target requests/s; "
        "late: requests sent over one interval after their slot (all connections busy).",
        "",
    ]
    if load.get("error"):
        lines += [f"**The load step failed:** {load['error']}", ""]
    rows = []
    for page, e in load.get("pages", {}).items():
        fixed = e.get("fixed", {})
        cache = e.get("cache", {})
        rows.append(
            [
                f"{page} `{e.get('url')}`",
                _f(e.get("bytes")),
                _f(e.get("ceiling_cold", {}).get("rate")),
                _f(e.get("cold", {}).get("rate")),
                _pct(e.get("cold_ratio")),
                _f(e.get("ceiling_warm", {}).get("rate")),
                _f(e.get("warm", {}).get("rate")),
                _pct(e.get("warm_ratio")),
                _pct(cache.get("hit_ratio"))
                + (f" ({cache.get('hit')}/{cache.get('miss')})" if cache.get("hit_ratio") else ""),
                f"{_f(fixed.get('rate'))} of {_f(fixed.get('target_rate'))}"
                + (f" ({fixed['late']:,} late)" if fixed.get("late") else ""),
                _f(fixed.get("p50_ms")),
                _f(fixed.get("p99_ms")),
                _f(fixed.get("p99_over_p50"), 2),
                sum(e.get(k, {}).get("errors", 0) for k in ("cold", "warm", "fixed")),
            ]
        )
    lines += _table(
        [
            "page",
            "bytes",
            "ceiling cold",
            "cold",
            "cold ÷ ceiling",
            "ceiling warm",
            "warm",
            "warm ÷ ceiling",
            "hit ratio (hits/misses)",
            f"fixed rate ({FIXED_SHARE:.0%} of warm)",
            "p50 ms",
            "p99 ms",
            "p99 ÷ p50",
            "errors",
        ],
        rows,
    )
    fresh = load.get("freshness")
    if fresh:
        edit = fresh["edit"]
        lines += [
            "",
            f"Freshness: project {edit['project']}'s {edit['stage_label']} corrected "
            f"{edit['old_text']} → {edit['new_text']} 千円, then {fresh['requests']:,} requests "
            f"(city, ward, project in turn, 2 at a time, {fresh['seconds']} s): "
            f"**{_f(fresh.get('stale'))} stale**; answers {fresh['answers']}; "
            f"first answer per page {fresh['first_answer']}; the answers from just before "
            f"the edit read as {fresh.get('control')} (they must read as stale).",
        ]
    for mode, text in load.get("server_errors", {}).items():
        lines += ["", f"Server errors ({mode}):", "", "```", text[-1500:], "```"]
    checks = evaluate(load)
    if checks:
        lines += ["", "#### Load targets", ""]
        lines += _table(
            ["what", "target", "value", "result"],
            [
                [
                    c["what"],
                    c["target"],
                    c["value"],
                    "–" if c["ok"] is None else ("met" if c["ok"] else "**not met**"),
                ]
                for c in checks
            ],
        )
    return lines


# --- Entry point ---------------------------------------------------------------------------------


def _vendor(url: str) -> str:
    return "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load test with gunicorn and wrk.")
    env = os.environ.get
    parser.add_argument("--database-url", default=env("DATABASE_URL"))
    parser.add_argument("--scale", default=env("BENCH_SCALE", "large"))
    parser.add_argument("--out", default=env("BENCH_OUT", str(ROOT / "bench" / "results.json")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env("BENCH_LOAD_WORKERS", "2")),
        help="gunicorn sync workers (2: one computes while the other waits on the database)",
    )
    parser.add_argument("--connections", type=int, default=int(env("BENCH_LOAD_CONNECTIONS", "8")))
    parser.add_argument(
        "--duration", type=int, default=int(env("BENCH_LOAD_DURATION", "0")) or None
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=int(env("BENCH_LOAD_WARMUP")) if env("BENCH_LOAD_WARMUP") else None,
    )
    parser.add_argument("--fresh-requests", type=int, default=int(env("BENCH_LOAD_FRESH", "1000")))
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required (a throwaway database)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup

    from bench.run import load_results, save_results

    vendor = _vendor(args.database_url)
    print(f"Load test on {vendor} ({args.scale}) …", flush=True)
    code = 0
    if not shutil.which("wrk"):
        load = {"scale": args.scale, "skipped": "wrk is not installed (apt-get install wrk)"}
        print(load["skipped"], file=sys.stderr)
    else:
        load = {"scale": args.scale}
        try:
            measure(args, load, log=lambda m: print(m, flush=True))
        except Exception as exc:  # recorded with what was measured, and the step fails
            load["error"] = f"{type(exc).__name__}: {exc}"[:4000]
            print(load["error"], file=sys.stderr)
            code = 1
    data = load_results(args.out)
    data.setdefault("runs", {}).setdefault(vendor, {"scales": {}})["load"] = load
    save_results(args.out, data)
    print("\n".join(report_lines({"load": load})))
    fresh = load.get("freshness")
    if fresh and fresh.get("stale") != 0:
        # A stale figure is a bug, not a slow page: the step (and CI's smoke run) fails.
        print(f"FAIL: stale answers after an edit: {fresh.get('stale')}", file=sys.stderr)
        code = 1
    return code


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
