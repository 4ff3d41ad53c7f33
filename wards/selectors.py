"""Reads of wards, fiscal years and pillars."""

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from wards.models import FiscalYear, Ward, WardYear


def ward_list() -> QuerySet[Ward]:
    return Ward.objects.order_by("position")


def fiscal_year_list() -> QuerySet[FiscalYear]:
    return FiscalYear.objects.order_by("-year")


def fiscal_year_public_list() -> QuerySet[FiscalYear]:
    """Years with at least one stage the public may see, newest first."""
    return fiscal_year_list().filter(published_stage__isnull=False)


@dataclass(frozen=True)
class YearContext:
    """A public page's year, the years of the year switch, and the latest earlier year
    with published figures, read in one query."""

    fiscal_year: FiscalYear
    public_years: list[FiscalYear]
    previous_public: FiscalYear | None
    all_years: dict[int, FiscalYear]

    def get(self, year: int) -> FiscalYear:
        """Another year of those read (a 404 when there is none)."""
        if year not in self.all_years:
            raise Http404(f"No fiscal year {year}")
        return self.all_years[year]


def fiscal_year_context(*, year: int | None) -> YearContext | None:
    """``year`` (the latest public one, or the latest of all, for None); None when there is
    no year at all. An unknown year is a 404."""
    years = list(fiscal_year_list())
    public = [fy for fy in years if fy.published_stage is not None]
    if year is None:
        chosen = (public or years or [None])[0]
        if chosen is None:
            return None
    else:
        chosen = next((fy for fy in years if fy.year == year), None)
        if chosen is None:
            raise Http404(f"No fiscal year {year}")
    previous = next((fy for fy in public if fy.year < chosen.year), None)
    return YearContext(
        fiscal_year=chosen,
        public_years=public,
        previous_public=previous,
        all_years={fy.year: fy for fy in years},
    )


def ward_in(wards: list[Ward], *, slug: str) -> Ward:
    """The ward of ``slug`` among ``wards`` already read (404 when it is not there)."""
    for ward in wards:
        if ward.slug == slug:
            return ward
    raise Http404(f"No ward {slug}")


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


def ward_year_list(*, fiscal_year: FiscalYear) -> QuerySet[WardYear]:
    return WardYear.objects.filter(fiscal_year=fiscal_year).select_related("ward")
