"""How amounts and totals read on pages and in tables: thousand yen, like the printed tables."""

from decimal import Decimal

from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from budgets.selectors import StageTotal, TotalState


def sen(amount: int | None) -> str:
    """Yen as thousand yen with separators: 19000000 → '19,000'; 1526843 → '1,526.843'."""
    if amount is None:
        return ""
    thousands = Decimal(amount) / 1000
    if thousands == thousands.to_integral_value():
        return f"{int(thousands):,}"
    return f"{thousands:,.3f}".rstrip("0")


def signed_sen(amount: int | None) -> SafeString | str:
    """A change in thousand yen; decreases carry △ as in the city's tables."""
    if amount is None:
        return ""
    if amount < 0:
        return format_html(
            '<span class="change negative"><span aria-hidden="true">△</span>'
            '<span class="visually-hidden">{}</span>{}</span>',
            _("減"),
            sen(-amount),
        )
    if amount > 0:
        return format_html('<span class="change positive">+{}</span>', sen(amount))
    return "0"


def percent(rate: Decimal | None) -> str:
    return "" if rate is None else f"{rate}%"


def total_html(total: StageTotal, printed: int | None = None) -> SafeString:
    """One stage total in its state: the figure, 未入力, ―, 未公表, or a marked partial sum.

    Where the entered figures are not final but the source document printed a total, the
    printed total is shown beside it, labelled as such.
    """
    html = _total_state_html(total)
    if printed is not None and not total.is_final and total.visible:
        html = format_html(
            '{}<small class="printed">{}</small>',
            html,
            _("資料記載：%(amount)s") % {"amount": sen(printed)},
        )
    return html


def _total_state_html(total: StageTotal) -> SafeString:
    state = total.state
    if state == TotalState.UNPUBLISHED:
        return format_html('<span class="state unpublished">{}</span>', _("未公表"))
    if state == TotalState.NO_PROJECTS:
        return format_html('<span class="state no-data">{}</span>', _("データなし"))
    if state == TotalState.NOT_ENTERED:
        return format_html('<span class="state not-entered">{}</span>', _("未入力"))
    if state == TotalState.NO_BUDGET:
        return format_html('<span class="state no-budget" title="{}">―</span>', _("予算措置なし"))
    if state == TotalState.INCOMPLETE:
        missing = ngettext("%(n)d件未入力", "%(n)d件未入力", total.missing) % {"n": total.missing}
        return format_html(
            '<span class="state incomplete">{}<span class="marker">*</span>'
            '<small class="missing">（{}）</small></span>',
            sen(total.amount or 0),
            missing,
        )
    return format_html('<span class="amount">{}</span>', sen(total.value))


def ja_text(value) -> SafeString | str:
    """Japanese source text (project names, summaries) marked lang="ja" on pages in
    another language, so screen readers read it in Japanese (WCAG 3.1.2)."""
    if value in (None, ""):
        return ""
    if (get_language() or "ja").startswith("ja"):
        return value
    return format_html('<span lang="ja">{}</span>', value)
