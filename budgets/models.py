"""Funds, allocations, projects and their stage figures. Money is whole yen."""

from concurrency.fields import AutoIncVersionField, IntegerVersionField
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from kumamachi.audit import AuditedModel, audit_history
from wards.models import FiscalYear, Stage, VisionPillar, Ward

# Far above any ward project (1 trillion yen); stops typos of many extra digits.
MAX_AMOUNT_YEN = 999_999_999_999


class Fund(AuditedModel):
    """A funding category: まちづくり推進経費, or 復興支援自治推進経費 totalled apart."""

    code = models.SlugField(_("コード"), max_length=32, unique=True)
    name_ja = models.CharField(_("名称"), max_length=100, unique=True)
    name_en = models.CharField(_("英語名"), max_length=100)
    position = models.PositiveSmallIntegerField(_("表示順"), unique=True)
    capped_by_allocation = models.BooleanField(
        _("配分額を上限とする"),
        default=True,
        help_text=_("区の合計がこの経費の配分額を超えてはならない場合にオンにします。"),
    )
    history = audit_history()

    class Meta:
        ordering = ["position"]
        verbose_name = _("経費")
        verbose_name_plural = _("経費")

    def __str__(self) -> str:
        return self.name_ja

    @property
    def display_name(self) -> str:
        """The name in the reader's language (Japanese unless English is chosen)."""
        return self.name_en if (get_language() or "ja").startswith("en") else self.name_ja


class Allocation(AuditedModel):
    """The money a ward or the pool receives from a fund in a year.

    A row without a ward is the city total of that fund, where the documents state one.
    """

    fiscal_year = models.ForeignKey(
        FiscalYear, on_delete=models.PROTECT, related_name="allocations", verbose_name=_("年度")
    )
    ward = models.ForeignKey(
        Ward,
        on_delete=models.PROTECT,
        related_name="allocations",
        null=True,
        blank=True,
        verbose_name=_("区（空欄は市全体）"),
    )
    fund = models.ForeignKey(Fund, on_delete=models.PROTECT, related_name="allocations")
    amount = models.BigIntegerField(_("配分額（円）"))
    history = audit_history()

    class Meta:
        ordering = ["fiscal_year", "fund__position", "ward__position"]
        verbose_name = _("配分額")
        verbose_name_plural = _("配分額")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0, amount__lte=MAX_AMOUNT_YEN),
                name="allocation_amount_range",
                violation_error_message=_("配分額は0円以上、1兆円未満で入力してください。"),
            ),
            models.UniqueConstraint(
                fields=["fiscal_year", "ward", "fund"],
                condition=Q(ward__isnull=False),
                name="allocation_unique_ward",
                violation_error_message=_("この区・年度・経費の配分額はすでにあります。"),
            ),
            models.UniqueConstraint(
                fields=["fiscal_year", "fund"],
                condition=Q(ward__isnull=True),
                name="allocation_unique_city",
                violation_error_message=_("この年度・経費の市全体の配分額はすでにあります。"),
            ),
        ]

    def __str__(self) -> str:
        who = self.ward.name_ja if self.ward_id else _("市全体")
        return f"{self.fiscal_year.wareki} {who} {self.fund}"


class PrintedTotal(AuditedModel):
    """A total as printed in the source document, kept to check the entered figures against.

    Where a document's per-project figures cannot be read (令和3年度 中央区 after the initial
    budget), the printed total is the only record of the stage.
    """

    fiscal_year = models.ForeignKey(
        FiscalYear, on_delete=models.PROTECT, related_name="printed_totals", verbose_name=_("年度")
    )
    ward = models.ForeignKey(
        Ward, on_delete=models.PROTECT, related_name="printed_totals", verbose_name=_("区")
    )
    fund = models.ForeignKey(Fund, on_delete=models.PROTECT, related_name="printed_totals")
    stage = models.PositiveSmallIntegerField(_("段階"), choices=Stage.choices)
    amount = models.BigIntegerField(_("資料記載の合計（円）"))
    history = audit_history()

    class Meta:
        verbose_name = _("資料記載の合計")
        verbose_name_plural = _("資料記載の合計")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0, amount__lte=MAX_AMOUNT_YEN),
                name="printed_total_amount_range",
                violation_error_message=_("合計額は0円以上、1兆円未満で入力してください。"),
            ),
            models.CheckConstraint(
                condition=Q(stage__gte=Stage.INITIAL, stage__lte=Stage.SETTLEMENT),
                name="printed_total_stage_valid",
                violation_error_message=_("段階が正しくありません。"),
            ),
            models.UniqueConstraint(
                fields=["fiscal_year", "ward", "fund", "stage"],
                name="printed_total_unique",
                violation_error_message=_(
                    "この区・年度・経費・段階の資料記載の合計はすでにあります。"
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.fiscal_year.wareki} {self.ward} {self.fund} {self.get_stage_display()}"


class Project(AuditedModel):
    """A ward's (or the pool's) community project in one fiscal year."""

    ward = models.ForeignKey(
        Ward, on_delete=models.PROTECT, related_name="projects", verbose_name=_("区")
    )
    fiscal_year = models.ForeignKey(
        FiscalYear, on_delete=models.PROTECT, related_name="projects", verbose_name=_("年度")
    )
    pillar = models.ForeignKey(
        VisionPillar,
        on_delete=models.PROTECT,
        related_name="projects",
        null=True,
        blank=True,
        verbose_name=_("まちづくりの方向性"),
    )
    fund = models.ForeignKey(
        Fund, on_delete=models.PROTECT, related_name="projects", verbose_name=_("経費")
    )
    number = models.CharField(
        _("№"), max_length=8, blank=True, help_text=_("資料に印刷された番号（①、12 など）。")
    )
    position = models.PositiveIntegerField(_("表示順"), default=0)
    name = models.CharField(_("事業名"), max_length=200)
    summary = models.TextField(_("事業概要"), blank=True)
    is_new = models.BooleanField(_("新規"), default=False)
    previous = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        related_name="successors",
        null=True,
        blank=True,
        verbose_name=_("前年度以前の同じ事業"),
    )
    version = AutoIncVersionField(verbose_name=_("版"))
    history = audit_history(excluded_fields=["version"])

    class Meta:
        ordering = ["fiscal_year", "ward__position", "position", "id"]
        verbose_name = _("事業")
        verbose_name_plural = _("事業")
        constraints = [
            models.UniqueConstraint(
                fields=["ward", "fiscal_year", "number"],
                condition=~Q(number=""),
                name="project_unique_number",
                violation_error_message=_("この区・年度には同じ№の事業がすでにあります。"),
            ),
            models.UniqueConstraint(
                fields=["ward", "fiscal_year", "name"],
                name="project_unique_name",
                violation_error_message=_("この区・年度には同じ名称の事業がすでにあります。"),
            ),
            models.CheckConstraint(
                condition=~Q(previous=models.F("id")),
                name="project_previous_not_self",
                violation_error_message=_("前年度以前の事業に自分自身は指定できません。"),
            ),
        ]
        indexes = [models.Index(fields=["fiscal_year", "ward"], name="project_year_ward")]

    def __str__(self) -> str:
        return self.name


class StageFigure(AuditedModel):
    """A project's amount at one stage.

    No row: not entered yet (未入力). A row with no amount: no budget (―). Otherwise the
    amount in whole yen, which may be 0.
    """

    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="figures", verbose_name=_("事業")
    )
    stage = models.PositiveSmallIntegerField(_("段階"), choices=Stage.choices)
    amount = models.BigIntegerField(_("金額（円）"), null=True, blank=True)
    reason = models.TextField(
        _("補正理由"), blank=True, help_text=_("前の段階から金額が変わった理由。")
    )
    # Time-based, so a figure cleared and entered again never reuses an old version.
    version = IntegerVersionField(verbose_name=_("版"))
    updated_at = models.DateTimeField(_("更新日時"), auto_now=True)
    history = audit_history(excluded_fields=["version", "updated_at"])

    class Meta:
        ordering = ["project", "stage"]
        verbose_name = _("段階別金額")
        verbose_name_plural = _("段階別金額")
        constraints = [
            models.UniqueConstraint(
                fields=["project", "stage"],
                name="stage_figure_unique",
                violation_error_message=_("この事業のこの段階の金額はすでにあります。"),
            ),
            models.CheckConstraint(
                condition=Q(stage__gte=Stage.INITIAL, stage__lte=Stage.SETTLEMENT),
                name="stage_figure_stage_valid",
                violation_error_message=_("段階が正しくありません。"),
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0, amount__lte=MAX_AMOUNT_YEN),
                name="stage_figure_amount_range",
                violation_error_message=_("金額は0円以上、1兆円未満で入力してください。"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.get_stage_display()}"

    @property
    def is_no_budget(self) -> bool:
        return self.amount is None


class Correction(AuditedModel):
    """A planner's correction of a figure after its stage was published, shown publicly."""

    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="corrections", verbose_name=_("事業")
    )
    stage = models.PositiveSmallIntegerField(_("段階"), choices=Stage.choices)
    old_entered = models.BooleanField(_("訂正前に入力済み"))
    old_amount = models.BigIntegerField(_("訂正前の金額（円）"), null=True, blank=True)
    new_amount = models.BigIntegerField(_("訂正後の金額（円）"), null=True, blank=True)
    reason = models.TextField(_("訂正理由"))
    corrected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        verbose_name=_("訂正した人"),
    )
    corrected_at = models.DateTimeField(_("訂正日時"), auto_now_add=True)
    history = audit_history()

    class Meta:
        ordering = ["corrected_at", "id"]
        verbose_name = _("公表後の訂正")
        verbose_name_plural = _("公表後の訂正")
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""),
                name="correction_reason_required",
                violation_error_message=_("訂正理由を入力してください。"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.get_stage_display()}"
