"""The audit trail: every write path leaves history with the acting user and the reason,
bulk writes included, and the history of the figures adds up to the writes accepted."""

import random

import pytest
from django import forms
from django.core.management import call_command
from django.urls import reverse

from budgets import services
from budgets.models import Allocation, Correction, Fund, Project, StageFigure
from budgets.services import NOT_ENTERED, SaveRejected, SheetRow
from kumamachi.audit import audit_context, current_reason, current_user
from wards.models import FiscalYear, Stage, StagePublication, Ward, WardSubmission

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _figure(project, stage=Stage.SEPTEMBER):
    return StageFigure.objects.filter(project=project, stage=stage).first()


def _latest(queryset):
    return queryset.order_by("-history_id").first()


def _sheet_data(client, ward="kita") -> tuple[str, dict]:
    """The entry sheet's inputs as its form would post them now."""
    url = reverse("budgets:staff-sheet", args=[2025, ward])
    form = client.get(url).context["form"]
    data = {}
    for field in form:
        value = field.value()
        data[field.html_name] = "" if value is None else str(value)
    return url, data


# --- the context ------------------------------------------------------------------------------


def test_audit_context_sets_and_restores_user_and_reason(office):
    assert (current_user(), current_reason()) == (None, "")
    with audit_context(user=office.planner, reason="外側"):
        with audit_context(user=office.kita_staff, reason="内側"):
            assert (current_user(), current_reason()) == (office.kita_staff, "内側")
        assert (current_user(), current_reason()) == (office.planner, "外側")
    assert (current_user(), current_reason()) == (None, "")


def test_anonymous_user_is_recorded_as_nobody(office):
    from django.contrib.auth.models import AnonymousUser

    project = office.kita_projects[0]
    with audit_context(user=AnonymousUser(), reason="匿名"):
        project.summary = "変更"
        project.save()
    record = _latest(project.history.all())
    assert (record.history_user, record.history_change_reason) == (None, "匿名")


def test_each_save_of_one_instance_records_its_own_user_and_reason(office):
    """An instance saved twice must not carry the first context's user and reason along."""
    figure = StageFigure(project=office.kita_projects[0], stage=Stage.SEPTEMBER, amount=1_000)
    with audit_context(user=office.kita_staff, reason="一回目"):
        figure.save()
    with audit_context(user=office.planner, reason="二回目"):
        figure.amount = 2_000
        figure.save()
    with audit_context(user=office.chuo_staff, reason="三回目"):
        StageFigure.objects.filter(pk=figure.pk).bulk_update([figure], ["amount"])
    figure_id = figure.pk
    with audit_context(user=office.planner, reason="削除"):
        figure.delete()
    records = list(StageFigure.history.filter(id=figure_id).order_by("history_id"))
    assert [(r.history_type, r.history_user, r.history_change_reason) for r in records] == [
        ("+", office.kita_staff, "一回目"),
        ("~", office.planner, "二回目"),
        ("~", office.chuo_staff, "三回目"),
        ("-", office.planner, "削除"),
    ]


# --- every write path -------------------------------------------------------------------------


def test_entry_sheet_records_the_staff_user_and_the_typed_reason(client, office):
    client.force_login(office.kita_staff)
    a, b, c = office.kita_projects
    url, data = _sheet_data(client)
    data[f"amount_{a.pk}"] = "2,800"
    data[f"reason_{a.pk}"] = "参加者数の見直しによる減額"
    assert client.post(url, data).status_code == 302

    record = _latest(StageFigure.history.filter(project_id=a.pk, stage=Stage.SEPTEMBER))
    assert record.history_type == "+"
    assert record.history_user == office.kita_staff
    assert record.history_change_reason == "参加者数の見直しによる減額"
    assert record.amount == 2_800_000
    # Unchanged from the initial budget: no reason typed, the default is recorded.
    record = _latest(StageFigure.history.filter(project_id=b.pk, stage=Stage.SEPTEMBER))
    assert (record.history_user, record.history_change_reason) == (
        office.kita_staff,
        "入力シートで入力",
    )

    # A change, then a clear back to not entered, are recorded the same way.
    url, data = _sheet_data(client)
    data[f"amount_{a.pk}"] = "2,900"
    data[f"reason_{a.pk}"] = "再見積もり"
    data[f"amount_{b.pk}"] = ""
    assert client.post(url, data).status_code == 302
    record = _latest(StageFigure.history.filter(project_id=a.pk, stage=Stage.SEPTEMBER))
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "~",
        office.kita_staff,
        "再見積もり",
    )
    record = _latest(StageFigure.history.filter(project_id=b.pk, stage=Stage.SEPTEMBER))
    assert (record.history_type, record.history_user) == ("-", office.kita_staff)
    assert record.history_change_reason == "入力シートで入力"


def test_long_reason_is_saved_and_recorded(client, office):
    """A 補正理由 may be 1,000 characters long; the save must not fail on the history."""
    client.force_login(office.kita_staff)
    a = office.kita_projects[0]
    url, data = _sheet_data(client)
    reason = "地域の要望を受けて事業内容を見直したため。" * 40
    assert len(reason) > 500
    data[f"amount_{a.pk}"] = "2,800"
    data[f"reason_{a.pk}"] = reason[:1000]
    assert client.post(url, data).status_code == 302
    figure = _figure(a)
    assert figure.reason == reason[:1000]
    record = _latest(figure.history.all())
    assert record.history_user == office.kita_staff
    assert record.reason == reason[:1000]
    # The history keeps the whole reason (a text column), not a shortened one.
    assert record.history_change_reason == reason[:1000]


def test_long_correction_and_admin_reasons_are_recorded(client, office):
    project = office.kita_projects[0]
    figure = _figure(project, Stage.INITIAL)
    reason = "資料の転記誤りを訂正。" * 50
    correction = services.figure_correct(
        user=office.planner,
        project=project,
        stage=Stage.INITIAL,
        value=3_000_000,
        reason=reason,
        version=figure.version,
    )
    assert correction.reason == reason
    record = _latest(figure.history.all())
    assert record.history_change_reason == "公表後の訂正：" + reason

    client.force_login(office.planner)
    url = f"/admin/budgets/project/{project.pk}/change/"
    data = _admin_form_data(client.get(url), summary="長い理由", change_reason="理" * 500)
    assert client.post(url, data).status_code == 302
    record = _latest(project.history.all())
    assert (record.summary, record.history_user) == ("長い理由", office.planner)
    assert record.history_change_reason == "理" * 500


def test_correction_records_the_planner_and_the_reason(office):
    project = office.kita_projects[0]
    figure = _figure(project, Stage.INITIAL)
    correction = services.figure_correct(
        user=office.planner,
        project=project,
        stage=Stage.INITIAL,
        value=3_000_000,
        reason="転記誤りの訂正",
        version=figure.version,
    )
    record = _latest(figure.history.all())
    assert (record.history_type, record.history_user, record.amount) == (
        "~",
        office.planner,
        3_000_000,
    )
    assert "転記誤りの訂正" in record.history_change_reason
    assert "公表後の訂正" in record.history_change_reason
    record = _latest(correction.history.all())
    assert (record.history_type, record.history_user) == ("+", office.planner)
    assert "転記誤りの訂正" in record.history_change_reason
    assert (correction.old_amount, correction.new_amount) == (3_100_000, 3_000_000)


def _admin_form_data(response, **changes) -> dict:
    """The admin change form's data exactly as the page shows it, with changes applied."""
    form = response.context["adminform"].form
    data = {}
    for field in form:
        value = field.value()
        if isinstance(field.field, forms.BooleanField):
            if value:
                data[field.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[field.html_name] = [str(v) for v in value]
        else:
            data[field.html_name] = "" if value is None else str(value)
    data.update(changes)
    return data


@pytest.mark.parametrize("who", ["kita_staff", "planner"])
def test_admin_change_records_the_user_and_the_change_reason(client, office, who):
    user = getattr(office, who)
    project = office.kita_projects[0]
    client.force_login(user)
    url = f"/admin/budgets/project/{project.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    data = _admin_form_data(page, summary="公民館で子ども食堂を開く。", change_reason="概要の更新")
    before = project.history.count()
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    project.refresh_from_db()
    assert project.summary == "公民館で子ども食堂を開く。"
    assert project.history.count() == before + 1
    record = _latest(project.history.all())
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "~",
        user,
        "概要の更新",
    )
    assert record.summary == "公民館で子ども食堂を開く。"


def test_load_seed_records_history_for_every_seed_row(db):
    call_command("load_seed", verbosity=0)
    for model in (Fund, Allocation, Project, StageFigure, FiscalYear):
        rows = set(model.objects.values_list("pk", flat=True))
        assert rows, model
        created = set(
            model.history.filter(history_type="+").values_list(model._meta.pk.attname, flat=True)
        )
        assert rows <= created, model
    # Loading again changes nothing, so it records nothing.
    counts = {m: m.history.count() for m in (Project, StageFigure, Allocation)}
    call_command("load_seed", verbosity=0)
    assert {m: m.history.count() for m in counts} == counts


def test_stage_workflow_records_the_planner_and_the_staff(office):
    year = office.year
    for ward, user, projects in (
        (office.kita, office.kita_staff, office.kita_projects),
        (office.chuo, office.chuo_staff, office.chuo_projects),
    ):
        services.figures_save_sheet(
            user=user,
            fiscal_year=year,
            ward=ward,
            rows=[SheetRow(project_id=p.pk, value=_figure(p, 1).amount) for p in projects],
        )
        submission = services.ward_submit(user=user, fiscal_year=year, ward=ward)
        record = _latest(submission.history.all())
        assert (record.history_type, record.history_user) == ("+", user)
        assert record.history_change_reason == "9月補正後を提出"

    # A planner sends kita back and it submits again: the deletion is recorded too.
    kita_submission = WardSubmission.objects.get(ward=office.kita)
    services.ward_return(user=office.planner, fiscal_year=year, ward=office.kita, reason="確認")
    record = _latest(WardSubmission.history.filter(id=kita_submission.pk))
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "-",
        office.planner,
        "差し戻し：確認",
    )
    services.ward_submit(user=office.kita_staff, fiscal_year=year, ward=office.kita)

    publication = services.stage_publish(user=office.planner, fiscal_year=year)
    record = _latest(FiscalYear.history.filter(year=year.pk))
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "~",
        office.planner,
        "9月補正後を公表",
    )
    assert (record.published_stage, record.open_stage) == (Stage.SEPTEMBER, None)
    record = _latest(publication.history.all())
    assert (record.history_type, record.history_user) == ("+", office.planner)
    assert StagePublication.history.filter(history_user=office.planner).count() == 1

    services.stage_open(user=office.planner, fiscal_year=year, stage=Stage.FEBRUARY)
    record = _latest(FiscalYear.history.filter(year=year.pk))
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "~",
        office.planner,
        "2月補正後の入力受付を開始",
    )
    assert record.open_stage == Stage.FEBRUARY


# --- bulk writes ------------------------------------------------------------------------------


def test_queryset_update_writes_one_history_row_per_row(office):
    before = Project.history.count()
    with audit_context(user=office.planner, reason="概要の一括更新"):
        count = Project.objects.filter(ward=office.kita).update(summary="一括")
    assert count == 3
    records = Project.history.order_by("-history_id")[:3]
    assert Project.history.count() == before + 3
    assert {r.id for r in records} == {p.pk for p in office.kita_projects}
    for record in records:
        assert (record.history_type, record.history_user) == ("~", office.planner)
        assert (record.history_change_reason, record.summary) == ("概要の一括更新", "一括")
    # No other project was touched or recorded.
    assert not Project.history.filter(id__in=[p.pk for p in office.chuo_projects], summary="一括")


def test_update_filtered_on_the_updated_field_records_the_rows_it_changed(office):
    Project.objects.filter(pk=office.kita_projects[0].pk).update(summary="古い")
    before = Project.history.count()
    with audit_context(user=office.planner, reason="置換"):
        assert Project.objects.filter(summary="古い").update(summary="新しい") == 1
    assert Project.history.count() == before + 1
    record = _latest(Project.history.all())
    assert (record.id, record.summary, record.history_change_reason) == (
        office.kita_projects[0].pk,
        "新しい",
        "置換",
    )


def test_update_of_nothing_records_nothing(office):
    before = Project.history.count()
    with audit_context(user=office.planner, reason="なし"):
        assert Project.objects.filter(name="存在しない").update(summary="x") == 0
    assert Project.history.count() == before


def test_bulk_create_writes_one_history_row_per_row(office):
    before = StageFigure.history.count()
    figures = [
        StageFigure(project=p, stage=Stage.SEPTEMBER, amount=amount, reason="取込")
        for p, amount in zip(office.kita_projects, (1_000, None, 0), strict=True)
    ]
    with audit_context(user=office.planner, reason="一括取込"):
        created = StageFigure.objects.bulk_create(figures)
    assert len(created) == 3
    assert StageFigure.history.count() == before + 3
    for figure in StageFigure.objects.filter(stage=Stage.SEPTEMBER):
        [record] = figure.history.all()
        assert (record.history_type, record.history_user) == ("+", office.planner)
        assert record.history_change_reason == "一括取込"
        assert record.amount == figure.amount


def test_bulk_update_writes_one_history_row_per_row(office):
    figures = list(StageFigure.objects.filter(project__ward=office.kita, stage=Stage.INITIAL))
    for figure in figures:
        figure.amount += 1_000
    before = StageFigure.history.count()
    with audit_context(user=office.kita_staff, reason="一括修正"):
        assert StageFigure.objects.bulk_update(figures, ["amount"]) == 3
    assert StageFigure.history.count() == before + 3
    for figure in figures:
        record = _latest(figure.history.all())
        assert (record.history_type, record.history_user) == ("~", office.kita_staff)
        assert (record.history_change_reason, record.amount) == ("一括修正", figure.amount)
        figure.refresh_from_db()
        assert record.amount == figure.amount


def test_queryset_delete_records_each_deletion(office):
    with audit_context(user=office.planner, reason="準備"):
        StageFigure.objects.bulk_create(
            [StageFigure(project=p, stage=Stage.SEPTEMBER, amount=1) for p in office.kita_projects]
        )
    ids = set(StageFigure.objects.filter(stage=Stage.SEPTEMBER).values_list("pk", flat=True))
    before = StageFigure.history.count()
    with audit_context(user=office.planner, reason="取込の取消"):
        deleted, _ = StageFigure.objects.filter(stage=Stage.SEPTEMBER).delete()
    assert deleted == 3
    assert not StageFigure.objects.filter(stage=Stage.SEPTEMBER).exists()
    records = list(StageFigure.history.filter(history_type="-"))
    assert len(records) == 3 == StageFigure.history.count() - before
    assert {r.id for r in records} == ids
    assert {(r.history_user, r.history_change_reason) for r in records} == {
        (office.planner, "取込の取消")
    }


def test_ward_admin_delete_is_recorded(office):
    pillar_owner = Ward.objects.get(slug="kita")
    extra = Project.objects.create(
        ward=pillar_owner, fiscal_year=office.year, fund=office.machizukuri, name="削除する事業"
    )
    with audit_context(user=office.planner, reason="重複登録"):
        Project.objects.filter(pk=extra.pk).delete()
    record = _latest(Project.history.filter(id=extra.pk))
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "-",
        office.planner,
        "重複登録",
    )


# --- the history adds up ----------------------------------------------------------------------

AMOUNTS = [NOT_ENTERED, None, 0, 617_000, 1_582_000, 3_100_000, 1_526_843, 5_000_000, 9_000_000]
REASONS = ["", "", "見直し", "増額", "減額"]


def _state(projects, stage):
    """{project id: (amount, reason, version)} of the figures at a stage, entered ones only."""
    return {
        f.project_id: (f.amount, f.reason, f.version)
        for f in StageFigure.objects.filter(project__in=projects, stage=stage)
    }


def _sheet_expected_to_pass(rows, state, initial, allocation) -> tuple[bool, int]:
    """What the sheet's rules say about ``rows``: accepted?, and how many figures it writes."""
    writes = 0
    after = {pid: (amount, reason) for pid, (amount, reason, _v) in state.items()}
    for row in rows:
        amount, reason, version = state.get(row.project_id, (NOT_ENTERED, "", 0))
        if row.version != version:
            return False, 0
        entered = row.project_id in state
        if row.value == amount and (not entered or row.reason == reason):
            continue
        if row.value is not NOT_ENTERED and row.value != initial[row.project_id] and not row.reason:
            return False, 0
        writes += 1
        if row.value is NOT_ENTERED:
            after.pop(row.project_id, None)
        else:
            after[row.project_id] = (row.value, row.reason)
    total = sum(amount or 0 for amount, _reason in after.values())
    return total <= allocation, writes


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_history_matches_the_figures_after_random_writes(office, seed):
    rng = random.Random(seed)
    wards = {
        office.kita: (office.kita_staff, office.kita_projects),
        office.chuo: (office.chuo_staff, office.chuo_projects),
    }
    baseline = StageFigure.history.count()
    accepted_writes = 0
    outcomes = {"sheet": 0, "rejected": 0, "correction": 0}

    for _step in range(30):
        snapshot = sorted(StageFigure.objects.values_list("id", "stage", "amount", "reason"))
        history_before = StageFigure.history.count()
        # The previous stage, as corrections may have changed it.
        initial = {f.project_id: f.amount for f in StageFigure.objects.filter(stage=Stage.INITIAL)}
        if rng.random() < 0.75:
            ward = rng.choice(list(wards))
            user, projects = wards[ward]
            if rng.random() < 0.3:
                user = office.planner
            state = _state(projects, Stage.SEPTEMBER)
            rows = []
            for project in rng.sample(projects, rng.randint(1, len(projects))):
                version = state.get(project.pk, (None, "", 0))[2]
                if rng.random() < 0.1:
                    version += rng.choice([-1, 1])  # a sheet opened before someone saved
                rows.append(
                    SheetRow(
                        project_id=project.pk,
                        value=rng.choice([*AMOUNTS, initial[project.pk]]),
                        reason=rng.choice(REASONS),
                        version=version,
                    )
                )
            expected_ok, expected_writes = _sheet_expected_to_pass(rows, state, initial, 19_000_000)
            try:
                written = services.figures_save_sheet(
                    user=user, fiscal_year=office.year, ward=ward, rows=rows
                )
            except SaveRejected:
                accepted = False
            else:
                accepted = True
                assert written == expected_writes
                accepted_writes += written
                outcomes["sheet"] += 1
            assert accepted == expected_ok, (rows, state)
        else:
            project = rng.choice(office.kita_projects + office.chuo_projects)
            figure = _figure(project, Stage.INITIAL)
            value = rng.choice([None, 0, 100_000, 2_000_000, figure.amount])
            stale = rng.random() < 0.1
            try:
                services.figure_correct(
                    user=office.planner,
                    project=project,
                    stage=Stage.INITIAL,
                    value=value,
                    reason="訂正",
                    version=figure.version + (1 if stale else 0),
                )
            except SaveRejected:
                accepted = False
            else:
                accepted = True
                accepted_writes += 1
                outcomes["correction"] += 1
            assert not (stale or value == figure.amount) or not accepted
        if not accepted:
            outcomes["rejected"] += 1
            # A refused write leaves neither figures nor history behind.
            assert (
                sorted(StageFigure.objects.values_list("id", "stage", "amount", "reason"))
                == snapshot
            )
            assert StageFigure.history.count() == history_before

    assert StageFigure.history.count() - baseline == accepted_writes
    assert outcomes["sheet"] and outcomes["rejected"], outcomes
    for figure in StageFigure.objects.all():
        record = _latest(figure.history.all())
        assert record.history_type in {"+", "~"}
        assert (record.amount, record.reason, record.stage) == (
            figure.amount,
            figure.reason,
            figure.stage,
        )
    existing = set(StageFigure.objects.values_list("pk", flat=True))
    for figure_id in set(StageFigure.history.values_list("id", flat=True)) - existing:
        assert _latest(StageFigure.history.filter(id=figure_id)).history_type == "-"
    # Every write of the sequence names who made it and why.
    recent = StageFigure.history.order_by("history_id")[baseline:]
    assert all(r.history_user is not None and r.history_change_reason for r in recent)
    assert Correction.objects.count() == outcomes["correction"]


# --- every audited model × every public bulk path -----------------------------------------------


def _audited_models() -> list:
    """Every model that keeps a history, found by walking the apps (a new audited model
    must be added to SPECS below, or the test of the list fails)."""
    from django.apps import apps

    return sorted(
        (m for m in apps.get_models() if getattr(m._meta, "simple_history_manager_attribute", 0)),
        key=lambda m: m._meta.label,
    )


def _extra_ward(i):
    from tests.factories import WardFactory

    return Ward.objects.filter(slug=f"x{i}").first() or WardFactory(slug=f"x{i}", position=50 + i)


def _extra_year(i):
    return FiscalYear.objects.get_or_create(year=2060 + i)[0]


# For each audited model: a new, valid, unique row number i (unsaved), and the changes a bulk
# write applies to existing rows. Changes are functions of the office, so users can be named.
SPECS = {
    "budgets.Fund": (
        lambda o, i: Fund(code=f"f{i}", name_ja=f"経費{i}", name_en=f"Fund {i}", position=70 + i),
        lambda o: {"name_en": "Changed"},
    ),
    "budgets.Allocation": (
        lambda o, i: Allocation(
            fiscal_year=o.year, ward=_extra_ward(i), fund=o.machizukuri, amount=1_000 * i
        ),
        lambda o: {"amount": 12_345_000},
    ),
    "budgets.PrintedTotal": (
        lambda o, i: __import__("budgets.models").models.PrintedTotal(
            fiscal_year=o.year, ward=_extra_ward(i), fund=o.machizukuri, stage=1, amount=i
        ),
        lambda o: {"amount": 777_000},
    ),
    "budgets.Project": (
        lambda o, i: Project(ward=o.kita, fiscal_year=o.year, fund=o.machizukuri, name=f"新{i}"),
        lambda o: {"summary": "一括で変更"},
    ),
    "budgets.StageFigure": (
        lambda o, i: StageFigure(
            project=(o.kita_projects + o.chuo_projects)[i % 6], stage=Stage.SEPTEMBER, amount=i
        ),
        lambda o: {"amount": 4_242_000, "reason": "一括"},
    ),
    "budgets.Correction": (
        lambda o, i: Correction(
            project=o.kita_projects[0],
            stage=Stage.INITIAL,
            old_entered=True,
            old_amount=i,
            new_amount=i + 1,
            reason=f"訂正{i}",
            corrected_by=o.planner,
        ),
        lambda o: {"reason": "理由を変更", "corrected_by": o.admin},
    ),
    "wards.FiscalYear": (
        lambda o, i: FiscalYear(year=2040 + i),
        lambda o: {"published_stage": Stage.INITIAL},
    ),
    "wards.WardYear": (
        lambda o, i: __import__("wards.models").models.WardYear(
            ward=_extra_ward(i), fiscal_year=o.year, slogan=f"標語{i}"
        ),
        lambda o: {"slogan": "新しい標語"},
    ),
    "wards.VisionPillar": (
        lambda o, i: __import__("wards.models").models.VisionPillar(
            ward=o.kita, fiscal_year=o.year, position=10 + i, name=f"方向性{i}"
        ),
        lambda o: {"description": "説明を変更"},
    ),
    "wards.WardSubmission": (
        lambda o, i: WardSubmission(
            ward=_extra_ward(i), fiscal_year=o.year, stage=Stage.SEPTEMBER, submitted_by=o.planner
        ),
        lambda o: {"submitted_by": o.kita_staff},
    ),
    "wards.StagePublication": (
        lambda o, i: StagePublication(
            fiscal_year=_extra_year(i), stage=Stage.INITIAL, published_by=o.planner
        ),
        lambda o: {"published_by": o.admin},
    ),
}


def _tracked(model) -> list[str]:
    """The columns the history keeps of a model (its excluded fields left out)."""
    kept = {f.attname for f in model.history.model._meta.concrete_fields}
    return [f.attname for f in model._meta.concrete_fields if f.attname in kept]


def _assert_history_matches(model, baseline_ids: set) -> None:
    """Every row's latest history entry equals the row; every vanished row's is a deletion."""
    names = _tracked(model)
    pk = model._meta.pk.attname
    rows = {row[pk]: row for row in model.objects.values(*names)}
    latest = {}
    for record in model.history.order_by("history_id").values(*names, "history_type"):
        latest[record[pk]] = record
    for key, row in rows.items():
        record = latest.get(key)
        assert record is not None, f"{model.__name__} {key} has no history"
        assert record["history_type"] in {"+", "~"}
        assert {n: record[n] for n in names} == row, model.__name__
    for key in (set(latest) | baseline_ids) - set(rows):
        assert key in latest and latest[key]["history_type"] == "-", (model.__name__, key)


def test_every_audited_model_has_a_bulk_path_spec():
    assert [m._meta.label for m in _audited_models()] == sorted(SPECS)


def _setup(office, model):
    """Two rows of the model saved one by one, and the history's size after."""
    new, _changes = SPECS[model._meta.label]
    with audit_context(user=office.planner, reason="準備"):
        rows = [new(office, i) for i in (1, 2)]
        for row in rows:
            row.save()
    return rows


def _bulk_update(model, office, rows, changes):
    for row in rows:
        for name, value in changes.items():
            setattr(row, name, value)
    return model.objects.bulk_update(rows, list(changes))


PATHS = {
    # name: (write(model, office, rows, new, changes), history rows it must add)
    "update": (
        lambda m, o, rows, new, ch: m.objects.filter(pk__in=[r.pk for r in rows]).update(**ch),
        2,
    ),
    "update_all": (lambda m, o, rows, new, ch: m.objects.all().update(**ch), None),
    "bulk_update": (lambda m, o, rows, new, ch: _bulk_update(m, o, rows, ch), 2),
    "bulk_create": (lambda m, o, rows, new, ch: m.objects.bulk_create([new(o, 3), new(o, 4)]), 2),
    "bulk_create_ignore_conflicts": (
        lambda m, o, rows, new, ch: m.objects.bulk_create(
            [new(o, 3), new(o, 3)], ignore_conflicts=True
        ),
        None,
    ),
    "delete": (
        lambda m, o, rows, new, ch: m.objects.filter(pk__in=[r.pk for r in rows]).delete(),
        2,
    ),
    "delete_all": (lambda m, o, rows, new, ch: m.objects.all().delete(), None),
    "create": (lambda m, o, rows, new, ch: m.objects.create(**_values(new(o, 3))), 1),
    "get_or_create_gets": (lambda m, o, rows, new, ch: m.objects.get_or_create(pk=rows[0].pk), 0),
    "get_or_create_creates": (
        lambda m, o, rows, new, ch: m.objects.get_or_create(**_values(new(o, 3))),
        1,
    ),
    "update_or_create_updates": (
        lambda m, o, rows, new, ch: m.objects.update_or_create(pk=rows[0].pk, defaults=ch),
        1,
    ),
    "update_or_create_creates": (
        lambda m, o, rows, new, ch: m.objects.update_or_create(**_values(new(o, 3))),
        1,
    ),
    "select_for_update_update": (
        lambda m, o, rows, new, ch: (
            m.objects.select_for_update().filter(pk=rows[0].pk).update(**ch)
        ),
        1,
    ),
    "select_for_update_delete": (
        lambda m, o, rows, new, ch: m.objects.select_for_update().filter(pk=rows[0].pk).delete(),
        1,
    ),
    # Django itself writes through the base manager in places, e.g. combined querysets.
    "base_manager_update": (
        lambda m, o, rows, new, ch: m._base_manager.filter(pk=rows[0].pk).update(**ch),
        1,
    ),
    # A sliced queryset combined with another goes through the base manager.
    "combined_update": (
        lambda m, o, rows, new, ch: (
            m.objects.filter(pk=rows[0].pk)[:1] | m.objects.filter(pk=rows[1].pk)
        ).update(**ch),
        2,
    ),
}


def _values(instance) -> dict:
    return {
        f.attname: getattr(instance, f.attname)
        for f in instance._meta.concrete_fields
        if not f.primary_key or f.attname != "id"
        if getattr(instance, f.attname) is not None
    }


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("label", sorted(SPECS))
def test_no_write_path_on_an_audited_model_skips_the_history(office, label, path):
    """Every public write path of every audited model either writes one history entry per
    row it writes (with the user and reason) or raises and writes nothing."""
    from django.apps import apps
    from django.db import transaction
    from django.db.models import ProtectedError

    model = apps.get_model(label)
    new, changes = SPECS[label]
    rows = _setup(office, model)
    baseline_ids = set(model.history.values_list(model._meta.pk.attname, flat=True))
    count_before = model.objects.count()
    history_before = model.history.count()
    write, expected = PATHS[path]
    try:
        with transaction.atomic(), audit_context(user=office.admin, reason=f"経路 {path}"):
            write(model, office, rows, new, changes(office))
    except (TypeError, ProtectedError) as refused:
        # Refused: by the audited queryset, or by the database's PROTECT (rows in use).
        assert path in {"bulk_create_ignore_conflicts", "delete_all"}, refused
        assert isinstance(refused, ProtectedError) or "history" in str(refused)
        assert model.history.count() == history_before
        assert model.objects.count() == count_before
        return
    added = list(model.history.order_by("history_id")[history_before:])
    if expected is None:  # every row of the model
        expected = count_before if path != "bulk_create_ignore_conflicts" else None
    assert len(added) == expected, [(r.history_type, r.pk) for r in added]
    assert {(r.history_user, r.history_change_reason) for r in added} <= {
        (office.admin, f"経路 {path}")
    }
    _assert_history_matches(model, baseline_ids)


def test_reverse_relations_write_history_too(office):
    """A reverse relation's manager writes through the audited queryset (and ``add`` through
    the base manager): moving, detaching and deleting by relation are all recorded."""
    from wards.models import VisionPillar

    a, b, c = office.kita_projects
    other = VisionPillar.objects.create(
        ward=office.kita, fiscal_year=office.year, position=2, name="別の方向性"
    )
    before = Project.history.count()
    with audit_context(user=office.planner, reason="方向性の付け替え"):
        other.projects.add(a, b)  # bulk: an UPDATE through the base manager
        other.projects.remove(b)
        other.projects.set([c])
        other.projects.clear()
        office.year.projects.filter(pk=a.pk).update(summary="関連から")
    added = list(Project.history.order_by("history_id")[before:])
    assert [(r.id, r.pillar_id) for r in added] == [
        (a.pk, other.pk),
        (b.pk, other.pk),
        (b.pk, None),
        (a.pk, None),
        (c.pk, other.pk),
        (c.pk, None),
        (a.pk, None),
    ]
    assert {(r.history_user, r.history_change_reason) for r in added} == {
        (office.planner, "方向性の付け替え")
    }
    _assert_history_matches(Project, set())
    figures_before = StageFigure.history.count()
    with audit_context(user=office.planner, reason="関連から削除"):
        a.figures.all().delete()
    assert StageFigure.history.count() == figures_before + 1
    _assert_history_matches(StageFigure, set())


def test_bulk_writes_change_the_version_so_an_open_sheet_is_refused(office):
    """A figure changed by update()/bulk_update() must not keep its version: a sheet opened
    before would otherwise write over the change without a conflict."""
    project = office.kita_projects[0]
    figure = _figure(project, Stage.INITIAL)
    opened_version = figure.version
    with audit_context(user=office.planner, reason="一括"):
        StageFigure.objects.filter(pk=figure.pk).update(amount=2_000_000)
    figure.refresh_from_db()
    assert figure.version != opened_version
    bulk_version = figure.version
    figure.amount = 2_500_000
    with audit_context(user=office.planner, reason="一括"):
        StageFigure.objects.bulk_update([figure], ["amount"])
    assert StageFigure.objects.get(pk=figure.pk).version != bulk_version
    version = Project.objects.get(pk=project.pk).version
    Project.objects.filter(pk=project.pk).update(summary="版も進む")
    assert Project.objects.get(pk=project.pk).version == version + 1
