"""Public pages (the city, a ward and a project of a fiscal year: published stages only)
and the staff screens (entry sheet, stage workflow, corrections, history)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from budgets import exports, selectors, services
from budgets.exports import XLSX_CONTENT_TYPE as XLSX
from budgets.forms import CorrectionForm, EntrySheetForm, ReasonForm, YearRangeForm, entry_initial
from budgets.tables import (
    CityFundTable,
    WardLedgerTable,
    WardTotalsTable,
    correction_targets,
    entry_sheet_rows,
)
from kumamachi.security import log_refused
from wards import roles
from wards import selectors as ward_selectors
from wards.models import Stage


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


# --- Staff ------------------------------------------------------------------------------------


def _ward_for_staff(request: HttpRequest, slug: str):
    ward_obj = ward_selectors.ward_get(slug=slug)
    if not roles.user_can_enter(request.user, ward_obj):
        log_refused(request, "ward", slug)
        raise PermissionDenied(_("この区のページを見る権限がありません。"))
    return ward_obj


def _require_planner(request: HttpRequest) -> None:
    if not roles.user_is_planner(request.user):
        log_refused(request, "planner-only", request.path)
        raise PermissionDenied(_("この操作は政策企画課だけが行えます。"))


def _report(request: HttpRequest, rejected: services.SaveRejected) -> None:
    for problem in rejected.problems:
        messages.error(request, problem.message)


@login_required
def staff_home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "staff/home.html",
        {
            "years": selectors.staff_dashboard(ward_ids=roles.user_ward_ids(request.user)),
            "is_planner": roles.user_is_planner(request.user),
        },
    )


@login_required
def staff_sheet(request: HttpRequest, year: int, ward: str) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    ward_obj = _ward_for_staff(request, ward)
    sheet = selectors.entry_sheet(fiscal_year=fiscal_year, ward=ward_obj)
    editable = sheet.stage is not None and (
        sheet.submission is None or roles.user_is_planner(request.user)
    )
    form_kwargs = {
        "projects": sheet.projects,
        "stage": sheet.stage,
        "initial_values": entry_initial(sheet.projects, sheet.stage),
    }
    form = None
    status = 200
    if editable:
        form = EntrySheetForm(request.POST or None, **form_kwargs)
        if request.method == "POST":
            if form.is_valid():
                try:
                    rows = [services.SheetRow(**row) for row in form.rows()]
                    changed = services.figures_save_sheet(
                        user=request.user,
                        fiscal_year=fiscal_year,
                        ward=ward_obj,
                        rows=rows,
                        stage=Stage(form.cleaned_data["stage"]),
                    )
                except services.SaveRejected as rejected:
                    if rejected.conflict:
                        # Show what is saved now; the user's input is listed in the messages.
                        sheet = selectors.entry_sheet(fiscal_year=fiscal_year, ward=ward_obj)
                        form_kwargs.update(
                            projects=sheet.projects,
                            initial_values=entry_initial(sheet.projects, sheet.stage),
                        )
                        form = EntrySheetForm(**form_kwargs)
                    for problem in rejected.problems:
                        form.add_row_error(problem.project_id, problem.field, problem.message)
                    status = 409 if rejected.conflict else 400
                else:
                    messages.success(request, _("保存しました（%(n)d件の変更）。") % {"n": changed})
                    return redirect("budgets:staff-sheet", year=year, ward=ward)
            else:
                status = 400
    elif request.method == "POST":
        messages.error(request, _("この段階は入力を受け付けていないか、提出済みです。"))
        status = 400
    return render(
        request,
        "staff/sheet.html",
        {
            "fiscal_year": fiscal_year,
            "ward": ward_obj,
            "sheet": sheet,
            "form": form,
            "rows": entry_sheet_rows(sheet, form),
            "is_planner": roles.user_is_planner(request.user),
            "totals_table": WardTotalsTable(
                sheet.ledger,
                caption=_("%(ward)sの合計と配分額（単位：千円）") % {"ward": ward_obj.name_ja},
                caption_id="sheet-totals",
            ),
        },
        status=status,
    )


@login_required
@require_POST
def staff_submit(request: HttpRequest, year: int, ward: str) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    ward_obj = _ward_for_staff(request, ward)
    try:
        services.ward_submit(user=request.user, fiscal_year=fiscal_year, ward=ward_obj)
    except services.SaveRejected as rejected:
        _report(request, rejected)
    else:
        messages.success(request, _("提出しました。政策企画課の審査をお待ちください。"))
    return redirect("budgets:staff-sheet", year=year, ward=ward)


@login_required
@require_POST
def staff_return(request: HttpRequest, year: int, ward: str) -> HttpResponse:
    _require_planner(request)
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    ward_obj = ward_selectors.ward_get(slug=ward)
    form = ReasonForm(request.POST)
    try:
        reason = form.cleaned_data["reason"] if form.is_valid() else ""
        services.ward_return(
            user=request.user, fiscal_year=fiscal_year, ward=ward_obj, reason=reason
        )
    except services.SaveRejected as rejected:
        _report(request, rejected)
    else:
        messages.success(request, _("%(ward)sを差し戻しました。") % {"ward": ward_obj.name_ja})
    return redirect("budgets:staff-review", year=year)


@login_required
@require_POST
def staff_open(request: HttpRequest, year: int) -> HttpResponse:
    _require_planner(request)
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    try:
        stage = Stage(int(request.POST.get("stage", "0")))
    except ValueError:
        messages.error(request, _("段階の指定が正しくありません。"))
        return redirect("budgets:staff-home")
    try:
        services.stage_open(user=request.user, fiscal_year=fiscal_year, stage=stage)
    except services.SaveRejected as rejected:
        _report(request, rejected)
    else:
        messages.success(
            request,
            _("%(year)sの%(stage)sの入力受付を開始しました。")
            % {"year": fiscal_year.wareki, "stage": stage.label},
        )
    return redirect("budgets:staff-home")


@login_required
def staff_review(request: HttpRequest, year: int) -> HttpResponse:
    _require_planner(request)
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    return render(
        request,
        "staff/review.html",
        {
            "fiscal_year": fiscal_year,
            "reviews": selectors.stage_review(fiscal_year=fiscal_year),
            "return_form": ReasonForm(),
        },
    )


@login_required
@require_POST
def staff_publish(request: HttpRequest, year: int) -> HttpResponse:
    _require_planner(request)
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    try:
        publication = services.stage_publish(user=request.user, fiscal_year=fiscal_year)
    except services.SaveRejected as rejected:
        _report(request, rejected)
        return redirect("budgets:staff-review", year=year)
    messages.success(
        request,
        _("%(year)sの%(stage)sを公表しました。")
        % {"year": fiscal_year.wareki, "stage": Stage(publication.stage).label},
    )
    return redirect("budgets:staff-home")


@login_required
def staff_project(request: HttpRequest, pk: int) -> HttpResponse:
    project_obj = selectors.staff_project_get(pk=pk)
    if not roles.user_can_enter(request.user, project_obj.ward):
        log_refused(request, "project", pk)
        raise PermissionDenied(_("この事業を見る権限がありません。"))
    fiscal_year = project_obj.fiscal_year
    is_planner = roles.user_is_planner(request.user)
    detail = selectors.project_detail(
        fiscal_year=fiscal_year,
        ward=project_obj.ward,
        pk=pk,
        stages=selectors.staff_stages(fiscal_year),
    )
    correction_form = None
    status = 200
    if is_planner and request.method == "POST":
        correction_form = CorrectionForm(request.POST)
        try:
            stage = Stage(int(request.POST.get("stage", "0")))
        except ValueError:
            stage = None
        if stage is None:
            correction_form.add_error(None, _("段階の指定が正しくありません。"))
        if correction_form.is_valid():
            try:
                services.figure_correct(
                    user=request.user,
                    project=project_obj,
                    stage=stage,
                    value=correction_form.cleaned_data["amount"],
                    reason=correction_form.cleaned_data["reason"],
                    version=correction_form.cleaned_data["version"],
                )
            except services.SaveRejected as rejected:
                for problem in rejected.problems:
                    correction_form.add_error(
                        problem.field if problem.field in correction_form.fields else None,
                        problem.message,
                    )
                status = 409 if rejected.conflict else 400
            else:
                messages.success(request, _("訂正しました。公開ページに訂正として表示されます。"))
                return redirect("budgets:staff-project", pk=pk)
        else:
            status = 400
    elif request.method == "POST":
        log_refused(request, "correction", pk)
        raise PermissionDenied(_("公表後の訂正は政策企画課だけが行えます。"))
    return render(
        request,
        "staff/project.html",
        {
            "fiscal_year": fiscal_year,
            "ward": project_obj.ward,
            "detail": detail,
            "history": selectors.project_history(project=project_obj),
            "is_planner": is_planner,
            "correctable": correction_targets(detail, fiscal_year) if is_planner else [],
            "correction_form": correction_form,
        },
        status=status,
    )


# --- Downloads --------------------------------------------------------------------------------


def _download(content: bytes, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    # RFC 5987 filename* for the Japanese name, with an ASCII fallback.
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def year_export(request: HttpRequest, year: int) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    content = exports.year_workbook(fiscal_year=fiscal_year)
    return _download(content, f"{fiscal_year.wareki}_区のまちづくり予算.xlsx", XLSX)


def ward_export(request: HttpRequest, year: int, ward: str) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    ward_obj = ward_selectors.ward_get(slug=ward)
    content = exports.year_workbook(fiscal_year=fiscal_year, wards=[ward_obj])
    return _download(content, f"{fiscal_year.wareki}_{ward_obj.name_ja}.xlsx", XLSX)


def cross_year_export(request: HttpRequest) -> HttpResponse:
    form = YearRangeForm(request.GET)
    if not form.is_valid():
        return render(request, "budgets/bad_request.html", {"form": form}, status=400)
    first, last = form.cleaned_data["first"], form.cleaned_data["last"]
    content = exports.cross_year_workbook(first=first, last=last)
    return _download(content, f"年度比較_{first}-{last}.xlsx", XLSX)


def open_data_csv(request: HttpRequest, year: int) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    content = exports.open_data_csv(fiscal_year)
    return _download(content, f"kumamachi_{year}.csv", "text/csv; charset=utf-8")


def open_data_json(request: HttpRequest, year: int) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    content = exports.open_data_json(fiscal_year)
    response = HttpResponse(content, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(False, f"kumamachi_{year}.json")
    return response


def open_data(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "budgets/data.html",
        {"public_years": list(ward_selectors.fiscal_year_public_list()), "fiscal_year": None},
    )


@login_required
def staff_export(request: HttpRequest, year: int, ward: str | None = None) -> HttpResponse:
    """The staff's workbook: their own wards with the figures being entered (drafts)."""
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    wards = list(ward_selectors.ward_list().filter(pk__in=roles.user_ward_ids(request.user)))
    if ward is not None:
        ward_obj = _ward_for_staff(request, ward)
        wards = [ward_obj]
    if not wards:
        raise PermissionDenied(_("この年度のデータを出力する権限がありません。"))
    content = exports.year_workbook(
        fiscal_year=fiscal_year,
        stages=selectors.staff_stages(fiscal_year),
        wards=wards,
        drafts=True,
    )
    name = wards[0].name_ja if len(wards) == 1 else "担当区"
    return _download(content, f"{fiscal_year.wareki}_{name}_入力中.xlsx", XLSX)
