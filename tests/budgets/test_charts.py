"""The server-side charts: accessible SVG whose text alternative reads out the figures."""

import pytest

from budgets import charts, selectors
from wards.models import FiscalYear, Ward

pytestmark = pytest.mark.django_db


def test_city_chart_reads_each_wards_stages_and_allocation(seeded):
    rollup = selectors.city_rollup(fiscal_year=FiscalYear.objects.get(year=2021))
    chart = charts.city_chart(rollup, 0)
    svg = str(chart.svg)
    assert 'role="img"' in svg and f'aria-labelledby="{chart.id}-title {chart.id}-desc"' in svg
    assert "北区：当初予算 19,000千円、9月補正後 14,426千円" in chart.description
    assert "決算額 7,360千円（配分額 19,000千円）" in chart.description
    # 中央区's later stages are not entered: the chart says so instead of drawing 0.
    assert "中央区：当初予算 19,000千円、9月補正後 未確定" in chart.description
    assert svg.count("<rect") == 5  # 中央区 1 bar, 北区 4 bars


def test_ward_and_project_charts(seeded):
    fiscal_year = FiscalYear.objects.get(year=2021)
    ledger = selectors.ward_ledger(fiscal_year=fiscal_year, ward=Ward.objects.get(slug="kita"))
    pillars = charts.ward_pillar_chart(ledger)
    assert "地域を支える土台づくり 2,459千円（29.8%）" in pillars.description
    project = ledger.projects[0]
    detail = selectors.project_detail(fiscal_year=fiscal_year, ward=ledger.ward, pk=project.pk)
    chart = charts.project_chart(detail)
    assert "2月補正後 600千円（前の段階から△2,500千円）" in chart.description
    assert "決算額 100千円" in chart.description


def test_chart_text_is_escaped(seeded):
    kita = Ward.objects.get(slug="kita")
    kita.name_ja = "<script>alert(1)</script>"
    rollup = selectors.city_rollup(fiscal_year=FiscalYear.objects.get(year=2021))
    rollup.wards[4].ward.name_ja = kita.name_ja
    svg = str(charts.city_chart(rollup, 0).svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
