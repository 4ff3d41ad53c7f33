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
