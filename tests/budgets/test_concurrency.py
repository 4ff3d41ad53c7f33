"""Two people saving at the same moment, over two real PostgreSQL connections: one wins,
the other is refused as a conflict, and nothing is silently overwritten."""

import threading
import time

import pytest
from concurrency.exceptions import RecordModifiedError
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from budgets import services
from budgets.models import Project, StageFigure
from budgets.services import SaveRejected, SheetRow
from wards.models import Stage

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks and real connections"
)

# How long the first writer keeps its transaction open, so the second arrives mid-save.
HOLD_SECONDS = 0.5


def _run_together(*calls):
    """Run each call in its own thread with its own connection, released together by a
    barrier. Returns each call's result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(i, call), daemon=True) for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a save hung"
    return results


@pytest.fixture
def slow_commit(monkeypatch):
    """Keep a sheet save's transaction open a moment after it has written its rows."""
    original = services._allocation_problems

    def held(**kwargs):
        problems = original(**kwargs)
        time.sleep(HOLD_SECONDS)
        return problems

    monkeypatch.setattr(services, "_allocation_problems", held)


def _september(projects):
    return {
        f.project_id: f
        for f in StageFigure.objects.filter(project__in=projects, stage=Stage.SEPTEMBER)
    }


def _save(user_pk, office, ward, rows):
    def call():
        user = User.objects.get(pk=user_pk)  # each thread its own user, read on its connection
        return services.figures_save_sheet(user=user, fiscal_year=office.year, ward=ward, rows=rows)

    return call


@pytest.mark.parametrize("entered_before", [True, False], ids=["update", "create"])
def test_two_saves_of_one_sheet_one_wins_one_conflicts(
    transactional_db, office, slow_commit, entered_before
):
    projects = office.kita_projects
    if entered_before:
        services.figures_save_sheet(
            user=office.kita_staff,
            fiscal_year=office.year,
            ward=office.kita,
            rows=[
                SheetRow(project_id=p.pk, value=amount)
                for p, amount in zip(projects, (3_100_000, 617_000, 1_582_000), strict=True)
            ],
        )
    # Both sheets are opened now, before either saves: the same versions.
    versions = {pid: f.version for pid, f in _september(projects).items()}
    history_before = StageFigure.history.count()
    inputs = {
        "kita_staff": ((3_000_000, "減額"), (600_000, "減額")),
        "planner": ((3_500_000, "増額"), (700_000, "増額")),
    }
    users = {"kita_staff": office.kita_staff, "planner": office.planner}
    sheets = {
        who: [
            SheetRow(project_id=p.pk, value=value, reason=reason, version=versions.get(p.pk, 0))
            for p, (value, reason) in zip(projects[:2], values, strict=True)
        ]
        for who, values in inputs.items()
    }

    results = dict(
        zip(
            inputs,
            _run_together(
                *(_save(users[who].pk, office, office.kita, sheets[who]) for who in inputs)
            ),
            strict=True,
        )
    )

    winners = [who for who, result in results.items() if result == 2]
    losers = [who for who, result in results.items() if isinstance(result, SaveRejected)]
    assert len(winners) == 1 and len(losers) == 1, results
    [winner], [loser] = winners, losers
    rejected = results[loser]
    assert rejected.conflict, rejected.problems
    assert "他の人" in str(rejected)

    stored = _september(projects)
    for project, (value, reason) in zip(projects[:2], inputs[winner], strict=True):
        assert (stored[project.pk].amount, stored[project.pk].reason) == (value, reason)
    # Exactly one history entry per changed figure, all the winner's.
    records = list(StageFigure.history.order_by("history_id")[history_before:])
    assert sorted(r.id for r in records) == sorted(stored[p.pk].pk for p in projects[:2])
    assert {r.history_type for r in records} == {"~" if entered_before else "+"}
    assert {r.history_user_id for r in records} == {users[winner].pk}
    assert {(r.id, r.amount) for r in records} == {
        (stored[p.pk].pk, stored[p.pk].amount) for p in projects[:2]
    }


def test_two_wards_saving_at_once_both_succeed(transactional_db, office, slow_commit):
    rows = {
        ward: [
            SheetRow(project_id=p.pk, value=value, reason="見直し")
            for p, value in zip(projects, (2_000_000, 500_000, 1_000_000), strict=True)
        ]
        for ward, projects in (
            (office.kita, office.kita_projects),
            (office.chuo, office.chuo_projects),
        )
    }
    history_before = StageFigure.history.count()
    results = _run_together(
        _save(office.kita_staff.pk, office, office.kita, rows[office.kita]),
        _save(office.chuo_staff.pk, office, office.chuo, rows[office.chuo]),
    )
    assert results == [3, 3]
    for projects in (office.kita_projects, office.chuo_projects):
        stored = _september(projects)
        assert [stored[p.pk].amount for p in projects] == [2_000_000, 500_000, 1_000_000]
    assert StageFigure.history.count() == history_before + 6
    users = dict(
        StageFigure.history.order_by("history_id")[history_before:].values_list(
            "project_id", "history_user_id"
        )
    )
    assert {users[p.pk] for p in office.kita_projects} == {office.kita_staff.pk}
    assert {users[p.pk] for p in office.chuo_projects} == {office.chuo_staff.pk}


def test_two_saves_of_one_project_never_overwrite_silently(transactional_db, office, monkeypatch):
    original = services.scoped_save

    def held(**kwargs):
        saved = original(**kwargs)
        time.sleep(HOLD_SECONDS)  # the first save keeps its row lock a moment
        return saved

    monkeypatch.setattr(services, "scoped_save", held)
    project_pk = office.kita_projects[0].pk
    history_before = Project.history.filter(id=project_pk).count()
    summaries = {"kita_staff": "区職員の概要", "planner": "政策企画課の概要"}
    users = {"kita_staff": office.kita_staff.pk, "planner": office.planner.pk}

    def edit(who):
        def call():
            # Both opened the project before either saved: the same version.
            user = User.objects.get(pk=users[who])
            project = Project.objects.select_related("ward", "fiscal_year").get(pk=project_pk)
            opened.wait(timeout=10)
            project.summary = summaries[who]
            return services.project_save(user=user, project=project, reason=who)

        return call

    # Read the project in each thread first, then release both saves together.
    opened = threading.Barrier(2)
    results = dict(zip(summaries, _run_together(edit("kita_staff"), edit("planner")), strict=True))

    winners = [who for who, result in results.items() if isinstance(result, Project)]
    losers = [who for who, result in results.items() if not isinstance(result, Project)]
    assert len(winners) == 1 and len(losers) == 1, results
    [winner], [loser] = winners, losers
    assert isinstance(results[loser], RecordModifiedError | PermissionDenied | ValidationError), (
        results
    )
    project = Project.objects.get(pk=project_pk)
    assert project.summary == summaries[winner]
    records = list(Project.history.filter(id=project_pk).order_by("history_id")[history_before:])
    assert [(r.history_type, r.summary, r.history_change_reason) for r in records] == [
        ("~", summaries[winner], winner)
    ]


def test_stale_project_instance_is_refused(transactional_db, office):
    """The same without threads: a save from an instance read before another save."""
    stale = Project.objects.get(pk=office.kita_projects[0].pk)
    fresh = Project.objects.get(pk=office.kita_projects[0].pk)
    fresh.summary = "先の保存"
    services.project_save(user=office.planner, project=fresh, reason="先")
    stale.summary = "後の保存"
    with pytest.raises(RecordModifiedError):
        services.project_save(user=office.kita_staff, project=stale, reason="後")
    assert Project.objects.get(pk=stale.pk).summary == "先の保存"


# --- many wards at once while the planner publishes -------------------------------------------

SAVES_BEFORE_SUBMIT = 3
SAVES_AFTER = 3
REFUSALS = ("他の人", "提出済み", "開き直して", "受け付けている段階がありません")


def _more_wards(office, count):
    """``count`` wards in all: the office's two and more, each with three projects whose
    initial budget is published, an allocation, and two staff accounts."""
    from tests.factories import (
        AllocationFactory,
        ProjectFactory,
        StageFigureFactory,
        WardFactory,
        staff_user,
    )

    wards = [(office.kita, office.kita_projects), (office.chuo, office.chuo_projects)]
    for n in range(len(wards), count):
        ward = WardFactory(slug=f"w{n}", name_ja=f"第{n}区", position=10 + n)
        AllocationFactory(
            ward=ward, fiscal_year=office.year, fund=office.machizukuri, amount=19_000_000
        )
        projects = []
        for i in range(3):
            project = ProjectFactory(
                ward=ward, fiscal_year=office.year, fund=office.machizukuri, name=f"第{n}区事業{i}"
            )
            StageFigureFactory(project=project, stage=Stage.INITIAL, amount=1_000_000)
            projects.append(project)
        wards.append((ward, projects))
    staff = {
        ward.pk: [staff_user(f"{ward.slug}_{who}", wards=[ward]) for who in "ab"]
        for ward, _projects in wards
    }
    return wards, staff


def test_many_wards_save_while_the_planner_publishes(transactional_db, office):
    """6 wards × 2 staff save their sheets at once (each its own project, and one project
    both edit), one of each ward then submits, while the planner presses 公表 until every
    ward has submitted and opens the next stage. Every accepted save is in the history in
    order and its last value is the final figure, every refused one says why in Japanese,
    no two accepted saves were made over the same version (no lost update), nothing is
    accepted after the publication, and the totals equal the sum of their rows."""
    from budgets import selectors
    from wards.models import FiscalYear, StagePublication, WardSubmission

    wards, staff = _more_wards(office, 6)
    # Every figure entered once, so submitting never waits for a missing one.
    for ward, projects in wards:
        services.figures_save_sheet(
            user=office.planner,
            fiscal_year=office.year,
            ward=ward,
            rows=[SheetRow(project_id=p.pk, value=1_000_000, reason="準備") for p in projects],
        )
    history_before = StageFigure.history.count()
    figure_ids = {(f.project_id): f.pk for f in StageFigure.objects.filter(stage=Stage.SEPTEMBER)}
    log: dict = {}  # (ward pk, who) -> [(base version of the shared row, rows, result)]

    def staff_saves(ward, projects, who):
        own, shared = projects[who], projects[2]
        user_pk = staff[ward.pk][who].pk

        def call():
            user = User.objects.get(pk=user_pk)
            entries = log.setdefault((ward.pk, who), [])
            for step in range(SAVES_BEFORE_SUBMIT + SAVES_AFTER):
                if who == 0 and step == SAVES_BEFORE_SUBMIT:
                    try:
                        services.ward_submit(user=user, fiscal_year=office.year, ward=ward)
                    except SaveRejected as exc:
                        entries.append(("submit", None, exc))
                # The sheet as opened now, then saved: every value is new, so every
                # accepted save changes both rows.
                current = _september([own, shared])
                value = 1_000 * (100 * (who + 1) + step + 1)
                rows = [
                    SheetRow(
                        project_id=p.pk,
                        value=value + (500_000 if p is shared else 0),
                        reason=f"{who}-{step}",
                        version=current[p.pk].version,
                    )
                    for p in (own, shared)
                ]
                try:
                    result = services.figures_save_sheet(
                        user=user,
                        fiscal_year=office.year,
                        ward=ward,
                        rows=rows,
                        stage=Stage.SEPTEMBER,
                    )
                except SaveRejected as exc:
                    result = exc
                entries.append((current[shared.pk].version, rows, result))
            return len(entries)

        return call

    def planner_publishes():
        planner = User.objects.get(pk=office.planner.pk)
        refusals = 0
        for _attempt in range(600):
            try:
                services.stage_publish(user=planner, fiscal_year=office.year)
            except SaveRejected as exc:
                assert "まだ提出されていない区があります" in str(exc)
                refusals += 1
                time.sleep(0.01)
                continue
            services.stage_open(user=planner, fiscal_year=office.year, stage=Stage.FEBRUARY)
            return refusals
        raise AssertionError("never published")

    calls = [staff_saves(ward, projects, who) for ward, projects in wards for who in (0, 1)] + [
        planner_publishes
    ]
    results = _run_together(*calls)
    # No deadlock, no database error: each thread returned.
    assert all(isinstance(r, int) for r in results), results

    publication = StagePublication.objects.get(fiscal_year=office.year, stage=Stage.SEPTEMBER)
    year = FiscalYear.objects.get(pk=office.year.pk)
    assert (year.published_stage, year.open_stage) == (Stage.SEPTEMBER, Stage.FEBRUARY)
    assert WardSubmission.objects.filter(stage=Stage.SEPTEMBER).count() == len(wards)

    accepted_writes = 0
    outcomes = {"accepted": 0, "refused": 0}
    for ward, projects in wards:
        own_values = {0: [], 1: []}
        shared_values = []
        shared_bases = []
        for who in (0, 1):
            for base, rows, result in log[(ward.pk, who)]:
                if base == "submit":
                    raise AssertionError(f"submission refused: {result}")
                if isinstance(result, SaveRejected):
                    outcomes["refused"] += 1
                    assert any(word in str(result) for word in REFUSALS), str(result)
                    continue
                assert result == 2, result
                outcomes["accepted"] += 1
                accepted_writes += 2
                own_values[who].append((rows[0].value, rows[0].reason))
                shared_values.append(rows[1].value)
                shared_bases.append(base)
        # Two accepted saves over the same version of the shared row would be a lost update.
        assert len(shared_bases) == len(set(shared_bases)), shared_bases
        stored = _september(projects)
        for who in (0, 1):
            figure_id = figure_ids[projects[who].pk]
            history = list(
                StageFigure.history.filter(id=figure_id, history_id__gt=0)
                .order_by("history_id")
                .values_list("amount", "reason", "history_date", "history_user_id")
            )[1:]  # after the entry made before the race
            assert [(a, r) for a, r, _d, _u in history] == own_values[who]
            assert {u for *_rest, u in history} <= {staff[ward.pk][who].pk}
            if own_values[who]:
                assert (stored[projects[who].pk].amount, stored[projects[who].pk].reason) == (
                    own_values[who][-1]
                )
            assert all(d < publication.published_at for *_x, d, _u in history)
        shared_history = list(
            StageFigure.history.filter(id=figure_ids[projects[2].pk])
            .order_by("history_id")
            .values_list("amount", flat=True)
        )[1:]
        assert sorted(shared_history) == sorted(shared_values)
        if shared_history:
            assert stored[projects[2].pk].amount == shared_history[-1]

    # One history entry per change, nothing more.
    assert StageFigure.history.count() - history_before == accepted_writes
    # Both outcomes happened: saves raced each other and the publication.
    assert outcomes["accepted"] and outcomes["refused"], outcomes
    print("saves", outcomes, "publish attempts refused before all submitted", results[-1])

    # The totals the public now sees equal the sum of their rows.
    rollup = selectors.city_rollup(fiscal_year=year)
    for ward_rollup in rollup.wards:
        for fund_rollup in ward_rollup.funds:
            rows = StageFigure.objects.filter(
                project__ward=ward_rollup.ward,
                project__fiscal_year=year,
                project__fund=fund_rollup.fund,
                stage=Stage.SEPTEMBER,
            )
            total = fund_rollup.total(Stage.SEPTEMBER)
            assert (total.amount or 0) == sum(f.amount or 0 for f in rows)
            assert total.entered == rows.count()
    for fund_rollup in rollup.city:
        rows = StageFigure.objects.filter(
            project__fiscal_year=year, project__fund=fund_rollup.fund, stage=Stage.SEPTEMBER
        )
        assert (fund_rollup.total(Stage.SEPTEMBER).amount or 0) == sum(f.amount or 0 for f in rows)
