"""The benchmark's judging of its targets (bench/run.py)."""

from bench import run


def _request(url: str, median_ms: float, queries: int = 5) -> dict:
    return {"url": url, "median_ms": median_ms, "queries": queries}


def test_server_time_is_judged_for_the_same_page_only():
    small = {
        "ward": _request("/2021/kita/", 50),
        "data.csv": _request("/2021/data.csv", 10, 2),
    }
    large = {
        "ward": _request("/2019/w004/", 200),  # another ward's page: shown only
        "ward (seed URL)": _request("/2021/kita/", 70),  # the same page: judged
        "data.csv (seed URL)": _request("/2021/data.csv", 40, 2),  # a download: shown only
    }
    checks = run.evaluate(
        {"scales": {run.SMALL: {"requests": small}, "large": {"requests": large}}}
    )
    timed = {c["what"]: c["ok"] for c in checks if c["target"].startswith("median")}
    assert timed == {"ward": None, "ward (seed URL)": True, "data.csv (seed URL)": None}
    large["ward (seed URL)"]["median_ms"] = 80  # × 1.6
    checks = run.evaluate(
        {"scales": {run.SMALL: {"requests": small}, "large": {"requests": large}}}
    )
    assert [c["ok"] for c in checks if c["what"] == "ward (seed URL)"] == [True, False]
