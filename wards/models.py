"""Wards, the shared pool, fiscal years, the city plans and the wards' vision pillars."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from kumamachi.audit import AuditedModel, audit_history


class Stage(models.IntegerChoices):
    """The four stages a project's money moves through in a fiscal year, in order."""

    INITIAL = 1, _("当初予算")
    SEPTEMBER = 2, _("9月補正後")
    FEBRUARY = 3, _("2月補正後")
    SETTLEMENT = 4, _("決算額")

    @classmethod
    def up_to(cls, stage: "int | None") -> list["Stage"]:
        """Stages from the initial budget through ``stage`` (none if ``stage`` is None)."""
        if stage is None:
            return []
        return [s for s in cls if s <= stage]

    @property
    def previous(self) -> "Stage | None":
        return Stage(self - 1) if self > Stage.INITIAL else None

    @property
    def next(self) -> "Stage | None":
        return Stage(self + 1) if self < Stage.SETTLEMENT else None


def _stage_in_range(field: str) -> Q:
    return Q(**{f"{field}__gte": Stage.INITIAL, f"{field}__lte": Stage.SETTLEMENT})


def _english() -> bool:
    return (get_language() or "ja").startswith("en")


def wareki_year(year: int) -> str:
    """The Japanese era name of a fiscal year: 2021 → 令和3年度, 2019 → 令和元年度."""
    if year >= 2019:
        era, offset = "令和", 2018
    elif year >= 1989:
        era, offset = "平成", 1988
    else:
        era, offset = "昭和", 1925
    number = year - offset
    return f"{era}{'元' if number == 1 else number}年度"


class Ward(models.Model):
    """One of the five wards, or the shared pool (5区共通) that sits beside them."""

    class Kind(models.TextChoices):
        WARD = "ward", _("区")
        POOL = "pool", _("5区共通")

    slug = models.SlugField(_("スラッグ"), max_length=32, unique=True)
    name_ja = models.CharField(_("名称"), max_length=50, unique=True)
    name_en = models.CharField(_("英語名"), max_length=50)
    kind = models.CharField(_("種別"), max_length=8, choices=Kind.choices, default=Kind.WARD)
    position = models.PositiveSmallIntegerField(_("表示順"), unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="member_wards",
        verbose_name=_("区の職員"),
        help_text=_("この区（または5区共通）の事業と金額を入力できる職員。"),
    )

    class Meta:
        ordering = ["position"]
        verbose_name = _("区")
        verbose_name_plural = _("区")

    def __str__(self) -> str:
        return self.name_ja

    @property
    def is_pool(self) -> bool:
        return self.kind == self.Kind.POOL

    @property
    def display_name(self) -> str:
        """The name in the reader's language (Japanese unless English is chosen)."""
        return self.name_en if _english() else self.name_ja


class FiscalYear(AuditedModel):
    """A fiscal year (April to March), stored as its western year: 2021 is 令和3年度.

    ``published_stage`` is the last stage the public may see; ``open_stage`` is the stage
    ward staff may enter now. Either may be empty.
    """

    year = models.PositiveSmallIntegerField(_("年度"), primary_key=True)
    published_stage = models.PositiveSmallIntegerField(
        _("公表済みの段階"), choices=Stage.choices, null=True, blank=True
    )
    open_stage = models.PositiveSmallIntegerField(
        _("入力受付中の段階"), choices=Stage.choices, null=True, blank=True
    )
    history = audit_history()

    class Meta:
        ordering = ["-year"]
        verbose_name = _("年度")
        verbose_name_plural = _("年度")
        constraints = [
            models.CheckConstraint(
                condition=Q(year__gte=1989, year__lte=2200),
                name="fiscal_year_year_range",
                violation_error_message=_("年度は1989年から2200年の間で指定してください。"),
            ),
            models.CheckConstraint(
                condition=Q(published_stage__isnull=True) | _stage_in_range("published_stage"),
                name="fiscal_year_published_stage_valid",
                violation_error_message=_("公表済みの段階が正しくありません。"),
            ),
            models.CheckConstraint(
                condition=Q(open_stage__isnull=True) | _stage_in_range("open_stage"),
                name="fiscal_year_open_stage_valid",
                violation_error_message=_("入力受付中の段階が正しくありません。"),
            ),
            # A published stage is locked, so the open one must come after it.
            models.CheckConstraint(
                condition=Q(open_stage__isnull=True)
                | Q(published_stage__isnull=True)
                | Q(open_stage__gt=models.F("published_stage")),
                name="fiscal_year_open_after_published",
                violation_error_message=_(
                    "入力受付中の段階は、公表済みの段階より後でなければなりません。"
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def wareki(self) -> str:
        return wareki_year(self.year)

    @property
    def label(self) -> str:
        """令和3年度 (2021年度) in Japanese, FY2021 in English."""
        return f"FY{self.year}" if _english() else f"{self.wareki} ({self.year}年度)"

    @property
    def short_label(self) -> str:
        """令和3年度 in Japanese, FY2021 in English."""
        return f"FY{self.year}" if _english() else self.wareki

    @property
    def published_stages(self) -> list[Stage]:
        return Stage.up_to(self.published_stage)

    def is_published(self, stage: int) -> bool:
        return self.published_stage is not None and stage <= self.published_stage


class CityPlan(models.Model):
    """One of the city's comprehensive plans (熊本市第7次総合計画, 第8次, …)."""

    ordinal = models.PositiveSmallIntegerField(_("次"), unique=True)
    name = models.CharField(_("名称"), max_length=100)

    class Meta:
        ordering = ["ordinal"]
        verbose_name = _("総合計画")
        verbose_name_plural = _("総合計画")

    def __str__(self) -> str:
        return self.name


class CityVision(models.Model):
    """A vision or basic policy of a comprehensive plan, which a ward pillar may serve."""

    plan = models.ForeignKey(CityPlan, on_delete=models.PROTECT, related_name="visions")
    number = models.PositiveSmallIntegerField(_("番号"))
    title = models.CharField(_("名称"), max_length=200)

    class Meta:
        ordering = ["plan__ordinal", "number"]
        verbose_name = _("総合計画のビジョン")
        verbose_name_plural = _("総合計画のビジョン")
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "number"],
                name="city_vision_unique_number",
                violation_error_message=_("この総合計画には同じ番号のビジョンがすでにあります。"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.plan.name} {self.number}. {self.title}"


class WardYear(AuditedModel):
    """What a ward published for a year: its slogan and where its figures come from."""

    ward = models.ForeignKey(
        Ward, on_delete=models.PROTECT, related_name="ward_years", verbose_name=_("区")
    )
    fiscal_year = models.ForeignKey(
        FiscalYear, on_delete=models.PROTECT, related_name="ward_years", verbose_name=_("年度")
    )
    slogan = models.CharField(_("めざす区の姿"), max_length=300, blank=True)
    source_document = models.CharField(_("出典資料"), max_length=300, blank=True)
    projects_complete = models.BooleanField(
        _("全事業を掲載"),
        default=True,
        help_text=_("資料が主な事業だけを載せている場合はオフにします。"),
    )
    note = models.TextField(_("注記"), blank=True)
    history = audit_history()

    class Meta:
        ordering = ["-fiscal_year", "ward__position"]
        verbose_name = _("区の年度情報")
        verbose_name_plural = _("区の年度情報")
        constraints = [
            models.UniqueConstraint(
                fields=["ward", "fiscal_year"],
                name="ward_year_unique",
                violation_error_message=_("この区のこの年度の情報はすでにあります。"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.fiscal_year.wareki} {self.ward}"


class VisionPillar(AuditedModel):
    """A heading a ward groups its projects under in a year (まちづくりの方向性)."""

    ward = models.ForeignKey(
        Ward, on_delete=models.PROTECT, related_name="pillars", verbose_name=_("区")
    )
    fiscal_year = models.ForeignKey(
        FiscalYear, on_delete=models.PROTECT, related_name="pillars", verbose_name=_("年度")
    )
    position = models.PositiveSmallIntegerField(_("表示順"))
    name = models.CharField(_("名称"), max_length=200)
    description = models.TextField(_("説明"), blank=True)
    city_visions = models.ManyToManyField(
        CityVision, blank=True, related_name="pillars", verbose_name=_("関連する総合計画")
    )
    history = audit_history()

    class Meta:
        ordering = ["fiscal_year", "ward__position", "position"]
        verbose_name = _("まちづくりの方向性")
        verbose_name_plural = _("まちづくりの方向性")
        constraints = [
            models.UniqueConstraint(
                fields=["ward", "fiscal_year", "position"],
                name="pillar_unique_position",
                violation_error_message=_("この区・年度には同じ表示順の方向性がすでにあります。"),
            ),
            models.UniqueConstraint(
                fields=["ward", "fiscal_year", "name"],
                name="pillar_unique_name",
                violation_error_message=_("この区・年度には同じ名称の方向性がすでにあります。"),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class WardSubmission(AuditedModel):
    """A ward's staff handed in the open stage for review (提出). Locks their sheet."""

    ward = models.ForeignKey(
        Ward, on_delete=models.PROTECT, related_name="submissions", verbose_name=_("区")
    )
    fiscal_year = models.ForeignKey(
        FiscalYear, on_delete=models.PROTECT, related_name="submissions", verbose_name=_("年度")
    )
    stage = models.PositiveSmallIntegerField(_("段階"), choices=Stage.choices)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        verbose_name=_("提出した人"),
    )
    submitted_at = models.DateTimeField(_("提出日時"), auto_now_add=True)
    history = audit_history()

    class Meta:
        verbose_name = _("区の提出")
        verbose_name_plural = _("区の提出")
        constraints = [
            models.UniqueConstraint(
                fields=["ward", "fiscal_year", "stage"],
                name="ward_submission_unique",
                violation_error_message=_("この区のこの段階はすでに提出されています。"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.fiscal_year.wareki} {self.ward} {self.get_stage_display()}"


class StagePublication(AuditedModel):
    """When a planner published a stage of a year. Corrections after it are shown publicly."""

    fiscal_year = models.ForeignKey(
        FiscalYear, on_delete=models.PROTECT, related_name="publications", verbose_name=_("年度")
    )
    stage = models.PositiveSmallIntegerField(_("段階"), choices=Stage.choices)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        verbose_name=_("公表した人"),
    )
    published_at = models.DateTimeField(_("公表日時"), auto_now_add=True)
    history = audit_history()

    class Meta:
        verbose_name = _("段階の公表")
        verbose_name_plural = _("段階の公表")
        constraints = [
            models.UniqueConstraint(
                fields=["fiscal_year", "stage"],
                name="stage_publication_unique",
                violation_error_message=_("この年度のこの段階はすでに公表されています。"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.fiscal_year.wareki} {self.get_stage_display()}"


class ContentVersion(models.Model):
    """A counter that every write to the ledger bumps in its own transaction.

    Cached public pages are keyed by it, so a page cached before a publication or a
    correction is never served after it: the new figures and the new version commit
    together, and every worker reads the version from the database."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    version = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("公開内容の版")
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="content_version_single_row"),
        ]

    def __str__(self) -> str:
        return str(self.version)
