"""Synthetic data for the benchmark (bench/generate.py): bulk inserts, no history rows."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from bench import generate as gen
from bench import rerun_on
from bench import run as bench_run


class Command(BaseCommand):
    help = (
        "Add synthetic wards, years, pillars, projects and figures for the benchmark "
        "(after load_seed). History is not recorded for the generated rows."
    )

    def add_arguments(self, parser):
        large = gen.SCALES["large"]
        parser.add_argument("--wards", type=int, default=large["wards"])
        parser.add_argument("--years", type=int, default=large["years"])
        parser.add_argument("--projects", type=int, default=large["projects"])
        parser.add_argument("--seed", type=int, default=20160414, help="random seed")
        parser.add_argument("--batch-size", type=int, default=gen.DEFAULT_BATCH)
        parser.add_argument(
            "--database-url",
            help="generate into this database instead of DATABASE_URL (reruns the command)",
        )
        parser.add_argument(
            "--out", help="also record the counts and time in this results file (JSON)"
        )

    def handle(self, *args, **options):
        if rerun_on(options["database_url"], "bench_generate"):
            return
        self.stdout.write(
            f"Generating {options['wards']} wards × {options['years']} years × "
            f"{options['projects']} projects on {connection.vendor} …"
        )
        started = time.perf_counter()
        try:
            counts = gen.generate(
                wards=options["wards"],
                years=options["years"],
                projects=options["projects"],
                seed=options["seed"],
                batch_size=options["batch_size"],
                progress=self.stdout.write if options["verbosity"] > 1 else None,
            )
        except gen.GenerateError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.perf_counter() - started
        summary = counts.as_dict()
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {summary['wards']:,} wards, {summary['years']} years, "
                f"{summary['pillars']:,} pillars, {summary['projects']:,} projects and "
                f"{summary['figures']:,} stage figures in {elapsed:.1f} s (no history rows)."
            )
        )
        self.stdout.write("  " + ", ".join(f"{k} {v:.1f} s" for k, v in summary["seconds"].items()))
        if options["out"]:
            bench_run.record_generation(
                options["out"],
                {
                    "wards": options["wards"],
                    "years": options["years"],
                    "projects": options["projects"],
                    "written": summary,
                    "seconds": round(elapsed, 1),
                },
            )
