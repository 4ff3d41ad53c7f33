"""The load test's freshness check (bench/load.py): correct a published figure, or read
pages without the page cache. Only for a throwaway benchmark database."""

import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Benchmark only: --correct PROJECT_ID corrects that project's latest published "
        "figure by -1,001 yen through budgets.services.figure_correct (another project of "
        "the same ward-year if it has no amount there); --render URL… prints each page's "
        "numbers. Prints one JSON line starting with BENCH_JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--correct", type=int, metavar="PROJECT_ID")
        parser.add_argument("--render", nargs="+", metavar="URL")
        parser.add_argument(
            "--dry-run", action="store_true", help="with --correct: only say which figure"
        )

    def handle(self, *args, **options):
        if bool(options["correct"]) == bool(options["render"]):
            raise CommandError("Give either --correct PROJECT_ID or --render URL….")
        if options["correct"]:
            out = self.correct(options["correct"], dry_run=options["dry_run"])
        else:
            out = self.render(options["render"])
        self.stdout.write("BENCH_JSON " + json.dumps(out, ensure_ascii=False))

    def render(self, urls: list[str]) -> dict:
        """Each page as the app renders it now (run with DJANGO_PAGE_CACHE=0): the ground
        truth that the server's answers are compared with."""
        from django.conf import settings
        from django.test import Client

        from bench.load import number_tokens

        host = next((h for h in settings.ALLOWED_HOSTS if "*" not in h), "testserver")
        client = Client(HTTP_HOST=host.lstrip("."))
        pages = {}
        for url in urls:
            response = client.get(url)
            pages[url] = {
                "status": response.status_code,
                "tokens": number_tokens(response.content.decode("utf-8", "replace")),
            }
        return pages

    def correct(self, project_id: int, *, dry_run: bool = False) -> dict:
        """A planner's correction of a published figure, as the staff page would make it."""
        from django.contrib.auth import get_user_model

        from budgets import services
        from budgets.formatting import sen
        from budgets.models import Project, StageFigure
        from wards.models import Stage

        project = Project.objects.select_related("fiscal_year", "ward").get(pk=project_id)
        year = project.fiscal_year
        if not year.published_stage:
            raise CommandError(f"{year.year} has no published stage.")
        stage = Stage(year.published_stage)
        # Lowering the amount breaks no rule: not the allocation, not settlement ≤ February.
        figures = StageFigure.objects.filter(
            project__fiscal_year=year, project__ward=project.ward, stage=stage, amount__gte=2000
        ).select_related("project")
        figure = (
            figures.filter(project=project).first() or figures.order_by("project__position").first()
        )
        if figure is None:
            raise CommandError(f"No figure of {stage.label} to correct in {project.ward.slug}.")
        p = figure.project
        out = {
            "project": p.pk,
            "project_url": f"/{year.year}/{project.ward.slug}/{p.pk}/",
            "stage": int(stage),
            "stage_label": str(stage.label),
            "old_amount": figure.amount,
            "old_text": sen(figure.amount),
        }
        if dry_run:
            return out
        user, _ = get_user_model().objects.get_or_create(
            username="bench-editor", defaults={"is_staff": True, "is_superuser": True}
        )
        old = figure.amount
        new = old - 1001  # 1.001 千円: shows in every total at 千円 precision
        services.figure_correct(
            user=user,
            project=figure.project,
            stage=stage,
            value=new,
            reason="ベンチマークの鮮度確認",
            version=figure.version,
        )
        return {**out, "new_amount": new, "new_text": sen(new)}
