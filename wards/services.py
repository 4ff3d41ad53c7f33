"""Writes to wards, fiscal years, city plans, ward-years and pillars."""

from collections.abc import Iterable

from django.db import transaction

from kumamachi.audit import audit_context
from kumamachi.services import scoped_save, upsert
from wards.models import CityPlan, CityVision, FiscalYear, Stage, VisionPillar, Ward, WardYear


@transaction.atomic
def ward_upsert(*, slug: str, name_ja: str, name_en: str, kind: str, position: int) -> Ward:
    return upsert(
        Ward,
        lookup={"slug": slug},
        values={"name_ja": name_ja, "name_en": name_en, "kind": kind, "position": position},
    )


@transaction.atomic
def fiscal_year_upsert(
    *, year: int, published_stage: Stage | None = None, open_stage: Stage | None = None
) -> FiscalYear:
    return upsert(
        FiscalYear,
        lookup={"year": year},
        values={"published_stage": published_stage, "open_stage": open_stage},
    )


@transaction.atomic
def city_plan_upsert(*, ordinal: int, name: str, visions: Iterable[tuple[int, str]]) -> CityPlan:
    plan = upsert(CityPlan, lookup={"ordinal": ordinal}, values={"name": name})
    for number, title in visions:
        upsert(CityVision, lookup={"plan": plan, "number": number}, values={"title": title})
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
    return upsert(
        WardYear,
        lookup={"ward": ward, "fiscal_year": fiscal_year},
        values={
            "slogan": slogan,
            "source_document": source_document,
            "projects_complete": projects_complete,
            "note": note,
        },
    )


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
    pillar = upsert(
        VisionPillar,
        lookup={"ward": ward, "fiscal_year": fiscal_year, "name": name},
        values={"position": position, "description": description},
    )
    visions = list(city_visions)
    if set(pillar.city_visions.all()) != set(visions):
        pillar.city_visions.set(visions)
    return pillar


@transaction.atomic
def pillar_save(*, user, pillar: VisionPillar, reason: str) -> VisionPillar:
    with audit_context(user=user, reason=reason):
        return scoped_save(user=user, instance=pillar, ward_id=pillar.ward_id)


@transaction.atomic
def ward_year_save(*, user, ward_year: WardYear, reason: str) -> WardYear:
    with audit_context(user=user, reason=reason):
        return scoped_save(user=user, instance=ward_year, ward_id=ward_year.ward_id)


@transaction.atomic
def fiscal_year_save(*, user, fiscal_year: FiscalYear, reason: str) -> FiscalYear:
    """Planners create years and edit them; stages move only through the workflow services."""
    with audit_context(user=user, reason=reason):
        return scoped_save(user=user, instance=fiscal_year, ward_id=None, planner_only=True)


@transaction.atomic
def master_save(*, user, instance, reason: str):
    """Planner-only master data: city plans and visions."""
    with audit_context(user=user, reason=reason):
        return scoped_save(user=user, instance=instance, ward_id=None, planner_only=True)


@transaction.atomic
def master_delete(*, user, instance, ward_id: int | None, reason: str) -> None:
    from django.core.exceptions import PermissionDenied

    from wards.roles import user_is_planner, user_ward_ids

    if not (user_is_planner(user) or (ward_id is not None and ward_id in user_ward_ids(user))):
        raise PermissionDenied("not allowed to delete this row")
    with audit_context(user=user, reason=reason):
        instance.delete()
