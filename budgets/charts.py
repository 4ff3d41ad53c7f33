"""Accessible charts drawn on the server as SVG: no JavaScript, no CDN.

Each chart is an SVG with role="img", a <title> and a <desc> that says in words what the
bars show, and it sits beside the table that holds the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from budgets.formatting import sen
from budgets.selectors import CityRollup, FundRollup, ProjectDetail, StageTotal, WardLedger
from wards.models import Stage

# Colours with at least 3:1 contrast against white (WCAG 1.4.11 for graphics).
STAGE_COLOURS = {
    Stage.INITIAL: "#005a9c",
    Stage.SEPTEMBER: "#2e7d32",
    Stage.FEBRUARY: "#b35900",
    Stage.SETTLEMENT: "#6a1b9a",
}
ALLOCATION_COLOUR = "#a00000"
TEXT = "#1b1b1b"

WIDTH = 400
LABEL_WIDTH = 92
VALUE_WIDTH = 56
BAR_HEIGHT = 15
GAP = 4


@dataclass(frozen=True)
class Bar:
    label: str
    value: int | None  # yen; None: nothing to draw
    colour: str
    note: str = ""


@dataclass(frozen=True)
class BarGroup:
    label: str
    bars: list[Bar]
    marker: int | None = None  # e.g. the allocation, drawn as a line
    marker_label: str = ""


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    description: str
    svg: SafeString
    legend: list[tuple[str, str]] = field(default_factory=list)


def _yen(value: int) -> str:
    return _("%(amount)s千円") % {"amount": sen(value)}


def _value(total: StageTotal) -> int | None:
    return total.value if total.is_final else None


def _scale(groups: list[BarGroup]) -> int:
    values = [b.value for g in groups for b in g.bars if b.value] + [
        g.marker for g in groups if g.marker
    ]
    return max(values, default=0) or 1


def horizontal_bars(*, chart_id: str, title: str, description: str, groups: list[BarGroup]):
    """Groups of horizontal bars (one group per row label), with optional marker lines."""
    scale = _scale(groups)
    plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts = []
    y = 8
    for group in groups:
        height = max(len(group.bars), 1) * (BAR_HEIGHT + GAP)
        parts.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="end" font-size="12" fill="{}">{}</text>',
                LABEL_WIDTH - 8,
                y + height / 2 + 4,
                TEXT,
                group.label,
            )
        )
        for index, bar in enumerate(group.bars):
            top = y + index * (BAR_HEIGHT + GAP)
            if bar.value is None:
                parts.append(
                    format_html(
                        '<text x="{}" y="{}" font-size="11" fill="{}">{}</text>',
                        LABEL_WIDTH + 2,
                        top + BAR_HEIGHT - 3,
                        TEXT,
                        bar.note or _("未入力"),
                    )
                )
                continue
            width = max(plot * bar.value / scale, 1 if bar.value else 0)
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>'
                    '<text x="{}" y="{}" font-size="11" fill="{}">{}</text>',
                    LABEL_WIDTH,
                    top,
                    round(width, 1),
                    BAR_HEIGHT,
                    bar.colour,
                    f"{bar.label} {_yen(bar.value)}",
                    round(LABEL_WIDTH + width + 4, 1),
                    top + BAR_HEIGHT - 3,
                    TEXT,
                    sen(bar.value),
                )
            )
        if group.marker:
            x = LABEL_WIDTH + plot * group.marker / scale
            parts.append(
                format_html(
                    '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2" '
                    'stroke-dasharray="4 2"><title>{}</title></line>',
                    round(x, 1),
                    round(x, 1),
                    y - 2,
                    y + height - GAP + 2,
                    ALLOCATION_COLOUR,
                    group.marker_label,
                )
            )
        y += height + 10
    return _svg(chart_id, title, description, y, parts)


def _svg(chart_id: str, title: str, description: str, height: float, parts) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc" '
        'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        WIDTH,
        round(height, 1),
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        mark_safe("".join(str(p) for p in parts)),  # every part was built with format_html
    )


def _legend(stages) -> list[tuple[str, str]]:
    """(CSS class of the swatch, label): classes, not inline styles, for the CSP."""
    return [(f"stage-{int(s)}", str(s.label)) for s in stages]


def _describe_totals(name: str, stages, totals: dict[Stage, StageTotal]) -> str:
    words = []
    for stage in stages:
        value = _value(totals[stage])
        words.append(f"{stage.label} " + (_yen(value) if value is not None else _("未確定")))
    return f"{name}：" + _("、").join(words)


def city_chart(rollup: CityRollup, fund_index: int = 0) -> Chart | None:
    """Each ward's stages against its allocation, for one fund."""
    if not rollup.stages or not rollup.funds:
        return None
    fund = rollup.funds[fund_index]
    groups, sentences = [], []
    for ward_rollup in rollup.wards:
        fund_rollup = ward_rollup.funds[fund_index]
        if fund_rollup.is_empty:
            continue
        groups.append(_stage_group(ward_rollup.ward.display_name, fund_rollup, rollup.stages))
        sentence = _describe_totals(
            ward_rollup.ward.display_name, rollup.stages, fund_rollup.stages
        )
        if fund_rollup.allocation:
            sentence += _("（配分額 %(amount)s千円）") % {"amount": sen(fund_rollup.allocation)}
        sentences.append(sentence)
    if not groups:
        return None
    chart_id = f"chart-city-{fund.code}"
    title = _("%(fund)s：区ごとの段階別の合計と配分額（千円）") % {"fund": fund.display_name}
    description = _("。").join(sentences) + _("。")
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        svg=horizontal_bars(chart_id=chart_id, title=title, description=description, groups=groups),
        legend=_legend(rollup.stages) + [("allocation", _("配分額（破線）"))],
    )


def _stage_group(label: str, rollup: FundRollup, stages) -> BarGroup:
    """One bar per stage for a fund rollup, with its allocation as the marker line."""
    return BarGroup(
        label=label,
        bars=[
            Bar(
                label=str(stage.label),
                value=_value(rollup.stages[stage]),
                colour=STAGE_COLOURS[stage],
                note=_("未確定"),
            )
            for stage in stages
        ],
        marker=rollup.allocation,
        marker_label=_("配分額 %(amount)s千円") % {"amount": sen(rollup.allocation)}
        if rollup.allocation
        else "",
    )


def ward_stage_chart(ledger: WardLedger) -> Chart | None:
    """The ward's fund totals from the initial budget to settlement, against the allocation."""
    if not ledger.stages:
        return None
    groups, sentences = [], []
    for rollup in ledger.fund_totals:
        if rollup.is_empty or all(t.projects == 0 for t in rollup.stages.values()):
            continue
        groups.append(_stage_group(rollup.fund.display_name[:6], rollup, ledger.stages))
        sentences.append(_describe_totals(rollup.fund.display_name, ledger.stages, rollup.stages))
    if not groups:
        return None
    chart_id = "chart-ward-stages"
    title = _("%(ward)sの段階別の合計（千円）") % {"ward": ledger.ward.display_name}
    description = _("。").join(sentences) + _("。")
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        svg=horizontal_bars(chart_id=chart_id, title=title, description=description, groups=groups),
        legend=_legend(ledger.stages) + [("allocation", _("配分額（破線）"))],
    )


def ward_pillar_chart(ledger: WardLedger) -> Chart | None:
    """Each pillar's share of the ward's budget at the latest published stage."""
    if not ledger.stages or not ledger.has_pillars:
        return None
    stage = ledger.stages[-1]
    names = {p.pk: p.name for p in ledger.pillars}
    amounts: dict[int | None, int] = {}
    for (pillar_id, _fund_id), rollup in ledger.pillar_totals.items():
        value = _value(rollup.stages[stage])
        if value is not None:
            amounts[pillar_id] = amounts.get(pillar_id, 0) + value
    total = sum(amounts.values())
    if not total:
        return None
    groups, sentences = [], []
    for pillar in ledger.pillars:
        value = amounts.get(pillar.pk)
        if value is None:
            continue
        share = round(value * 100 / total, 1)
        label = names[pillar.pk]
        short = label if len(label) <= 8 else label[:7] + "…"
        groups.append(
            BarGroup(
                label=short,
                bars=[Bar(label=label, value=value, colour=STAGE_COLOURS[stage])],
            )
        )
        sentences.append(f"{label} {_yen(value)}（{share}%）")
    chart_id = "chart-ward-pillars"
    title = _("まちづくりの方向性ごとの%(stage)s（千円）") % {"stage": stage.label}
    description = _("。").join(sentences) + _("。")
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        svg=horizontal_bars(chart_id=chart_id, title=title, description=description, groups=groups),
        legend=_legend([stage]),
    )


def project_chart(detail: ProjectDetail) -> Chart | None:
    """A project's stage ledger: 当初 → 9月補正 → 2月補正 → 決算."""
    steps = [step for step in detail.steps if step.total.visible]
    if not steps:
        return None
    groups, sentences = [], []
    for step in steps:
        value = _value(step.total)
        note = "―" if step.total.state.value == "no_budget" else _("未入力")
        groups.append(
            BarGroup(
                label=str(step.stage.label),
                bars=[
                    Bar(
                        label=str(step.stage.label),
                        value=value if step.total.state.value != "no_budget" else None,
                        colour=STAGE_COLOURS[step.stage],
                        note=note,
                    )
                ],
            )
        )
        words = f"{step.stage.label} " + (_yen(value) if value is not None else note)
        if step.change:
            words += _("（前の段階から%(change)s千円）") % {
                "change": ("+" if step.change > 0 else "△") + sen(abs(step.change))
            }
        if step.reason:
            words += _("、理由：%(reason)s") % {"reason": step.reason}
        sentences.append(words)
    chart_id = "chart-project"
    title = _("%(project)sの予算の移り変わり（千円）") % {"project": detail.project.name}
    description = _("。").join(sentences) + _("。")
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        svg=horizontal_bars(chart_id=chart_id, title=title, description=description, groups=groups),
        legend=[],
    )
