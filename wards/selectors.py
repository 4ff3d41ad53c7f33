"""Reads of wards, fiscal years and pillars."""

from django.db.models import QuerySet
from django.http import Http404

from wards.models import FiscalYear, VisionPillar, Ward, WardYear


def ward_list() -> QuerySet[Ward]:
    return Ward.objects.order_by("position")


def fiscal_year_list() -> QuerySet[FiscalYear]:
    return FiscalYear.objects.order_by("-year")


def fiscal_year_public_list() -> QuerySet[FiscalYear]:
    """Years with at least one stage the public may see, newest first."""
    return fiscal_year_list().filter(published_stage__isnull=False)


def fiscal_year_latest_public() -> FiscalYear | None:
    return fiscal_year_public_list().first() or fiscal_year_list().first()


def fiscal_year_get(*, year: int) -> FiscalYear:
    try:
        return FiscalYear.objects.get(year=year)
    except FiscalYear.DoesNotExist:
        raise Http404(f"No fiscal year {year}") from None


def ward_get(*, slug: str) -> Ward:
    try:
        return Ward.objects.get(slug=slug)
    except Ward.DoesNotExist:
        raise Http404(f"No ward {slug}") from None


def ward_year_get(*, ward: Ward, fiscal_year: FiscalYear) -> WardYear | None:
    return WardYear.objects.filter(ward=ward, fiscal_year=fiscal_year).first()


def pillar_list(*, ward: Ward, fiscal_year: FiscalYear) -> QuerySet[VisionPillar]:
    return (
        VisionPillar.objects.filter(ward=ward, fiscal_year=fiscal_year)
        .prefetch_related("city_visions__plan")
        .order_by("position")
    )


def ward_year_list(*, fiscal_year: FiscalYear) -> QuerySet[WardYear]:
    return WardYear.objects.filter(fiscal_year=fiscal_year).select_related("ward")
