"""Writes to wards, fiscal years, city plans, ward-years and pillars."""

from collections.abc import Iterable

from django.db import transaction

from kumamachi.services import validated_save
from wards.models import CityPlan, CityVision, FiscalYear, Stage, VisionPillar, Ward, WardYear


@transaction.atomic
def ward_upsert(*, slug: str, name_ja: str, name_en: str, kind: str, position: int) -> Ward:
    ward = Ward.objects.filter(slug=slug).first() or Ward(slug=slug)
    ward.name_ja, ward.name_en, ward.kind, ward.position = name_ja, name_en, kind, position
    return validated_save(ward)


@transaction.atomic
def fiscal_year_upsert(
    *, year: int, published_stage: Stage | None = None, open_stage: Stage | None = None
) -> FiscalYear:
    fiscal_year = FiscalYear.objects.filter(year=year).first() or FiscalYear(year=year)
    fiscal_year.published_stage = published_stage
    fiscal_year.open_stage = open_stage
    return validated_save(fiscal_year)


@transaction.atomic
def city_plan_upsert(*, ordinal: int, name: str, visions: Iterable[tuple[int, str]]) -> CityPlan:
    plan = CityPlan.objects.filter(ordinal=ordinal).first() or CityPlan(ordinal=ordinal)
    plan.name = name
    validated_save(plan)
    for number, title in visions:
        vision = CityVision.objects.filter(plan=plan, number=number).first() or CityVision(
            plan=plan, number=number
        )
        vision.title = title
        validated_save(vision)
    return plan


@transaction.atomic
def ward_year_upsert(
    *,
    ward: Ward,
    fiscal_year: FiscalYear,
    slogan: str = "",
    source_document: str = "",
    projects_complete: bool = True,
    note: str = "",
) -> WardYear:
    ward_year = WardYear.objects.filter(ward=ward, fiscal_year=fiscal_year).first() or WardYear(
        ward=ward, fiscal_year=fiscal_year
    )
    ward_year.slogan = slogan
    ward_year.source_document = source_document
    ward_year.projects_complete = projects_complete
    ward_year.note = note
    return validated_save(ward_year)


@transaction.atomic
def pillar_upsert(
    *,
    ward: Ward,
    fiscal_year: FiscalYear,
    name: str,
    position: int,
    description: str = "",
    city_visions: Iterable[CityVision] = (),
) -> VisionPillar:
    """Create or update the pillar of that name in the ward-year."""
    pillar = VisionPillar.objects.filter(
        ward=ward, fiscal_year=fiscal_year, name=name
    ).first() or VisionPillar(ward=ward, fiscal_year=fiscal_year, name=name)
    pillar.position = position
    pillar.description = description
    validated_save(pillar)
    pillar.city_visions.set(list(city_visions))
    return pillar
