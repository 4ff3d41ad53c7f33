"""Measure the app on the database it is pointed at (bench/run.py); see BENCHMARKS.md."""

import os
import subprocess
import sys

from django.core.management.base import BaseCommand, CommandError

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
        url = options["database_url"]
        if url and os.environ.get("DATABASE_URL") != url:
            # Settings read DATABASE_URL once, at start-up: run again with it set.
            argv = [a for a in sys.argv[1:] if not a.startswith("--database-url=")]
            if "--database-url" in argv:
                index = argv.index("--database-url")
                del argv[index : index + 2]
            env = {**os.environ, "DATABASE_URL": url}
            code = subprocess.call([sys.executable, sys.argv[0], *argv], env=env)
            if code:
                raise CommandError(f"bench_run failed (exit status {code}).")
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
