"""Measure the app on the database it is pointed at (bench/run.py); see BENCHMARKS.md."""

from django.core.management.base import BaseCommand

from bench import rerun_on
from bench import run as bench


class Command(BaseCommand):
    help = (
        "Measure queries and server time per request, the downloads against openpyxl's "
        "write-only ceiling and the 500-row import; record them in --out and print the report."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            default="small",
            help="the name the figures are recorded under (small: the seed data only)",
        )
        parser.add_argument("--out", default=str(bench.DEFAULT_OUT), help="results file (JSON)")
        parser.add_argument(
            "--requests", type=int, default=50, help="timed requests per URL, at most"
        )
        parser.add_argument(
            "--budget",
            type=float,
            default=10.0,
            help="seconds of timed requests per URL (at least 3 requests are timed)",
        )
        parser.add_argument(
            "--export-runs", type=int, default=3, help="timed runs of each download, at most"
        )
        parser.add_argument(
            "--import-runs", type=int, default=3, help="timed applies of the import, at most"
        )
        parser.add_argument("--report", action="store_true", help="only print the report of --out")
        parser.add_argument("--database-url", help="measure this database instead of DATABASE_URL")

    def handle(self, *args, **options):
        if options["report"]:
            self.stdout.write(bench.report(bench.load_results(options["out"])))
            return
        if rerun_on(options["database_url"], "bench_run"):
            return
        from django.db import connection

        bench.measure(
            scale=options["scale"],
            out=options["out"],
            max_requests=options["requests"],
            budget=options["budget"],
            export_runs=options["export_runs"],
            import_runs=options["import_runs"],
            log=self.stdout.write,
        )
        self.stdout.write("")
        self.stdout.write(bench.report(bench.load_results(options["out"]), [connection.vendor]))
