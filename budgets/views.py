"""Public pages (the city, a ward and a project of a fiscal year: published stages only)
and the staff screens (entry sheet, stage workflow, corrections, history)."""

from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from budgets import charts, exports, imports, selectors, services
from budgets.exports import XLSX_CONTENT_TYPE as XLSX
from budgets.filters import ProjectSearchFilter
from budgets.forms import (
    CompareYearsForm,
    CorrectionForm,
    EntrySheetForm,
    ReasonForm,
    WorkbookImportForm,
    YearRangeForm,
    entry_initial,
)
from budgets.tables import (
    CityFundTable,
    SearchTable,
    WardLedgerTable,
    WardTotalsTable,
    correction_targets,
    entry_sheet_rows,
)
from kumamachi.pagecache import cache_public_page
from kumamachi.security import log_refused
from wards import roles
from wards import selectors as ward_selectors
from wards.models import Stage


def _public_years() -> list:
    return list(ward_selectors.fiscal_year_public_list())


def _years_context(years: ward_selectors.YearContext) -> dict:
    return {"fiscal_year": years.fiscal_year, "public_years": years.public_years}


@cache_public_page
def city(request: HttpRequest, year: int | None = None) -> HttpResponse:
    years = ward_selectors.fiscal_year_context(year=year)
    if years is None:
        return render(request, "budgets/empty.html", status=200)
    fiscal_year = years.fiscal_year
    # Only the wards with projects or an allocation that year have a row: the others are
    # not even summed (at national scale, most wards of the database are not this year's).
    wards = selectors.ward_list_of_year(fiscal_year=fiscal_year)
    rollup = selectors.city_rollup(fiscal_year=fiscal_year, wards=wards)
    fund_tables = [
        CityFundTable(
            rollup,
            index,
            caption=_("%(year)s %(fund)s（単位：千円）")
            % {"year": fiscal_year.short_label, "fund": fund.display_name},
            caption_id=f"city-{fund.code}",
        )
        for index, fund in enumerate(rollup.funds)
    ]
    ward_years = list(ward_selectors.ward_year_list(fiscal_year=fiscal_year))
    return render(
        request,
        "budgets/city.html",
        {
            **_years_context(years),
            "rollup": rollup,
            "fund_tables": [
                (fund, table, city_total, rollup.allocated_to_wards.get(fund.id), chart)
                for fund, table, city_total, chart in zip(
                    rollup.funds,
                    fund_tables,
                    rollup.city,
                    [charts.city_chart(rollup, i) for i in range(len(rollup.funds))],
                    strict=True,
                )
            ],
            "partial_ward_years": [wy for wy in ward_years if not wy.projects_complete],
            "noted_ward_years": [wy for wy in ward_years if wy.note],
        },
    )


@cache_public_page
def ward(request: HttpRequest, year: int, ward: str) -> HttpResponse:
    years = ward_selectors.fiscal_year_context(year=year)
    fiscal_year = years.fiscal_year
    wards = selectors.ward_list_flagged(fiscal_year=fiscal_year)
    ward_obj = ward_selectors.ward_in(wards, slug=ward)
    previous_year = selectors.previous_year_totals(previous=years.previous_public, ward=ward_obj)
    # The comparison's query already read the funds: the ledger reuses them.
    ledger = selectors.ward_ledger(
        fiscal_year=fiscal_year,
        ward=ward_obj,
        funds=[row.fund for row in previous_year.funds] if previous_year else None,
    )
    table = WardLedgerTable(
        ledger,
        caption=_("%(year)s %(ward)s の事業（単位：千円）")
        % {"year": fiscal_year.short_label, "ward": ward_obj.display_name},
        caption_id="ward-ledger",
    )
    return render(
        request,
        "budgets/ward.html",
        {
            **_years_context(years),
            "ward": ward_obj,
            "wards": [w for w in wards if w.in_year or w.pk == ward_obj.pk],
            "ward_year": ledger.ward_year,
            "ledger": ledger,
            "table": table,
            "stage_chart": charts.ward_stage_chart(ledger),
            "pillar_chart": charts.ward_pillar_chart(ledger),
            "previous_year": previous_year,
            "comparison_rows": list(zip(ledger.fund_totals, previous_year.funds, strict=True))
            if previous_year
            else [],
            "stages_all": list(Stage),
        },
    )


@cache_public_page
def project(request: HttpRequest, year: int, ward: str, pk: int) -> HttpResponse:
    years = ward_selectors.fiscal_year_context(year=year)
    fiscal_year = years.fiscal_year
    ward_obj = ward_selectors.ward_get(slug=ward)
    detail = selectors.project_detail(fiscal_year=fiscal_year, ward=ward_obj, pk=pk)
    return render(
        request,
        "budgets/project.html",
        {
            **_years_context(years),
            "ward": ward_obj,
            "detail": detail,
            "chart": charts.project_chart(detail),
        },
    )


@cache_public_page
def search(request: HttpRequest) -> HttpResponse:
    project_filter = ProjectSearchFilter(
        request.GET or None, queryset=selectors.project_search_rows()
    )
    public_years = _public_years()
    project_filter.fix_choices(
        public_years=public_years,
        wards=list(ward_selectors.ward_list()),
        funds=selectors.fund_list(),
    )
    rows = project_filter.qs if project_filter.is_bound else selectors.project_search_rows()
    table = SearchTable(rows, caption=_("検索結果（単位：千円）"), caption_id="search-results")
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    # Fetched here, not while the template renders.
    table.page.object_list = list(table.page.object_list)
    return render(
        request,
        "budgets/search.html",
        {"filter": project_filter, "table": table, "public_years": public_years},
        status=400 if project_filter.is_bound and project_filter.errors else 200,
    )


@cache_public_page
def compare(request: HttpRequest) -> HttpResponse:
    """Two years of the city side by side: each ward's totals per fund and stage."""
    form = CompareYearsForm(request.GET)
    if not form.is_valid():
        return render(request, "budgets/bad_request.html", {"form": form}, status=400)
    years = ward_selectors.fiscal_year_context(year=form.cleaned_data["a"])
    funds, wards = selectors.fund_list(), list(ward_selectors.ward_list())
    rollups = [
        selectors.city_rollup(fiscal_year=years.get(year), funds=funds, wards=wards)
        for year in (form.cleaned_data["a"], form.cleaned_data["b"])
    ]
    return render(
        request,
        "budgets/compare.html",
        {
            "public_years": years.public_years,
            "fiscal_year": None,
            "rollups": rollups,
            "rows": selectors.compare_rows(rollups[0], rollups[1]),
            "stages": list(Stage),
        },
    )


@cache_public_page
def glossary(request: HttpRequest) -> HttpResponse:
    return render(request, "budgets/glossary.html", {"public_years": _public_years()})


# --- Staff ------------------------------------------------------------------------------------


def _ward_for_staff(request: HttpRequest, slug: str):
    ward_obj = roles.user_ward_get(request.user, slug=slug)
    if ward_obj is None:
        ward_selectors.ward_get(slug=slug)  # an unknown ward is a 404, a forbidden one a 403
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
    if not form.is_valid() and form.data.get("reason", "").strip():
        # Typed but refused (too long, a control character): say why, not "enter a reason".
        for error in form.errors["reason"]:
            messages.error(request, _("差し戻しの理由：%(error)s") % {"error": error})
        return redirect("budgets:staff-review", year=year)
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


def _download(
    content: bytes, filename: str, content_type: str, ascii_name: str | None = None
) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = attachment_header(filename, ascii_name)
    return response


def attachment_header(filename: str, ascii_name: str | None = None) -> str:
    """RFC 6266/5987: an ASCII filename for old clients and filename* with the Japanese one."""
    if filename.isascii():
        return content_disposition_header(True, filename)
    fallback = ascii_name or filename.encode("ascii", "ignore").decode() or "kumamachi"
    fallback = fallback.replace("\\", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def year_export(request: HttpRequest, year: int) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    content = exports.year_workbook(fiscal_year=fiscal_year)
    return _download(
        content,
        f"{fiscal_year.wareki}_区のまちづくり予算.xlsx",
        XLSX,
        f"kumamachi_{fiscal_year.year}.xlsx",
    )


def ward_export(request: HttpRequest, year: int, ward: str) -> HttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    ward_obj = ward_selectors.ward_get(slug=ward)
    content = exports.year_workbook(fiscal_year=fiscal_year, wards=[ward_obj])
    return _download(
        content,
        f"{fiscal_year.wareki}_{ward_obj.name_ja}.xlsx",
        XLSX,
        f"kumamachi_{fiscal_year.year}_{ward_obj.slug}.xlsx",
    )


def cross_year_export(request: HttpRequest) -> HttpResponse:
    form = YearRangeForm(request.GET)
    if not form.is_valid():
        return render(request, "budgets/bad_request.html", {"form": form}, status=400)
    first, last = form.cleaned_data["first"], form.cleaned_data["last"]
    content = exports.cross_year_workbook(first=first, last=last)
    return _download(
        content, f"年度比較_{first}-{last}.xlsx", XLSX, f"kumamachi_{first}-{last}.xlsx"
    )


# Streamed: the rows are read and written a few hundred at a time, so memory stays flat
# however many projects the year has (the year is looked up first: a 404 is a 404).
def open_data_csv(request: HttpRequest, year: int) -> StreamingHttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    response = StreamingHttpResponse(
        exports.open_data_csv_chunks(fiscal_year), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = attachment_header(f"kumamachi_{year}.csv")
    return response


def open_data_json(request: HttpRequest, year: int) -> StreamingHttpResponse:
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    response = StreamingHttpResponse(
        exports.open_data_json_chunks(fiscal_year),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = content_disposition_header(False, f"kumamachi_{year}.json")
    return response


@cache_public_page
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
    if ward is not None:
        wards = [_ward_for_staff(request, ward)]
    else:
        user_wards = roles.user_ward_ids(request.user)
        wards = list(ward_selectors.ward_list().filter(pk__in=user_wards))
    if not wards:
        raise PermissionDenied(_("この年度のデータを出力する権限がありません。"))
    content = exports.year_workbook(
        fiscal_year=fiscal_year,
        stages=selectors.staff_stages(fiscal_year),
        wards=wards,
        every_ward_id=roles.ward_ids_every(request.user),  # read with the roles
        drafts=True,
    )
    name = wards[0].name_ja if len(wards) == 1 else "担当区"
    slug = wards[0].slug if len(wards) == 1 else "wards"
    return _download(
        content,
        f"{fiscal_year.wareki}_{name}_入力中.xlsx",
        XLSX,
        f"kumamachi_{fiscal_year.year}_{slug}_draft.xlsx",
    )


# --- Importing a filled-in workbook (Excelで入力する) ------------------------------------------
# Kept together here at the end of the module. The CSRF check reads the request body, so
# the outer view turns it off and runs it itself once the body's size is known to be allowed.


def _import_page(
    request: HttpRequest,
    fiscal_year,
    ward_obj,
    *,
    error: str = "",
    closed: str | None = None,
    form: WorkbookImportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "staff/import.html",
        {
            "fiscal_year": fiscal_year,
            "ward": ward_obj,
            "form": form or WorkbookImportForm(),
            "error": error,
            "closed": closed,
            "max_size": imports.size_text(imports.MAX_UPLOAD_BYTES),
        },
        status=status,
    )


def _import_preview(request: HttpRequest, fiscal_year, ward_obj, status: int, **context):
    return render(
        request,
        "staff/import_preview.html",
        {
            "fiscal_year": fiscal_year,
            "ward": ward_obj,
            "form": WorkbookImportForm(),
            "problems": [],
            "notices": [],
            "token": "",
            "rejected": False,
            **context,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
@csrf_exempt  # checked by _staff_import (csrf_protect) after the size check
def staff_import(request: HttpRequest, year: int, ward: str) -> HttpResponse:
    """Upload a filled-in workbook, preview its changes, confirm them."""
    fiscal_year = ward_selectors.fiscal_year_get(year=year)
    ward_obj = _ward_for_staff(request, ward)
    if request.method == "POST" and imports.request_too_large(request.META.get("CONTENT_LENGTH")):
        # Refused before a byte of the body is read.
        return _import_page(
            request, fiscal_year, ward_obj, error=imports.too_large_message(), status=400
        )
    return _staff_import(request, fiscal_year=fiscal_year, ward_obj=ward_obj)


@csrf_protect
def _staff_import(request: HttpRequest, *, fiscal_year, ward_obj) -> HttpResponse:
    closed = imports.import_closed_reason(user=request.user, fiscal_year=fiscal_year, ward=ward_obj)
    if request.method != "POST":
        return _import_page(request, fiscal_year, ward_obj, closed=closed)
    if "token" in request.POST:
        return _import_confirm(request, fiscal_year, ward_obj)
    if closed:
        return _import_page(request, fiscal_year, ward_obj, error=closed, closed=closed, status=400)
    form = WorkbookImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _import_page(request, fiscal_year, ward_obj, form=form, status=400)
    upload = form.cleaned_data["file"]
    file_name = imports.upload_name(upload.name)
    try:
        result = imports.read_workbook(upload, fiscal_year=fiscal_year, ward=ward_obj)
    except imports.ImportRefused as refused:
        return _import_page(
            request,
            fiscal_year,
            ward_obj,
            error=_("「%(name)s」を取り込めません：%(message)s")
            % {"name": file_name, "message": refused.message},
            status=400,
        )
    token = ""
    if result.ok and result.changes:
        token = imports.sign_changes(user=request.user, result=result, file_name=file_name)
    return _import_preview(
        request,
        fiscal_year,
        ward_obj,
        200 if result.ok else 400,
        stage=result.stage,
        file_name=file_name,
        changes=result.changes,
        problems=[str(p) for p in result.problems],
        notices=[str(n) for n in result.notices],
        generated_at=result.generated_label,
        token=token,
    )


def _import_confirm(request: HttpRequest, fiscal_year, ward_obj) -> HttpResponse:
    try:
        signed = imports.unsign_changes(
            request.POST.get("token", ""), user=request.user, fiscal_year=fiscal_year, ward=ward_obj
        )
    except imports.ImportRefused as refused:
        return _import_page(request, fiscal_year, ward_obj, error=refused.message, status=400)
    try:
        changed = services.figures_save_sheet(
            user=request.user,
            fiscal_year=fiscal_year,
            ward=ward_obj,
            rows=signed.sheet_rows(),
            stage=signed.stage,
        )
    except services.SaveRejected as rejected:
        return _import_preview(
            request,
            fiscal_year,
            ward_obj,
            409 if rejected.conflict else 400,
            stage=signed.stage,
            file_name=signed.file_name,
            changes=signed.changes,
            problems=[p.message for p in rejected.problems],
            rejected=True,
        )
    messages.success(
        request,
        _("「%(name)s」から取り込みました（%(n)d件の変更）。")
        % {"name": signed.file_name, "n": changed},
    )
    return redirect("budgets:staff-sheet", year=fiscal_year.year, ward=ward_obj.slug)
