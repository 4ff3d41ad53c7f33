from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied

from kumamachi.admin import ScopedAdmin
from kumamachi.security import log_refused
from wards import services
from wards.models import CityPlan, CityVision, FiscalYear, VisionPillar, Ward, WardYear


class VersionPageGuard:
    """simple_history's page of an old version is a form: a POST saves it (reverts the row)
    after checking only the *view* permission, and that on the old version's ward. The
    row as it is now decides: another ward's row is a 404, and saving needs the change
    permission on it."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        current = self.get_object(request, unquote(object_id))  # scoped: 404 if not ours
        if request.method == "POST" and not self.has_change_permission(request, current):
            log_refused(request, f"admin-revert:{self.model._meta.model_name}", object_id)
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


@admin.register(Ward)
class WardAdmin(ScopedAdmin):
    ward_path = None
    planner_only_write = True
    list_display = ["name_ja", "name_en", "slug", "kind", "position"]
    filter_horizontal = ["members"]

    def has_change_permission(self, request, obj=None):
        # Ward membership is who may enter what: administrators only.
        return request.user.is_superuser

    def save_through_service(self, request, obj, reason):
        services.master_save(user=request.user, instance=obj, reason=reason)


@admin.register(FiscalYear)
class FiscalYearAdmin(VersionPageGuard, ScopedAdmin):
    ward_path = None
    planner_only_write = True
    list_display = ["__str__", "published_stage", "open_stage"]
    # Stages move only through the workflow (open, submit, publish) on the staff screens.
    readonly_fields = ["published_stage", "open_stage"]

    def save_through_service(self, request, obj, reason):
        services.fiscal_year_save(user=request.user, fiscal_year=obj, reason=reason)


@admin.register(WardYear)
class WardYearAdmin(VersionPageGuard, ScopedAdmin):
    list_display = ["fiscal_year", "ward", "slogan", "projects_complete"]
    list_filter = ["fiscal_year", ("ward", admin.RelatedOnlyFieldListFilter), "projects_complete"]
    search_fields = ["slogan", "source_document", "note"]
    scoped_choices = {"ward": "pk"}

    def save_through_service(self, request, obj, reason):
        services.ward_year_save(user=request.user, ward_year=obj, reason=reason)


@admin.register(VisionPillar)
class VisionPillarAdmin(VersionPageGuard, ScopedAdmin):
    list_display = ["name", "ward", "fiscal_year", "position"]
    list_filter = ["fiscal_year", ("ward", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "description"]
    filter_horizontal = ["city_visions"]
    scoped_choices = {"ward": "pk"}

    def save_through_service(self, request, obj, reason):
        services.pillar_save(user=request.user, pillar=obj, reason=reason)


class CityVisionInline(admin.TabularInline):
    model = CityVision
    extra = 0


@admin.register(CityPlan)
class CityPlanAdmin(ScopedAdmin):
    ward_path = None
    planner_only_write = True
    list_display = ["ordinal", "name"]
    inlines = [CityVisionInline]

    def save_through_service(self, request, obj, reason):
        services.master_save(user=request.user, instance=obj, reason=reason)
