"""The staff entry sheet (/staff/<year>/<ward>/): what it shows, what it accepts, and that
a refused save answers 400 (409 for a conflict), names the project and the field in
Japanese, and saves nothing at all."""

from html import unescape
from html.parser import HTMLParser

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from budgets import services
from budgets.models import StageFigure
from budgets.services import NOT_ENTERED, SaveRejected, SheetRow
from tests.factories import StageFigureFactory
from wards.models import FiscalYear, Stage, StagePublication

pytestmark = pytest.mark.django_db


def _url(ward="kita"):
    return reverse("budgets:staff-sheet", args=[2025, ward])


class _SheetInputs(HTMLParser):
    """The inputs of the entry sheet form as a browser would post them."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name") or ""
        if tag == "input" and name.split("_")[0] in {"amount", "reason", "version", "stage"}:
            self.values[name] = unescape(attrs.get("value") or "")


def _open(client, ward="kita") -> dict[str, str]:
    """GET the sheet and return its inputs, as opened in a browser."""
    response = client.get(_url(ward))
    assert response.status_code == 200
    parser = _SheetInputs()
    parser.feed(response.content.decode())
    return parser.values


def _snapshot():
    """Every figure row with every stored field: equal snapshots mean nothing was saved."""
    return sorted(
        StageFigure.objects.values_list("id", "project_id", "stage", "amount", "reason", "version")
    )


def _history_count():
    return StageFigure.history.count()


def _figure(project, stage=Stage.SEPTEMBER):
    return StageFigure.objects.filter(project=project, stage=stage).first()


def _post(client, data, ward="kita"):
    return client.post(_url(ward), data)


def _assert_refused(response, status, *fragments):
    html = response.content.decode()
    assert response.status_code == status, html
    assert "保存できませんでした。何も保存されていません。" in html
    for fragment in fragments:
        assert fragment in html, fragment
    return html


# --- what the sheet shows ---------------------------------------------------------------------


def test_sheet_prefills_september_with_the_initial_figures(kita_client, office):
    inputs = _open(kita_client)
    a, b, c = office.kita_projects
    assert inputs[f"amount_{a.pk}"] == "3,100"
    assert inputs[f"amount_{b.pk}"] == "617"
    assert inputs[f"amount_{c.pk}"] == "1,582"
    # Nothing entered at September yet: version 0, no reasons.
    assert {inputs[f"version_{p.pk}"] for p in office.kita_projects} == {"0"}
    assert {inputs[f"reason_{p.pk}"] for p in office.kita_projects} == {""}
    # Only kita's projects are on kita's sheet.
    assert not any(f"_{p.pk}" in name for p in office.chuo_projects for name in inputs)


def test_sheet_prefills_the_saved_september_figure_once_entered(kita_client, office):
    project = office.kita_projects[1]
    StageFigureFactory(project=project, stage=Stage.SEPTEMBER, amount=162_500, reason="縮小")
    inputs = _open(kita_client)
    assert inputs[f"amount_{project.pk}"] == "162.5"
    assert inputs[f"reason_{project.pk}"] == "縮小"
    assert inputs[f"version_{project.pk}"] == str(_figure(project).version)


def test_saving_the_prefilled_sheet_needs_no_reason(kita_client, office):
    before = _snapshot()
    response = _post(kita_client, _open(kita_client))
    assert response.status_code == 302
    assert len(_snapshot()) == len(before) + 3
    assert [_figure(p).amount for p in office.kita_projects] == [3_100_000, 617_000, 1_582_000]
    assert all(_figure(p).reason == "" for p in office.kita_projects)


def test_sheet_shows_running_totals_against_the_allocation(kita_client, office):
    data = _open(kita_client)
    a = office.kita_projects[0]
    data[f"amount_{a.pk}"] = "3,000"
    data[f"reason_{a.pk}"] = "事業費の精査"
    assert _post(kita_client, data).status_code == 302
    html = kita_client.get(_url()).content.decode()
    totals = html[html.index('id="sheet-totals-heading"') :]
    assert "まちづくり推進経費 合計" in totals
    assert "配分額" in totals and "19,000" in totals
    assert "5,299" in totals  # initial: 3,100 + 617 + 1,582
    assert "13,701" in totals  # remaining at the initial stage
    assert "5,199" in totals  # September: 3,000 + 617 + 1,582
    assert "13,801" in totals  # remaining at September: 19,000 − 5,199


def test_sheet_totals_say_not_entered_before_anything_is_saved(kita_client):
    html = kita_client.get(_url()).content.decode()
    totals = html[html.index('id="sheet-totals-heading"') :]
    assert "未入力" in totals


def test_other_wards_staff_cannot_open_or_post_the_sheet(client, office):
    client.force_login(office.kita_staff)
    data = _open(client)
    client.force_login(office.chuo_staff)
    assert client.get(_url("kita")).status_code == 403
    before = _snapshot()
    assert client.post(_url("kita"), data).status_code == 403
    assert _snapshot() == before
    assert client.get(_url("chuo")).status_code == 200


def test_anonymous_users_are_sent_to_log_in(client, office):
    response = client.get(_url())
    assert response.status_code == 302
    assert "login" in response["Location"]


# --- the three states of a figure -------------------------------------------------------------


def test_no_budget_can_be_entered_and_cleared_back_to_not_entered(kita_client, office):
    project = office.kita_projects[1]
    data = _open(kita_client)
    data[f"amount_{project.pk}"] = "―"
    data[f"reason_{project.pk}"] = "事業の中止"
    assert _post(kita_client, data).status_code == 302
    figure = _figure(project)
    assert figure is not None and figure.amount is None and figure.is_no_budget
    assert figure.reason == "事業の中止"
    assert _open(kita_client)[f"amount_{project.pk}"] == "―"

    data = _open(kita_client)
    data[f"amount_{project.pk}"] = ""
    data[f"reason_{project.pk}"] = ""
    assert _post(kita_client, data).status_code == 302
    assert _figure(project) is None  # not entered again
    # The other rows are untouched, and the input falls back to the initial figure.
    assert _figure(office.kita_projects[0]).amount == 3_100_000
    inputs = _open(kita_client)
    assert inputs[f"amount_{project.pk}"] == "617"
    assert inputs[f"version_{project.pk}"] == "0"


@pytest.mark.parametrize("typed", ["－", "-", "—", "ー"])
def test_any_dash_is_no_budget(kita_client, office, typed):
    project = office.kita_projects[0]
    data = _open(kita_client)
    data[f"amount_{project.pk}"] = typed
    data[f"reason_{project.pk}"] = "中止"
    assert _post(kita_client, data).status_code == 302
    assert _figure(project).amount is None


def test_zero_is_stored_as_zero_not_as_no_budget(kita_client, office):
    project = office.kita_projects[2]
    data = _open(kita_client)
    data[f"amount_{project.pk}"] = "0"
    data[f"reason_{project.pk}"] = "今年度は執行なし"
    assert _post(kita_client, data).status_code == 302
    figure = _figure(project)
    assert figure.amount == 0 and not figure.is_no_budget
    assert _open(kita_client)[f"amount_{project.pk}"] == "0"


def test_full_width_and_yen_precision_are_stored_in_yen(kita_client, office):
    a, b, c = office.kita_projects
    data = _open(kita_client)
    data[f"amount_{a.pk}"] = "３，０００"
    data[f"amount_{b.pk}"] = "1,526.843"
    for project in (a, b):
        data[f"reason_{project.pk}"] = "見直し"
    assert _post(kita_client, data).status_code == 302
    assert _figure(a).amount == 3_000_000
    assert _figure(b).amount == 1_526_843
    assert _figure(c).amount == 1_582_000


# --- refusals: 400, a message naming project and field, nothing saved -----------------------


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "「abc」は数値ではありません"),
        ("1,2O0", "「1,2O0」は数値ではありません"),
        ("-100", "「-100」：マイナスの金額は入力できません"),
        ("－１００", "マイナスの金額は入力できません"),
        ("1.2345", "「1.2345」：小数点以下は3桁（1円単位）までです"),
        ("1,000,000,000", "「1,000,000,000」は大きすぎます"),
        ("9" * 41, "40"),
    ],
)
def test_bad_amounts_are_refused_naming_project_and_field(kita_client, office, typed, message):
    a, b, c = office.kita_projects
    data = _open(kita_client)
    # Valid changes on the other rows must not be saved either.
    data[f"amount_{a.pk}"] = "3,000"
    data[f"reason_{a.pk}"] = "減額"
    data[f"amount_{b.pk}"] = typed
    before, history = _snapshot(), _history_count()
    response = _post(kita_client, data)
    html = _assert_refused(response, 400, "北区事業2（9月補正後）：", message)
    assert 'aria-invalid="true"' in html
    assert _snapshot() == before
    assert _history_count() == history


def test_changed_row_without_a_reason_is_refused(kita_client, office):
    a, b, c = office.kita_projects
    data = _open(kita_client)
    data[f"amount_{a.pk}"] = "3,000"
    data[f"reason_{a.pk}"] = "減額"
    data[f"amount_{b.pk}"] = "162"  # 617 → 162, no reason
    before = _snapshot()
    response = _post(kita_client, data)
    _assert_refused(
        response,
        400,
        "北区事業2（補正理由）：617千円 から 162千円 に変わる理由を入力してください。",
        f'id="id_reason_{b.pk}-error"',
    )
    assert _snapshot() == before


def test_reason_is_needed_for_no_budget_and_zero_too(kita_client, office):
    a, b, c = office.kita_projects
    data = _open(kita_client)
    data[f"amount_{a.pk}"] = "―"
    data[f"amount_{b.pk}"] = "0"
    before = _snapshot()
    html = _assert_refused(_post(kita_client, data), 400)
    assert "北区事業1（補正理由）：3,100千円 から ― に変わる理由" in html
    assert "北区事業2（補正理由）：617千円 から 0千円 に変わる理由" in html
    assert _snapshot() == before


def test_ward_total_above_the_allocation_is_refused(kita_client, office):
    a = office.kita_projects[0]
    data = _open(kita_client)
    data[f"amount_{a.pk}"] = "17,000"  # 17,000 + 617 + 1,582 = 19,199 > 19,000
    data[f"reason_{a.pk}"] = "大規模改修"
    before, history = _snapshot(), _history_count()
    html = _assert_refused(_post(kita_client, data), 400)
    assert (
        "北区のまちづくり推進経費の9月補正後の合計 19,199千円が、"
        "配分額 19,000千円を 199千円超えています。"
    ) in html
    assert _snapshot() == before
    assert _history_count() == history


def test_ward_total_exactly_at_the_allocation_is_accepted(kita_client, office):
    a = office.kita_projects[0]
    data = _open(kita_client)
    data[f"amount_{a.pk}"] = "16,801"  # 16,801 + 617 + 1,582 = 19,000
    data[f"reason_{a.pk}"] = "大規模改修"
    assert _post(kita_client, data).status_code == 302
    assert _figure(a).amount == 16_801_000


def test_fund_not_capped_by_allocation_may_exceed_it(kita_client, office):
    a = office.kita_projects[0]
    a.fund = office.fukko  # 復興支援自治推進経費 is totalled apart, without a cap
    a.save()
    data = _open(kita_client)
    data[f"amount_{a.pk}"] = "50,000"
    data[f"reason_{a.pk}"] = "復興事業"
    assert _post(kita_client, data).status_code == 302
    assert _figure(a).amount == 50_000_000


@pytest.fixture
def settlement_open(office):
    """2025 with February published and the settlement open; February 3,100 / 617 / ―."""
    FiscalYear.objects.filter(pk=office.year.pk).update(
        published_stage=Stage.FEBRUARY, open_stage=Stage.SETTLEMENT
    )
    office.year.refresh_from_db()
    for project, amount in zip(office.kita_projects, (3_100_000, 617_000, None), strict=True):
        StageFigureFactory(project=project, stage=Stage.SEPTEMBER, amount=amount)
        StageFigureFactory(project=project, stage=Stage.FEBRUARY, amount=amount)
    return office


def test_settlement_above_the_february_budget_is_refused(kita_client, settlement_open):
    a, b, c = settlement_open.kita_projects
    data = _open(kita_client)
    assert data[f"amount_{a.pk}"] == "3,100"  # prefilled from February
    assert data[f"amount_{c.pk}"] == "―"
    data[f"amount_{a.pk}"] = "3,100.001"
    data[f"reason_{a.pk}"] = "追加執行"
    before = _snapshot()
    html = _assert_refused(_post(kita_client, data), 400)
    assert (
        "北区事業1（決算額）：決算額 3,100.001千円 が2月補正後の予算額 3,100千円 を超えています。"
    ) in html
    assert _snapshot() == before


def test_settlement_of_a_project_without_february_budget_is_refused(kita_client, settlement_open):
    c = settlement_open.kita_projects[2]
    data = _open(kita_client)
    data[f"amount_{c.pk}"] = "1"
    data[f"reason_{c.pk}"] = "執行"
    before = _snapshot()
    html = _assert_refused(_post(kita_client, data), 400)
    assert "北区事業3（決算額）：決算額 1千円 が2月補正後の予算額 ― を超えています。" in html
    assert _snapshot() == before


def test_settlement_within_the_february_budget_is_accepted(kita_client, settlement_open):
    a, b, c = settlement_open.kita_projects
    data = _open(kita_client)
    data[f"amount_{a.pk}"] = "3,100"
    data[f"amount_{b.pk}"] = "580.25"
    data[f"reason_{b.pk}"] = "入札差金"
    data[f"amount_{c.pk}"] = "0"
    data[f"reason_{c.pk}"] = "執行なし"
    assert _post(kita_client, data).status_code == 302
    assert [_figure(p, Stage.SETTLEMENT).amount for p in (a, b, c)] == [3_100_000, 580_250, 0]


def test_save_when_no_stage_is_open_is_refused(kita_client, office):
    data = _open(kita_client)
    FiscalYear.objects.filter(pk=office.year.pk).update(open_stage=None)
    before = _snapshot()
    response = _post(kita_client, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "この段階は入力を受け付けていないか、提出済みです。" in html
    assert "入力を受け付けている段階はありません" in html
    assert _snapshot() == before
    # The service refuses on its own too.
    office.year.refresh_from_db()
    with pytest.raises(SaveRejected) as excinfo:
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=[SheetRow(project_id=office.kita_projects[0].pk, value=1_000)],
        )
    assert "入力を受け付けている段階がありません" in str(excinfo.value)
    assert _snapshot() == before


def _submit_both_wards(office):
    for ward, user, projects in (
        (office.kita, office.kita_staff, office.kita_projects),
        (office.chuo, office.chuo_staff, office.chuo_projects),
    ):
        services.figures_save_sheet(
            user=user,
            fiscal_year=office.year,
            ward=ward,
            rows=[
                SheetRow(project_id=p.pk, value=_figure(p, Stage.INITIAL).amount) for p in projects
            ],
        )
        services.ward_submit(user=user, fiscal_year=office.year, ward=ward)


def test_old_form_posted_after_the_stage_was_published_is_refused(client, office):
    client.force_login(office.kita_staff)
    stale = _open(client)
    a = office.kita_projects[0]
    stale[f"amount_{a.pk}"] = "2,000"
    stale[f"reason_{a.pk}"] = "減額"
    _submit_both_wards(office)
    client.force_login(office.planner)
    assert client.post(reverse("budgets:staff-publish", args=[2025])).status_code == 302
    assert StagePublication.objects.filter(stage=Stage.SEPTEMBER).exists()

    client.force_login(office.kita_staff)
    before, history = _snapshot(), _history_count()
    response = _post(client, stale)
    assert response.status_code == 400
    assert "この段階は入力を受け付けていないか、提出済みです。" in response.content.decode()
    assert _snapshot() == before
    assert _history_count() == history
    assert _figure(a).amount == 3_100_000


def test_old_form_posted_after_the_next_stage_opened_is_refused(client, office):
    """A September form posted once February is open must not land in February."""
    client.force_login(office.kita_staff)
    september = _submit_and_reopen(client, office)
    a = office.kita_projects[0]
    september[f"amount_{a.pk}"] = "3,100"
    before = _snapshot()
    response = _post(client, september)
    assert response.status_code == 409
    assert "現在の受付段階は2月補正後" in response.content.decode()
    assert _snapshot() == before


def _submit_and_reopen(client, office):
    """Save September, reopen the sheet, then publish it and open February."""
    _submit_both_wards(office)
    september = _open(client)  # the submitted sheet is read-only: no inputs
    assert september == {}
    # A form opened while September was still being edited, with September's versions.
    september = {"stage": str(Stage.SEPTEMBER.value)}
    for project in office.kita_projects:
        figure = _figure(project)
        september[f"amount_{project.pk}"] = "3,100"
        september[f"reason_{project.pk}"] = "stale"
        september[f"version_{project.pk}"] = str(figure.version)
    services.stage_publish(user=office.planner, fiscal_year=office.year)
    services.stage_open(user=office.planner, fiscal_year=office.year, stage=Stage.FEBRUARY)
    return september


def test_form_opened_before_anything_was_saved_does_not_land_in_the_next_stage(client, office):
    client.force_login(office.kita_staff)
    stale = _open(client)  # September, nothing entered yet: versions 0
    a = office.kita_projects[0]
    stale[f"amount_{a.pk}"] = "2,000"
    stale[f"reason_{a.pk}"] = "減額"
    _submit_both_wards(office)
    services.stage_publish(user=office.planner, fiscal_year=office.year)
    services.stage_open(user=office.planner, fiscal_year=office.year, stage=Stage.FEBRUARY)
    before = _snapshot()
    response = _post(client, stale)
    assert response.status_code in (400, 409)
    assert _snapshot() == before


def test_submitted_ward_cannot_save(kita_client, office):
    data = _open(kita_client)
    services.figures_save_sheet(
        user=office.kita_staff,
        fiscal_year=office.year,
        ward=office.kita,
        rows=[SheetRow(project_id=p.pk, value=1_000_000, reason="x") for p in office.kita_projects],
    )
    services.ward_submit(user=office.kita_staff, fiscal_year=office.year, ward=office.kita)
    before = _snapshot()
    assert _post(kita_client, data).status_code == 400
    assert _snapshot() == before
    with pytest.raises(SaveRejected, match="提出済み"):
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=[SheetRow(project_id=office.kita_projects[0].pk, value=5, reason="x", version=1)],
        )
    assert _snapshot() == before


# --- one transaction --------------------------------------------------------------------------


def _rows(office, values, reasons=("", "", "")):
    return [
        SheetRow(project_id=p.pk, value=value, reason=reason, version=0)
        for p, value, reason in zip(office.kita_projects, values, reasons, strict=True)
    ]


def test_bad_third_row_through_the_sheet_saves_nothing(kita_client, office):
    a, b, c = office.kita_projects
    data = _open(kita_client)
    data[f"amount_{a.pk}"] = "3,000"
    data[f"reason_{a.pk}"] = "減額"
    data[f"amount_{b.pk}"] = "600"
    data[f"reason_{b.pk}"] = "減額"
    data[f"amount_{c.pk}"] = "abc"
    before = _snapshot()
    _assert_refused(
        _post(kita_client, data), 400, "北区事業3（9月補正後）：「abc」は数値ではありません"
    )
    assert _snapshot() == before


def test_bad_third_row_through_the_service_saves_nothing(office):
    before, history = _snapshot(), _history_count()
    with pytest.raises(SaveRejected) as excinfo:
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=_rows(office, [3_000_000, 600_000, 1_000_000], ("減額", "減額", "")),
        )
    assert not excinfo.value.conflict
    [problem] = excinfo.value.problems
    assert (problem.project_id, problem.field) == (office.kita_projects[2].pk, "reason")
    assert "北区事業3（補正理由）" in problem.message
    assert _snapshot() == before
    assert _history_count() == history


def test_third_row_failing_on_write_rolls_back_the_first_two(office):
    """The first two rows are written before the third fails; all are rolled back."""
    before, history = _snapshot(), _history_count()
    with pytest.raises((SaveRejected, ValidationError)):
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=_rows(office, [3_000_000, 600_000, -1], ("減額", "減額", "誤り")),
        )
    assert _snapshot() == before
    assert _history_count() == history


def test_allocation_overrun_rolls_back_rows_already_written(office):
    before, history = _snapshot(), _history_count()
    with pytest.raises(SaveRejected) as excinfo:
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=_rows(office, [3_100_000, 617_000, 16_000_000], ("", "", "増額")),
        )
    [problem] = excinfo.value.problems
    assert "配分額 19,000千円を 717千円超えています" in problem.message
    assert _snapshot() == before
    assert _history_count() == history


def test_service_refuses_a_project_of_another_ward(office):
    before = _snapshot()
    with pytest.raises(SaveRejected, match="この区・年度の事業ではない行があります"):
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=[SheetRow(project_id=office.chuo_projects[0].pk, value=1_000, reason="x")],
        )
    assert _snapshot() == before


def test_service_refuses_users_outside_the_ward(office):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.figures_save_sheet(
            user=office.chuo_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=_rows(office, [3_100_000, 617_000, 1_582_000]),
        )
    assert not StageFigure.objects.filter(stage=Stage.SEPTEMBER).exists()


def test_service_leaves_unchanged_rows_alone(office):
    assert (
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=_rows(office, [3_100_000, 617_000, NOT_ENTERED]),
        )
        == 2
    )
    versions = {p.pk: _figure(p).version for p in office.kita_projects[:2]}
    rows = [
        SheetRow(project_id=p.pk, value=_figure(p).amount, version=versions[p.pk])
        for p in office.kita_projects[:2]
    ] + [SheetRow(project_id=office.kita_projects[2].pk, value=NOT_ENTERED)]
    history = _history_count()
    assert (
        services.figures_save_sheet(
            user=office.kita_staff, fiscal_year=office.year, ward=office.kita, rows=rows
        )
        == 0
    )
    assert _history_count() == history
    assert {p.pk: _figure(p).version for p in office.kita_projects[:2]} == versions


# --- no lost updates --------------------------------------------------------------------------


def test_second_sheet_with_stale_versions_gets_409_and_the_first_save_stays(office):
    first, second = Client(), Client()
    first.force_login(office.kita_staff)
    second.force_login(office.planner)
    a, b, c = office.kita_projects
    sheet_1, sheet_2 = _open(first), _open(second)
    assert sheet_1 == sheet_2

    sheet_1[f"amount_{a.pk}"] = "3,000"
    sheet_1[f"reason_{a.pk}"] = "減額"
    assert _post(first, sheet_1).status_code == 302
    saved = _snapshot()

    sheet_2[f"amount_{a.pk}"] = "3,500"
    sheet_2[f"reason_{a.pk}"] = "増額"
    response = _post(second, sheet_2)
    html = _assert_refused(response, 409, "他の人", "北区事業1（9月補正後）", "現在 3,000千円")
    assert _snapshot() == saved
    assert _figure(a).amount == 3_000_000
    assert _figure(a).reason == "減額"

    # The answer shows what is saved now, with the current versions: saving again works.
    parser = _SheetInputs()
    parser.feed(html)
    assert parser.values[f"amount_{a.pk}"] == "3,000"
    assert parser.values[f"version_{a.pk}"] == str(_figure(a).version)
    retry = dict(parser.values)
    retry[f"amount_{a.pk}"] = "3,500"
    retry[f"reason_{a.pk}"] = "増額"
    assert _post(second, retry).status_code == 302
    assert _figure(a).amount == 3_500_000


def test_stale_unchanged_row_is_a_conflict_too(office):
    """The second sheet only edits project 2, but would write back project 1's old value."""
    services.figures_save_sheet(
        user=office.kita_staff,
        fiscal_year=office.year,
        ward=office.kita,
        rows=_rows(office, [3_100_000, 617_000, 1_582_000]),
    )
    first, second = Client(), Client()
    first.force_login(office.kita_staff)
    second.force_login(office.kita_staff)
    a, b, c = office.kita_projects
    sheet_1, sheet_2 = _open(first), _open(second)
    sheet_1[f"amount_{a.pk}"] = "2,500"
    sheet_1[f"reason_{a.pk}"] = "減額"
    assert _post(first, sheet_1).status_code == 302
    saved = _snapshot()
    sheet_2[f"amount_{b.pk}"] = "600"
    sheet_2[f"reason_{b.pk}"] = "減額"
    _assert_refused(_post(second, sheet_2), 409, "他の人", "現在 2,500千円")
    assert _snapshot() == saved


def test_stale_version_through_the_service_is_a_conflict(office):
    a = office.kita_projects[0]
    services.figures_save_sheet(
        user=office.kita_staff,
        fiscal_year=office.year,
        ward=office.kita,
        rows=[SheetRow(project_id=a.pk, value=2_000_000, reason="減額", version=0)],
    )
    before = _snapshot()
    with pytest.raises(SaveRejected) as excinfo:
        services.figures_save_sheet(
            user=office.planner,
            fiscal_year=office.year,
            ward=office.kita,
            rows=[SheetRow(project_id=a.pk, value=2_500_000, reason="増額", version=0)],
        )
    assert excinfo.value.conflict
    assert "他の人" in str(excinfo.value) and "現在 2,000千円" in str(excinfo.value)
    assert _snapshot() == before


def test_cleared_and_reentered_figure_is_not_overwritten_by_an_old_sheet(office):
    a = office.kita_projects[0]

    def save(value, version, reason="見直し"):
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=[SheetRow(project_id=a.pk, value=value, reason=reason, version=version)],
        )

    save(3_100_000, 0)
    opened = _figure(a).version  # someone opens the sheet now
    save(NOT_ENTERED, opened)  # another clears the figure …
    save(2_000_000, 0)  # … and enters it again
    with pytest.raises(SaveRejected):
        save(2_900_000, opened)  # the first sheet is posted
    assert _figure(a).amount == 2_000_000
