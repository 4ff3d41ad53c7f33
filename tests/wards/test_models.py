"""Fiscal years, stages and pillars: the era names, the stage order and the DB rules."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests.factories import FiscalYearFactory, VisionPillarFactory, WardFactory, WardYearFactory
from wards import services as ward_services
from wards.models import FiscalYear, Stage, VisionPillar, WardYear, wareki_year

# --- Era names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (2019, "令和元年度"),
        (2020, "令和2年度"),
        (2021, "令和3年度"),
        (2024, "令和6年度"),
        (2018, "平成30年度"),
        (1989, "平成元年度"),
    ],
)
def test_wareki_year(year, expected):
    assert wareki_year(year) == expected


def test_fiscal_year_label_shows_both_era_and_western_year():
    fiscal_year = FiscalYear(year=2021)
    assert fiscal_year.wareki == "令和3年度"
    assert fiscal_year.label == "令和3年度 (2021年度)"
    assert str(fiscal_year) == "令和3年度 (2021年度)"


# --- Stages ----------------------------------------------------------------------------------


def test_stage_previous_and_next_walk_the_four_stages_in_order():
    assert Stage.INITIAL.previous is None
    assert Stage.SEPTEMBER.previous is Stage.INITIAL
    assert Stage.FEBRUARY.previous is Stage.SEPTEMBER
    assert Stage.SETTLEMENT.previous is Stage.FEBRUARY
    assert Stage.INITIAL.next is Stage.SEPTEMBER
    assert Stage.SEPTEMBER.next is Stage.FEBRUARY
    assert Stage.FEBRUARY.next is Stage.SETTLEMENT
    assert Stage.SETTLEMENT.next is None


def test_stage_labels_are_the_printed_headings():
    assert [s.label for s in Stage] == ["当初予算", "9月補正後", "2月補正後", "決算額"]


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (None, []),
        (Stage.INITIAL, [Stage.INITIAL]),
        (Stage.FEBRUARY, [Stage.INITIAL, Stage.SEPTEMBER, Stage.FEBRUARY]),
        (Stage.SETTLEMENT, [Stage.INITIAL, Stage.SEPTEMBER, Stage.FEBRUARY, Stage.SETTLEMENT]),
    ],
)
def test_stage_up_to(stage, expected):
    assert Stage.up_to(stage) == expected


def test_published_stages_and_is_published_follow_published_stage():
    fiscal_year = FiscalYear(year=2024, published_stage=Stage.SEPTEMBER)
    assert fiscal_year.published_stages == [Stage.INITIAL, Stage.SEPTEMBER]
    assert fiscal_year.is_published(Stage.SEPTEMBER)
    assert not fiscal_year.is_published(Stage.FEBRUARY)

    unpublished = FiscalYear(year=2025, published_stage=None)
    assert unpublished.published_stages == []
    assert not unpublished.is_published(Stage.INITIAL)


# --- FiscalYear constraints ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("published", "open_"),
    [
        (Stage.SEPTEMBER, Stage.SEPTEMBER),  # the open stage would already be published
        (Stage.FEBRUARY, Stage.INITIAL),
    ],
)
def test_open_stage_not_after_published_stage_is_rejected_by_the_db(published, open_):
    with pytest.raises(IntegrityError), transaction.atomic():
        FiscalYear.objects.create(year=2022, published_stage=published, open_stage=open_)


@pytest.mark.django_db
def test_open_stage_after_published_stage_is_accepted():
    FiscalYear.objects.create(year=2022, published_stage=Stage.SEPTEMBER, open_stage=Stage.FEBRUARY)
    FiscalYear.objects.create(year=2023, published_stage=None, open_stage=Stage.INITIAL)
    FiscalYear.objects.create(year=2025, published_stage=Stage.SETTLEMENT, open_stage=None)
    assert FiscalYear.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["published_stage", "open_stage"])
@pytest.mark.parametrize("value", [0, 5])
def test_stage_outside_the_four_stages_is_rejected_by_the_db(field, value):
    with pytest.raises(IntegrityError), transaction.atomic():
        FiscalYear.objects.create(year=2022, **{field: value})


@pytest.mark.django_db
@pytest.mark.parametrize("year", [1988, 2201])
def test_year_out_of_range_is_rejected_by_the_db(year):
    with pytest.raises(IntegrityError), transaction.atomic():
        FiscalYear.objects.create(year=year)


@pytest.mark.django_db
def test_fiscal_year_upsert_explains_open_stage_rule_in_japanese():
    with pytest.raises(ValidationError) as excinfo:
        ward_services.fiscal_year_upsert(
            year=2022, published_stage=Stage.FEBRUARY, open_stage=Stage.SEPTEMBER
        )
    assert "入力受付中の段階は、公表済みの段階より後でなければなりません。" in (
        excinfo.value.messages
    )
    assert not FiscalYear.objects.filter(year=2022).exists()


@pytest.mark.django_db
def test_fiscal_year_upsert_updates_the_existing_year():
    ward_services.fiscal_year_upsert(year=2024, published_stage=None, open_stage=Stage.INITIAL)
    ward_services.fiscal_year_upsert(
        year=2024, published_stage=Stage.INITIAL, open_stage=Stage.SEPTEMBER
    )
    fiscal_year = FiscalYear.objects.get()
    assert (fiscal_year.published_stage, fiscal_year.open_stage) == (
        Stage.INITIAL,
        Stage.SEPTEMBER,
    )


# --- Ward-years and pillars ------------------------------------------------------------------


@pytest.mark.django_db
def test_one_ward_year_per_ward_and_year():
    ward_year = WardYearFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        WardYear.objects.create(ward=ward_year.ward, fiscal_year=ward_year.fiscal_year)


@pytest.mark.django_db
def test_pillar_name_is_unique_within_a_ward_year():
    pillar = VisionPillarFactory(name="地域を支える土台づくり", position=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        VisionPillar.objects.create(
            ward=pillar.ward, fiscal_year=pillar.fiscal_year, name=pillar.name, position=2
        )


@pytest.mark.django_db
def test_same_pillar_name_is_allowed_in_another_ward_or_year():
    pillar = VisionPillarFactory(name="地域を支える土台づくり", position=1)
    VisionPillarFactory(name=pillar.name, position=1, fiscal_year=pillar.fiscal_year)
    VisionPillarFactory(
        name=pillar.name, position=1, ward=pillar.ward, fiscal_year=FiscalYearFactory(year=2024)
    )
    assert VisionPillar.objects.filter(name=pillar.name).count() == 3


@pytest.mark.django_db
def test_pillar_position_is_unique_within_a_ward_year():
    pillar = VisionPillarFactory(position=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        VisionPillar.objects.create(
            ward=pillar.ward, fiscal_year=pillar.fiscal_year, name="別の方向性", position=1
        )


@pytest.mark.django_db
def test_pillar_upsert_updates_by_name_and_explains_a_taken_position():
    ward, fiscal_year = WardFactory(), FiscalYearFactory()
    first = ward_services.pillar_upsert(
        ward=ward, fiscal_year=fiscal_year, name="地域での活動を支援", position=1
    )
    again = ward_services.pillar_upsert(
        ward=ward, fiscal_year=fiscal_year, name="地域での活動を支援", position=3
    )
    assert again.pk == first.pk
    assert VisionPillar.objects.get().position == 3

    with pytest.raises(ValidationError) as excinfo:
        ward_services.pillar_upsert(
            ward=ward, fiscal_year=fiscal_year, name="地域を支える土台づくり", position=3
        )
    assert "この区・年度には同じ表示順の方向性がすでにあります。" in excinfo.value.messages
    assert VisionPillar.objects.count() == 1
