"""Load the seed data (fixtures/kumamoto.json) through the services; safe to run again."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from budgets import services as budget_services
from budgets.models import Project
from wards import services as ward_services
from wards.models import CityVision, Stage, Ward

DEFAULT_PATH = Path(settings.BASE_DIR) / "fixtures" / "kumamoto.json"
STAGES = {
    "initial": Stage.INITIAL,
    "september": Stage.SEPTEMBER,
    "february": Stage.FEBRUARY,
    "settlement": Stage.SETTLEMENT,
}


def _stage(name: str | None) -> Stage | None:
    return None if name is None else STAGES[name]


def _yen(thousand: int | None) -> int | None:
    return None if thousand is None else thousand * 1000


class Command(BaseCommand):
    help = "Load the Kumamoto seed data. Existing rows are updated, never duplicated."

    def add_arguments(self, parser):
        parser.add_argument("--path", type=Path, default=DEFAULT_PATH)

    def handle(self, *args, path: Path, **options):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read seed data {path}: {exc}") from exc
        with transaction.atomic():
            counts = load(data)
        summary = ", ".join(f"{name} {count}" for name, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Seed data loaded: {summary}"))


def load(data: dict) -> dict[str, int]:
    wards = {w["slug"]: ward_services.ward_upsert(**w) for w in data["wards"]}
    funds = {f["code"]: budget_services.fund_upsert(**f) for f in data["funds"]}
    for plan in data["city_plans"]:
        ward_services.city_plan_upsert(
            ordinal=plan["ordinal"],
            name=plan["name"],
            visions=[(v["number"], v["title"]) for v in plan["visions"]],
        )
    years = {
        y["year"]: ward_services.fiscal_year_upsert(
            year=y["year"],
            published_stage=_stage(y.get("published_stage")),
            open_stage=_stage(y.get("open_stage")),
        )
        for y in data["fiscal_years"]
    }
    for a in data["allocations"]:
        budget_services.allocation_set(
            fiscal_year=years[a["year"]],
            ward=wards[a["ward"]] if a["ward"] else None,
            fund=funds[a["fund"]],
            amount=_yen(a["amount_thousand"]),
        )
    n_projects = 0
    for wy in sorted(data["ward_years"], key=lambda wy: wy["year"]):
        n_projects += _load_ward_year(wy, wards=wards, funds=funds, years=years)
    return {"wards": len(wards), "years": len(years), "projects": n_projects}


def _load_ward_year(wy: dict, *, wards: dict, funds: dict, years: dict) -> int:
    ward: Ward = wards[wy["ward"]]
    fiscal_year = years[wy["year"]]
    ward_services.ward_year_upsert(
        ward=ward,
        fiscal_year=fiscal_year,
        slogan=wy["slogan"],
        source_document=wy["source_document"],
        projects_complete=wy["projects_complete"],
        note=wy["note"],
    )
    pillars = {}
    for position, p in enumerate(wy["pillars"], start=1):
        visions = [
            CityVision.objects.get(plan__ordinal=ordinal, number=number)
            for ordinal, number in p.get("city_visions", [])
        ]
        pillars[p["name"]] = ward_services.pillar_upsert(
            ward=ward,
            fiscal_year=fiscal_year,
            name=p["name"],
            position=position,
            description=p["description"],
            city_visions=visions,
        )
    for t in wy["printed_totals"]:
        budget_services.printed_total_set(
            fiscal_year=fiscal_year,
            ward=ward,
            fund=funds[t["fund"]],
            stage=STAGES[t["stage"]],
            amount=_yen(t["amount_thousand"]),
        )
    for position, p in enumerate(wy["projects"], start=1):
        previous = None
        if p.get("previous"):
            previous = Project.objects.get(
                ward=ward, fiscal_year_id=p["previous"]["year"], name=p["previous"]["name"]
            )
        project = budget_services.project_upsert(
            ward=ward,
            fiscal_year=fiscal_year,
            name=p["name"],
            fund=funds[p["fund"]],
            pillar=pillars[p["pillar"]] if p["pillar"] else None,
            number=p["number"],
            position=position,
            summary=p["summary"],
            is_new=p["is_new"],
            previous=previous,
        )
        budget_services.figures_update(
            project=project,
            figures={STAGES[name]: _yen(value) for name, value in p["figures"].items()},
        )
    return len(wy["projects"])
