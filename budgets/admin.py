from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from budgets import services
from budgets.models import Allocation, Correction, Fund, PrintedTotal, Project
from kumamachi.admin import ScopedAdmin, amount_in_thousands
from wards import services as ward_services


@admin.register(Fund)
class FundAdmin(ScopedAdmin):
    ward_path = None
    planner_only_write = True
    list_display = ["name_ja", "name_en", "code", "capped_by_allocation", "position"]

    def save_through_service(self, request, obj, reason):
        ward_services.master_save(user=request.user, instance=obj, reason=reason)


@admin.register(Allocation)
class AllocationAdmin(ScopedAdmin):
    planner_only_write = True
    list_display = [
        "fiscal_year",
        "ward",
        "fund",
        amount_in_thousands("amount", _("配分額（千円）")),
    ]
    list_filter = ["fiscal_year", ("ward", admin.RelatedOnlyFieldListFilter), "fund"]
    scoped_choices = {"ward": "pk"}

    def get_queryset(self, request):
        # The city-wide rows (no ward) are planners' only; scoping drops them for ward staff.
        return super().get_queryset(request).select_related("fiscal_year", "ward", "fund")

    def save_through_service(self, request, obj, reason):
        services.allocation_save(user=request.user, allocation=obj, reason=reason)


@admin.register(PrintedTotal)
class PrintedTotalAdmin(ScopedAdmin):
    planner_only_write = True
    list_display = [
        "fiscal_year",
        "ward",
        "fund",
        "stage",
        amount_in_thousands("amount", _("合計（千円）")),
    ]
    list_filter = ["fiscal_year", ("ward", admin.RelatedOnlyFieldListFilter), "fund", "stage"]
    scoped_choices = {"ward": "pk"}

    def save_through_service(self, request, obj, reason):
        ward_services.master_save(user=request.user, instance=obj, reason=reason)


@admin.register(Project)
class ProjectAdmin(ScopedAdmin):
    list_display = ["name", "number", "ward", "fiscal_year", "pillar", "fund", "is_new"]
    # Filter choices only from the user's own rows: no other ward's pillars or wards.
    list_filter = [
        "fiscal_year",
        ("ward", admin.RelatedOnlyFieldListFilter),
        ("pillar", admin.RelatedOnlyFieldListFilter),
        "fund",
        "is_new",
    ]
    search_fields = ["name", "summary", "number"]
    list_select_related = ["ward", "fiscal_year", "pillar", "fund"]
    scoped_choices = {"ward": "pk", "pillar": "ward", "previous": "ward"}

    def save_through_service(self, request, obj, reason):
        services.project_save(user=request.user, project=obj, reason=reason)


@admin.register(Correction)
class CorrectionAdmin(ScopedAdmin):
    """Corrections are made on the staff project screen; here they are only listed."""

    ward_path = "project__ward"
    list_display = ["project", "stage", "old_amount", "new_amount", "reason", "corrected_at"]
    list_filter = [
        "stage",
        "project__fiscal_year",
        ("project__ward", admin.RelatedOnlyFieldListFilter),
    ]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
