"""The search across all wards and years (django-filter): published projects only."""

import django_filters
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from budgets.models import Fund, Project
from wards.models import FiscalYear, VisionPillar, Ward


def _static_choices(field: forms.ModelChoiceField, objects) -> list[tuple]:
    empty = [("", field.empty_label)] if field.empty_label is not None else []
    return empty + [(field.prepare_value(obj), field.label_from_instance(obj)) for obj in objects]


def _id(value) -> int | None:
    """A database id typed in the address, or None: ``isdigit`` alone admits "²" and "٣",
    which ``int`` then refuses or reads as another number."""
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


class PillarChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.fiscal_year.wareki} {obj.ward.name_ja}：{obj.name}"


class PillarFilter(django_filters.ModelChoiceFilter):
    field_class = PillarChoiceField


class ProjectSearchFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("ことば（事業名・事業概要）"), method="filter_words", max_length=100
    )
    fiscal_year = django_filters.ModelChoiceFilter(
        label=_("年度"),
        queryset=FiscalYear.objects.filter(published_stage__isnull=False).order_by("-year"),
        empty_label=_("すべての年度"),
    )
    ward = django_filters.ModelChoiceFilter(
        label=_("区"),
        queryset=Ward.objects.order_by("position"),
        to_field_name="slug",
        empty_label=_("すべての区"),
    )
    pillar = PillarFilter(
        label=_("まちづくりの方向性"),
        queryset=VisionPillar.objects.filter(fiscal_year__published_stage__isnull=False)
        .select_related("fiscal_year", "ward")
        .order_by("-fiscal_year", "ward__position", "position"),
        empty_label=_("すべての方向性"),
    )
    fund = django_filters.ModelChoiceFilter(
        label=_("経費"),
        queryset=Fund.objects.order_by("position"),
        to_field_name="code",
        empty_label=_("すべての経費"),
    )
    is_new = django_filters.BooleanFilter(
        label=_("新規事業のみ"),
        widget=forms.CheckboxInput,
        method="filter_new",
    )

    class Meta:
        model = Project
        fields = ["q", "fiscal_year", "ward", "pillar", "fund", "is_new"]

    def fix_choices(self, *, public_years, wards, funds) -> None:
        """Give the form's widgets choices read once in the view, so rendering it reads
        nothing (validation still looks values up in each field's queryset).

        The pillars offered are those of the chosen year and ward (pillars belong to one
        ward-year: hundreds of wards over decades would be a list nobody can use); any
        published pillar still validates, and one already chosen stays selected."""
        fields = self.form.fields
        fields["fiscal_year"].widget.choices = _static_choices(fields["fiscal_year"], public_years)
        fields["ward"].widget.choices = _static_choices(fields["ward"], wards)
        fields["fund"].widget.choices = _static_choices(fields["fund"], funds)
        data = self.data or {}
        year, ward, chosen = data.get("fiscal_year"), data.get("ward"), data.get("pillar")
        if ward and "\x00" in str(ward):
            ward = None  # PostgreSQL refuses NUL in a text parameter; no slug has one.
        wanted = Q(pk__in=[])
        if year and ward and (year_id := _id(year)) is not None:
            wanted |= Q(fiscal_year=year_id, ward__slug=ward)
        if chosen and (pillar_id := _id(chosen)) is not None:
            wanted |= Q(pk=pillar_id)
        pillar = fields["pillar"]
        if year and ward:
            pillars = list(pillar.queryset.filter(wanted))
        else:
            pillars = list(pillar.queryset.filter(wanted)) if chosen else []
            pillar.help_text = _("年度と区を選ぶと、その区の方向性で絞り込めます。")
        pillar.widget.choices = _static_choices(pillar, pillars)

    def filter_words(self, queryset, name, value):
        for word in value.split():
            queryset = queryset.filter(Q(name__icontains=word) | Q(summary__icontains=word))
        return queryset

    def filter_new(self, queryset, name, value):
        return queryset.filter(is_new=True) if value else queryset
