from django.contrib import admin

from kumamachi.admin import ScopedAdmin
from wards import services
from wards.models import CityPlan, CityVision, FiscalYear, VisionPillar, Ward, WardYear


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
class FiscalYearAdmin(ScopedAdmin):
    ward_path = None
    planner_only_write = True
    list_display = ["__str__", "published_stage", "open_stage"]
    # Stages move only through the workflow (open, submit, publish) on the staff screens.
    readonly_fields = ["published_stage", "open_stage"]

    def save_through_service(self, request, obj, reason):
        services.fiscal_year_save(user=request.user, fiscal_year=obj, reason=reason)


@admin.register(WardYear)
class WardYearAdmin(ScopedAdmin):
    list_display = ["fiscal_year", "ward", "slogan", "projects_complete"]
    list_filter = ["fiscal_year", ("ward", admin.RelatedOnlyFieldListFilter), "projects_complete"]
    search_fields = ["slogan", "source_document", "note"]
    scoped_choices = {"ward": "pk"}

    def save_through_service(self, request, obj, reason):
        services.ward_year_save(user=request.user, ward_year=obj, reason=reason)


@admin.register(VisionPillar)
class VisionPillarAdmin(ScopedAdmin):
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
