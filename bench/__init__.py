"""kumamachi's benchmark: synthetic data at scale, and measurements of the app on it.

- ``bench.generate``: realistic synthetic wards, years, pillars, projects and stage figures,
  in bulk (``python manage.py bench_generate --wards 175 --years 20 --projects 40``).
- ``bench.run``: the measurements (``python manage.py bench_run --scale small``), the
  report with the targets, and ``python -m bench.run``, which ``make bench`` calls: fresh
  databases, seed, measure small, generate, measure large, on SQLite and PostgreSQL.

See bench/README.md and BENCHMARKS.md (the latest figures).
"""

# The generated data's size per BENCH_SCALE: wards × fiscal years × projects per ward-year.
SCALES = {
    "smoke": {"wards": 5, "years": 3, "projects": 10},
    "large": {"wards": 175, "years": 20, "projects": 40},
}


def rerun_on(url: str | None, command: str) -> bool:
    """Run this management command again with ``DATABASE_URL=url`` when ``--database-url``
    names another database than the settings were read with (they read it once, at
    start-up). True if it ran there: the caller has nothing left to do."""
    import os
    import subprocess
    import sys

    from django.core.management.base import CommandError

    if not url or os.environ.get("DATABASE_URL") == url:
        return False
    argv = [a for a in sys.argv[1:] if not a.startswith("--database-url=")]
    if "--database-url" in argv:
        index = argv.index("--database-url")
        del argv[index : index + 2]
    code = subprocess.call(
        [sys.executable, sys.argv[0], *argv], env={**os.environ, "DATABASE_URL": url}
    )
    if code:
        raise CommandError(f"{command} failed (exit status {code}).")
    return True
