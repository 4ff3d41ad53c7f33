"""The admin base every ledger model uses: rows scoped to the user's wards, writes through
the services with a reason, and another ward's id answering 404, never the object."""

from concurrency.exceptions import RecordModifiedError
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpResponseRedirect
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from kumamachi.security import log_refused
from wards import roles
from wards.services import master_delete

STALE_MESSAGE = _(
    "この画面を開いた後に、他の人がこのデータを保存しました。"
    "保存されていません。最新の内容を確認してから、もう一度編集してください。"
)


class ReasonFormMixin(forms.ModelForm):
    """Adds the reason recorded in the history, and refuses a save over a newer version."""

    change_reason = forms.CharField(
        label=_("変更理由"),
        required=False,
        max_length=500,
        help_text=_("履歴に記録されます。空欄の場合は「管理画面で編集」と記録します。"),
    )

    def clean(self):
        cleaned = super().clean()
        meta = getattr(self.instance, "_concurrencymeta", None)
        if meta is not None and self.instance.pk:
            field = meta.field.name
            saved = type(self.instance)._default_manager.filter(pk=self.instance.pk)
            current = saved.values_list(field, flat=True).first()
            if field in self.fields and cleaned.get(field) != current:
                raise ValidationError(STALE_MESSAGE, code="stale")
        return cleaned


class ScopedAdmin(SimpleHistoryAdmin):
    """Base admin: ``ward_path`` is how a row reaches its ward (None: city-wide data)."""

    ward_path: str | None = "ward"
    planner_only_write = False
    # Foreign keys whose choices are scoped to the user's wards, with their ward path.
    scoped_choices: dict[str, str] = {}

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if not self._audited():
            # Django's own history page and template for models without an audit history.
            self.object_history_template = None

    def _audited(self) -> bool:
        return hasattr(self.model._meta, "simple_history_manager_attribute")

    def get_urls(self):
        # Wards and city plans keep no audit history: no simple_history version pages.
        return super().get_urls() if self._audited() else admin.ModelAdmin.get_urls(self)

    def history_view(self, request, object_id, extra_context=None):
        if self._audited():
            return super().history_view(request, object_id, extra_context)
        return admin.ModelAdmin.history_view(self, request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """simple_history's page of an old version is a form: a POST saves it (reverts the
        row) after checking only the *view* permission, and that on the old version's ward.
        The row as it is now decides: another ward's row is a 404, and saving needs the
        change permission on it."""
        current = self.get_object(request, unquote(object_id))  # scoped: 404 if not ours
        if request.method == "POST" and not self.has_change_permission(request, current):
            log_refused(request, f"admin-revert:{self.model._meta.model_name}", object_id)
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = type(
            f"{self.model.__name__}AdminForm", (ReasonFormMixin,), {"__module__": __name__}
        )
        return super().get_form(request, obj, change=change, **kwargs)

    # --- scoping ---------------------------------------------------------------------------

    def _ward_id(self, obj) -> int | None:
        if self.ward_path is None or obj is None:
            return None
        value = obj
        for part in self.ward_path.split("__"):
            value = getattr(value, part, None)
            if value is None:
                return None
        return value.pk

    def _in_scope(self, request, obj) -> bool:
        if obj is None or roles.user_is_planner(request.user) or self.ward_path is None:
            return True
        return self._ward_id(obj) in roles.user_ward_ids(request.user)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.ward_path is None:
            return queryset
        return roles.scope_to_user_wards(queryset, request.user, self.ward_path)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except RecordModifiedError:
            # Someone saved between validation and our save: nothing was written.
            messages.error(request, STALE_MESSAGE)
            return HttpResponseRedirect(request.path)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            log_refused(request, f"admin:{self.model._meta.model_name}", object_id)
            raise Http404(_("見つかりません。"))
        return obj

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        path = self.scoped_choices.get(db_field.name)
        if path is not None and formfield is not None:
            formfield.queryset = roles.scope_to_user_wards(formfield.queryset, request.user, path)
        return formfield

    # --- permissions -----------------------------------------------------------------------

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._in_scope(request, obj)

    def has_change_permission(self, request, obj=None):
        if self.planner_only_write and not roles.user_is_planner(request.user):
            return False
        return super().has_change_permission(request, obj) and self._in_scope(request, obj)

    def has_add_permission(self, request, *args):
        if self.planner_only_write and not roles.user_is_planner(request.user):
            return False
        return super().has_add_permission(request, *args)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._in_scope(request, obj)

    # --- writes through the services ------------------------------------------------------

    def save_through_service(self, request, obj, reason: str):  # pragma: no cover - abstract
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get("change_reason") or str(
            _("管理画面で編集") if change else _("管理画面で登録")
        )
        try:
            self.save_through_service(request, obj, reason)
        except PermissionDenied:
            log_refused(request, f"admin-save:{self.model._meta.model_name}", obj.pk)
            raise

    def delete_model(self, request, obj):
        master_delete(
            user=request.user,
            instance=obj,
            ward_id=self._ward_id(obj),
            reason=str(_("管理画面で削除")),
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def save_related(self, request, form, formsets, change):
        try:
            super().save_related(request, form, formsets, change)
        except ValidationError as exc:  # pragma: no cover - forms validate first
            raise PermissionDenied(exc) from exc


def amount_in_thousands(field_name: str, label):
    """A list column showing a yen field in thousand yen."""
    from budgets.formatting import sen

    @admin.display(description=label, ordering=field_name)
    def column(obj):
        return sen(getattr(obj, field_name))

    return column


__all__ = ["ScopedAdmin", "amount_in_thousands", "models"]
