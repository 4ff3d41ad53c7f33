"""How typed amounts are read: thousand yen with up to three decimals, full-width digits,
dashes for ― (no budget), blank for not entered; anything else refused with a Japanese
message quoting the input."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import example, given
from hypothesis import strategies as st

from budgets.forms import (
    MAX_INPUT_LENGTH,
    NO_BUDGET_MARKS,
    format_thousand_yen,
    parse_thousand_yen,
)
from budgets.models import MAX_AMOUNT_YEN
from budgets.services import NOT_ENTERED

# Half-width → full-width for the characters of a typed number.
FULL_WIDTH = str.maketrans("0123456789,.", "０１２３４５６７８９，．")


def _message(text) -> str:
    with pytest.raises(ValidationError) as excinfo:
        parse_thousand_yen(text)
    return " ".join(excinfo.value.messages)


@pytest.mark.parametrize(
    ("text", "yen"),
    [
        ("1,526.843", 1_526_843),
        ("1526.843", 1_526_843),
        ("3,100", 3_100_000),
        ("3100", 3_100_000),
        ("617", 617_000),
        ("885.5", 885_500),
        ("0.001", 1),
        ("19,000", 19_000_000),
        ("１，５２７", 1_527_000),
        ("１５２７", 1_527_000),
        ("１，５２６．８４３", 1_526_843),
        ("1、527", 1_527_000),
        ("  1,527  ", 1_527_000),
        ("\u30001,527\u3000", 1_527_000),
        ("0", 0),
        ("０", 0),
        ("0.000", 0),
        ("999,999,999.999", MAX_AMOUNT_YEN),
    ],
)
def test_amounts_are_read_in_thousand_yen(text, yen):
    assert parse_thousand_yen(text) == yen


def test_zero_is_zero_not_no_budget():
    value = parse_thousand_yen("0")
    assert value == 0
    assert value is not None
    assert value is not NOT_ENTERED


@pytest.mark.parametrize(
    "text",
    ["―", "-", "－", "—", "–", "‐", "ー", "ｰ", "−", "‒", "─", " ― ", "\u3000－\u3000"],
)
def test_dashes_mean_no_budget(text):
    assert parse_thousand_yen(text) is None


def test_every_listed_dash_means_no_budget():
    for mark in NO_BUDGET_MARKS:
        assert parse_thousand_yen(mark) is None, mark


@pytest.mark.parametrize("text", ["", " ", "   ", "\u3000", "\u3000 \u3000", "\t", None])
def test_blank_means_not_entered(text):
    assert parse_thousand_yen(text) is NOT_ENTERED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", "「abc」は数値ではありません"),
        ("1,2O0", "「1,2O0」は数値ではありません"),
        ("1,23", "「1,23」は数値ではありません"),
        ("12,3456", "「12,3456」は数値ではありません"),
        ("1.2.3", "「1.2.3」は数値ではありません"),
        ("3,100円", "「3,100円」は数値ではありません"),
        ("1e3", "「1e3」は数値ではありません"),
        ("--", "「--」は数値ではありません"),
        ("+5", "「+5」は数値ではありません"),
        ("-5", "「-5」：マイナスの金額は入力できません"),
        ("−1,000", "「−1,000」：マイナスの金額は入力できません"),
        ("－３", "「－３」：マイナスの金額は入力できません"),
        ("-0.5", "「-0.5」：マイナスの金額は入力できません"),
        ("1.2345", "「1.2345」：小数点以下は3桁（1円単位）までです"),
        ("1,526.8431", "「1,526.8431」：小数点以下は3桁（1円単位）までです"),
        ("1,000,000,000", "「1,000,000,000」は大きすぎます"),
        ("999,999,999.9999", "小数点以下は3桁"),
        ("9" * 30, "は大きすぎます"),
    ],
)
def test_bad_input_is_refused_quoting_it(text, expected):
    assert expected in _message(text)


def test_too_large_names_the_limit():
    message = _message("1,000,000,000")
    assert "上限" in message and "999,999,999.999千円" in message


def test_over_long_input_is_refused():
    message = _message("1" * (MAX_INPUT_LENGTH + 1))
    assert "入力が長すぎます" in message
    # Spaces count too: padding cannot smuggle anything past the limit.
    assert "入力が長すぎます" in _message(" " * (MAX_INPUT_LENGTH + 1))


def test_format_is_the_inverse_of_parse():
    assert format_thousand_yen(NOT_ENTERED) == ""
    assert format_thousand_yen(None) == "―"
    assert format_thousand_yen(0) == "0"
    assert format_thousand_yen(1_526_843) == "1,526.843"
    assert format_thousand_yen(3_100_000) == "3,100"
    assert parse_thousand_yen(format_thousand_yen(None)) is None
    assert parse_thousand_yen(format_thousand_yen(NOT_ENTERED)) is NOT_ENTERED


# --- properties -------------------------------------------------------------------------------

yen_amounts = st.integers(min_value=0, max_value=MAX_AMOUNT_YEN)


@given(yen_amounts)
@example(0)
@example(1)
@example(999)
@example(1_000)
@example(1_526_843)
@example(1_526_800)
@example(MAX_AMOUNT_YEN)
def test_round_trip(yen):
    assert parse_thousand_yen(format_thousand_yen(yen)) == yen


@given(yen_amounts)
@example(1_526_843)
@example(MAX_AMOUNT_YEN)
def test_full_width_reads_like_half_width(yen):
    half = format_thousand_yen(yen)
    full = half.translate(FULL_WIDTH)
    assert parse_thousand_yen(full) == parse_thousand_yen(half) == yen
    # Without separators too.
    plain = half.replace(",", "")
    assert parse_thousand_yen(plain.translate(FULL_WIDTH)) == yen


@given(st.integers(min_value=MAX_AMOUNT_YEN + 1, max_value=MAX_AMOUNT_YEN * 1000))
def test_anything_above_the_limit_is_refused(yen):
    text = format_thousand_yen(yen)
    with pytest.raises(ValidationError) as excinfo:
        parse_thousand_yen(text)
    assert f"「{text}」は大きすぎます" in excinfo.value.messages[0]


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_YEN))
def test_negatives_are_refused(yen):
    text = "-" + format_thousand_yen(yen)
    with pytest.raises(ValidationError) as excinfo:
        parse_thousand_yen(text)
    assert "マイナス" in excinfo.value.messages[0]


@given(st.one_of(st.none(), st.text(), st.text(alphabet="0123456789,.-―０１２３，．－ 　eE+")))
@example("٣")
@example("1\n")
@example("1,000\n000")
@example("½")
@example("¹²³")
@example("1" * 40)
@example("%s%d")
def test_arbitrary_text_raises_only_validation_errors(text):
    try:
        value = parse_thousand_yen(text)
    except ValidationError as exc:
        assert exc.messages and all(message for message in exc.messages)
        return
    assert value is NOT_ENTERED or value is None or isinstance(value, int)
    if isinstance(value, int):
        assert 0 <= value <= MAX_AMOUNT_YEN
        # What was accepted reads back the same after formatting.
        assert parse_thousand_yen(format_thousand_yen(value)) == value


# --- the entry sheet form ---------------------------------------------------------------------


def _sheet_form(office, data=None):
    from budgets.forms import EntrySheetForm, entry_initial
    from budgets.selectors import entry_sheet

    sheet = entry_sheet(fiscal_year=office.year, ward=office.kita)
    return EntrySheetForm(
        data,
        projects=sheet.projects,
        stage=sheet.stage,
        initial_values=entry_initial(sheet.projects, sheet.stage),
    )


@pytest.mark.django_db
def test_entry_sheet_form_reads_rows_and_names_project_and_field_in_errors(office):
    a, b, c = office.kita_projects
    data = {
        "stage": "2",
        f"amount_{a.pk}": "１，５２６．８４３",
        f"reason_{a.pk}": "  見直し ",
        f"version_{a.pk}": "0",
        f"amount_{b.pk}": "―",
        f"reason_{b.pk}": "",
        f"version_{b.pk}": "0",
        f"amount_{c.pk}": "",
        f"reason_{c.pk}": "",
        f"version_{c.pk}": "0",
    }
    form = _sheet_form(office, data)
    assert form.is_valid(), form.errors
    assert form.rows() == [
        {"project_id": a.pk, "value": 1_526_843, "reason": "見直し", "version": 0},
        {"project_id": b.pk, "value": None, "reason": "", "version": 0},
        {"project_id": c.pk, "value": NOT_ENTERED, "reason": "", "version": 0},
    ]

    data[f"amount_{b.pk}"] = "abc"
    data[f"reason_{c.pk}"] = "x" * 1001
    form = _sheet_form(office, data)
    assert not form.is_valid()
    assert form.errors[f"amount_{b.pk}"] == [
        "北区事業2（9月補正後）：「abc」は数値ではありません。"
    ]
    assert form.errors[f"reason_{c.pk}"][0].startswith("北区事業3（補正理由）：")


@pytest.mark.django_db
def test_entry_sheet_form_prefills_the_initial_figures(office):
    form = _sheet_form(office)
    a, b, c = office.kita_projects
    assert [form[f"amount_{p.pk}"].value() for p in (a, b, c)] == ["3,100", "617", "1,582"]
    assert [form[f"version_{p.pk}"].value() for p in (a, b, c)] == [0, 0, 0]


@pytest.mark.django_db
def test_row_errors_can_be_added_to_the_sheet_shown_afresh(office):
    """After a conflict the view shows an unbound sheet with the service's messages."""
    a = office.kita_projects[0]
    form = _sheet_form(office)
    form.add_row_error(a.pk, "amount", "他の人が変更しました")
    form.add_row_error(None, None, "配分額を超えています")
    assert form.errors[f"amount_{a.pk}"] == ["他の人が変更しました"]
    assert form.non_field_errors() == ["配分額を超えています"]
