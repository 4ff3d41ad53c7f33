"""Public pages: the city, a ward and a project of a fiscal year. Published stages only."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from budgets import selectors
from budgets.tables import CityFundTable, WardLedgerTable
from wards import selectors as ward_selectors


def _years_context(fiscal_year) -> dict:
    return {
        "fiscal_year": fiscal_year,
        "public_years": list(ward_selectors.fiscal_year_public_list()),
    }


def city(request: HttpRequest, year: int | None = None) -> HttpResponse:
    if year is None:
        fiscal_year = ward_selectors.fiscal_year_latest_public()
        if fiscal_year is None:
            return render(request, "budgets/empty.html", status=200)
    else:
        fiscal_year = ward_selectors.fiscal_year_get(year=year)
    rollup = selectors.city_rollup(fiscal_year=fiscal_year)
    fund_tables = [
        CityFundTable(
            rollup,
            index,
            caption=_("%(year)s %(fund)s（単位：千円）")
            % {"year": fiscal_year.wareki, "fund": fund.name_ja},
            caption_id=f"city-{fund.code}",
        )
        for index, fund in enumerate(rollup.funds)
    ]
    ward_years = list(ward_selectors.ward_year_list(fiscal_year=fiscal_year))
    return render(
        request,
        "budgets/city.html",
        {
            **_years_context(fiscal_year),
            "rollup": rollup,
            "fund_tables": [
                (fund, table, city_total, rollup.allocated_to_wards.get(fund.id))
                for fund, table, city_total in zip(
                    rollup.funds, fund_tables, rollup.city, strict=True
                )
            ],
            "partial_ward_years": [wy for wy in ward_years if not wy.projects_complete],
            "noted_ward_years": [wy for wy in ward_years if wy.note],
        },
    )


def ward(request: HttpRequest, year: int, ward: str) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    ward_obj = ward_selectors.ward_get(slug=ward)
    ledger = selectors.ward_ledger(fiscal_year=fiscal_year, ward=ward_obj)
    table = WardLedgerTable(
        ledger,
        caption=_("%(year)s %(ward)s の事業（単位：千円）")
        % {"year": fiscal_year.wareki, "ward": ward_obj.name_ja},
        caption_id="ward-ledger",
    )
    return render(
        request,
        "budgets/ward.html",
        {
            **_years_context(fiscal_year),
            "ward": ward_obj,
            "wards": list(ward_selectors.ward_list()),
            "ward_year": ward_selectors.ward_year_get(ward=ward_obj, fiscal_year=fiscal_year),
            "ledger": ledger,
            "table": table,
        },
    )


def project(request: HttpRequest, year: int, ward: str, pk: int) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    ward_obj = ward_selectors.ward_get(slug=ward)
    detail = selectors.project_detail(fiscal_year=fiscal_year, ward=ward_obj, pk=pk)
    return render(
        request,
        "budgets/project.html",
        {**_years_context(fiscal_year), "ward": ward_obj, "detail": detail},
    )
