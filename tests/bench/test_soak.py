"""The soak test's short run (bench/soak.py; `make soak` runs it for minutes): gunicorn in
the production configuration, readers and ward staff saving their sheets at once, on a
database of its own (a temporary SQLite file, or kumamachi_soak_ci on the PostgreSQL
server of DATABASE_URL). No 5xx, no error in the server's log, saves go through."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import soak

ROOT = Path(__file__).resolve().parent.parent.parent
SECONDS = int(os.environ.get("SOAK_CI_SECONDS", "15"))


def test_a_short_soak_has_no_server_error(tmp_path):
    out, server_log = tmp_path / "soak.json", tmp_path / "server.log"
    args = ["--seconds", str(SECONDS), "--out", str(out), "--server-log", str(server_log)]
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        args += ["--pg-db", "kumamachi_soak_ci"]
    else:
        args += ["--sqlite", str(tmp_path / "soak.sqlite3")]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 600,
    )
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    report = proc.stdout[-4000:] + "\n" + server_log.read_text(errors="replace")[-4000:]
    assert result["server_5xx"] == 0, report
    assert result["log_errors"] == [], report
    assert result["transport_errors"] == {}, report
    assert result["unexpected"] == [] and result["thread_failures"] == [], report
    assert result["by_kind"]["read"]["requests"] > 0
    assert result["saved"] > 0, report  # staff saves went through, not only refusals
    assert proc.returncode == 0, report


def test_the_sheet_form_is_read_back_with_its_token_and_versions():
    page = """<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="t0k">
    <input name="amount_7" value="3,100"><input type="hidden" name="version_7" value="42">
    <input type="hidden" name="stage" value="2"><input type="submit" name="go" value="保存">
    <input name="reason_7"></form>"""
    assert soak.form_inputs(page) == {
        "csrfmiddlewaretoken": "t0k",
        "amount_7": "3,100",
        "version_7": "42",
        "stage": "2",
        "reason_7": "",
    }


def test_a_changed_amount_stays_at_or_under_the_one_shown():
    import random

    rng = random.Random(1)
    for _ in range(200):
        assert 1 <= int(soak._amount("3,100", rng)) <= 3100
    assert soak._amount("", rng) == ""  # an empty row stays empty
