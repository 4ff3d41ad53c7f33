"""Forms of the staff screens, and how typed amounts are read.

Amounts are typed in thousand yen as the documents print them; yen precision is allowed as
up to three decimals (1,526.843). Full-width digits, commas and points are accepted.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from budgets.formatting import sen
from budgets.models import MAX_AMOUNT_YEN
from budgets.services import NOT_ENTERED, FigureValue
from wards.models import Stage

# Dashes people type for "no budget" (―), after NFKC normalisation.
NO_BUDGET_MARKS = frozenset({"―", "-", "—", "–", "‐", "ー", "−", "‒", "─"})
_NUMBER = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$")
MAX_INPUT_LENGTH = 40


def parse_thousand_yen(text: str | None) -> FigureValue:
    """Read a typed amount in thousand yen: whole yen, None for ―, NOT_ENTERED for blank.

    Raises ValidationError with a Japanese message quoting what was typed.
    """
    raw = "" if text is None else str(text)
    if len(raw) > MAX_INPUT_LENGTH:
        raise ValidationError(_("入力が長すぎます。金額を千円単位で入力してください。"))
    value = unicodedata.normalize("NFKC", raw).strip().replace(" ", "")
    value = value.replace("、", ",").replace("，", ",").replace("．", ".")
    if value == "":
        return NOT_ENTERED
    if value in NO_BUDGET_MARKS:
        return None
    quoted = raw.strip()
    if value[0] in "-−" and _NUMBER.match(value[1:]):
        raise ValidationError(
            _("「%(value)s」：マイナスの金額は入力できません。") % {"value": quoted}
        )
    match = _NUMBER.match(value)
    if not match:
        raise ValidationError(_("「%(value)s」は数値ではありません。") % {"value": quoted})
    decimals = match.group(1)
    if decimals is not None and len(decimals) > 3:
        raise ValidationError(
            _("「%(value)s」：小数点以下は3桁（1円単位）までです。") % {"value": quoted}
        )
    try:
        yen = int(Decimal(value.replace(",", "")) * 1000)
    except InvalidOperation as exc:  # pragma: no cover - the pattern above rules this out
        raise ValidationError(_("「%(value)s」は数値ではありません。") % {"value": quoted}) from exc
    if yen > MAX_AMOUNT_YEN:
        raise ValidationError(
            _("「%(value)s」は大きすぎます（上限 %(max)s千円）。")
            % {"value": quoted, "max": sen(MAX_AMOUNT_YEN)}
        )
    return yen


def format_thousand_yen(value: FigureValue) -> str:
    """The inverse of parse_thousand_yen, for pre-filling inputs."""
    if value is NOT_ENTERED:
        return ""
    if value is None:
        return "―"
    return sen(value)


class TextField(forms.CharField):
    """A CharField whose refusal of NUL says so (Django's Japanese catalogue has
    "何か文字を入力してください。" for it, which reads as "the field is empty")."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            ProhibitNullCharactersValidator(
                message=gettext_lazy("入力できない制御文字（NUL）が含まれています。")
            )
            if isinstance(v, ProhibitNullCharactersValidator)
            else v
            for v in self.validators
        ]


class ThousandYenField(TextField):
    """A text input of an amount in thousand yen; cleans to yen, None (―) or NOT_ENTERED."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", MAX_INPUT_LENGTH)
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "size": 12}),
        )
        super().__init__(**kwargs)

    def clean(self, value):
        return parse_thousand_yen(super().clean(value))


class EntrySheetForm(forms.Form):
    """One amount, reason and version per project of a ward at the open stage."""

    def __init__(self, *args, projects, stage: Stage, initial_values: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.projects = list(projects)
        self.stage = stage
        # The stage the sheet was opened for: a sheet left open across a publication must
        # not land in the next stage.
        self.fields["stage"] = forms.TypedChoiceField(
            choices=Stage.choices, coerce=int, initial=stage, widget=forms.HiddenInput
        )
        for project in self.projects:
            label = f"{project.name} {stage.label}（千円）"
            self.fields[f"amount_{project.pk}"] = ThousandYenField(
                label=label, initial=initial_values[project.pk]["amount"]
            )
            self.fields[f"reason_{project.pk}"] = TextField(
                label=f"{project.name} 補正理由",
                required=False,
                max_length=1000,
                initial=initial_values[project.pk]["reason"],
                widget=forms.TextInput(attrs={"size": 24}),
            )
            self.fields[f"version_{project.pk}"] = forms.IntegerField(
                min_value=0, initial=initial_values[project.pk]["version"], widget=forms.HiddenInput
            )

    def rows(self) -> list[dict]:
        """The cleaned rows, for figures_save_sheet."""
        return [
            {
                "project_id": project.pk,
                "value": self.cleaned_data[f"amount_{project.pk}"],
                "reason": self.cleaned_data[f"reason_{project.pk}"].strip(),
                "version": self.cleaned_data[f"version_{project.pk}"],
            }
            for project in self.projects
        ]

    def add_row_error(self, project_id: int | None, field: str | None, message: str) -> None:
        name = f"{field}_{project_id}" if project_id is not None and field else None
        if not hasattr(self, "cleaned_data"):
            # An unbound form (the sheet shown afresh after a conflict) has none, and
            # Form.add_error needs it.
            self.cleaned_data = {}
        self.add_error(name if name in self.fields else None, message)

    def full_clean(self):
        super().full_clean()
        # Name the project and the field in each message, as staff read them in a list too.
        for project in self.projects:
            for field, label in (("amount", self.stage.label), ("reason", _("補正理由"))):
                name = f"{field}_{project.pk}"
                if name in self.errors:
                    self.errors[name] = self.error_class(
                        [f"{project.name}（{label}）：{msg}" for msg in self.errors[name]]
                    )


class ReasonForm(forms.Form):
    reason = TextField(
        label=gettext_lazy("理由"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )


class CorrectionForm(forms.Form):
    """A planner's correction of one published figure."""

    amount = ThousandYenField(label=gettext_lazy("訂正後の金額（千円）"))
    reason = TextField(
        label=gettext_lazy("訂正理由"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )
    version = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


def entry_initial(projects, stage: Stage | None) -> dict[int, dict]:
    """Each project's input at the open stage: its figure there, else the previous stage's."""
    initial = {}
    for project in projects:
        if stage is None:
            initial[project.pk] = {"amount": "", "reason": "", "version": 0}
            continue
        if getattr(project, f"entered_{stage}"):
            amount = format_thousand_yen(getattr(project, f"amount_{stage}"))
        elif stage.previous and getattr(project, f"entered_{stage.previous}"):
            amount = format_thousand_yen(getattr(project, f"amount_{stage.previous}"))
        else:
            amount = ""
        initial[project.pk] = {
            "amount": amount,
            "reason": getattr(project, f"reason_{stage}") or "",
            "version": getattr(project, f"version_{stage}"),
        }
    return initial


class YearRangeForm(forms.Form):
    """``?from=2021&to=2024`` for the cross-year workbook."""

    first = forms.IntegerField(label=gettext_lazy("から"), min_value=1989, max_value=2200)
    last = forms.IntegerField(label=gettext_lazy("まで"), min_value=1989, max_value=2200)

    def __init__(self, data=None, **kwargs):
        if data is not None:
            data = {"first": data.get("from"), "last": data.get("to")}
        super().__init__(data, **kwargs)

    def clean(self):
        cleaned = super().clean()
        first, last = cleaned.get("first"), cleaned.get("last")
        if first is not None and last is not None:
            if first > last:
                raise forms.ValidationError(_("開始年度は終了年度以前にしてください。"))
            if last - first > 30:
                raise forms.ValidationError(_("一度に出力できるのは30年度分までです。"))
        return cleaned


class WorkbookImportForm(forms.Form):
    """The upload of a filled-in entry workbook (Excelで入力する)."""

    file = forms.FileField(
        label=gettext_lazy("入力したExcelファイル（.xlsx）"),
        help_text=gettext_lazy(
            "入力シートからダウンロードしたファイルの、入力受付中の段階の列だけに金額を"
            "千円単位で入力して保存したものを選んでください（5MBまで）。"
            "次の画面で変更点を確認してから確定します。"
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx"}),
    )


class CompareYearsForm(forms.Form):
    """``/compare/?a=2021&b=2024``: two published years."""

    a = forms.TypedChoiceField(label=gettext_lazy("年度1"), coerce=int, choices=())
    b = forms.TypedChoiceField(label=gettext_lazy("年度2"), coerce=int, choices=())

    def __init__(self, *args, **kwargs):
        from wards.models import FiscalYear

        super().__init__(*args, **kwargs)
        years = FiscalYear.objects.filter(published_stage__isnull=False).order_by("-year")
        choices = [(y.year, y.short_label) for y in years]
        self.fields["a"].choices = self.fields["b"].choices = choices
