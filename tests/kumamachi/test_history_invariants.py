"""The history adds up, whatever happens: a hypothesis state machine drives the real services
and the Excel import through random sequences of sheet saves, imports, submissions, send
backs, publications, openings, corrections and project edits, refused ones among them (a
stale version, a stage that moved on, a submitted ward, a total over the allocation).

After every step, for every audited model: the number of history rows added equals the
number of writes accepted (counted by the test from the rules, not taken from the service),
and the latest history row of every row equals the row; a refused step adds nothing."""

import io
import re
from collections import Counter

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from budgets import services
from budgets.exports import KEY_COL, STAGE_COL, XLSX_CONTENT_TYPE
from budgets.models import Correction, Project, StageFigure
from budgets.services import NOT_ENTERED, SaveRejected, SheetRow
from tests.kumamachi.test_audit import _assert_history_matches, _audited_models
from wards.models import FiscalYear, Stage, StagePublication, WardSubmission

pytestmark = pytest.mark.django_db

AMOUNTS = [NOT_ENTERED, None, 0, 617_000, 1_582_000, 3_100_000, 9_000_000]
REASONS = ["", "見直し", "増額"]
FILE_NAME = "取込.xlsx"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _value(figure) -> object:
    return NOT_ENTERED if figure is None else figure.amount


def _cell(value):
    """A figure as typed into the workbook: thousand yen, ― for no budget, empty cell."""
    if value is NOT_ENTERED:
        return None
    return "―" if value is None else value / 1000


def make_machine(office):
    wards = {
        "kita": (office.kita, office.kita_staff, office.kita_projects),
        "chuo": (office.chuo, office.chuo_staff, office.chuo_projects),
    }
    audited = _audited_models()

    class HistoryMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            # Each example runs in a savepoint rolled back at its end.
            self._atomic = transaction.atomic()
            self._atomic.__enter__()
            self.baseline = {m: m.history.count() for m in audited}
            self.baseline_ids = {
                m: set(m.history.values_list(m._meta.pk.attname, flat=True)) for m in audited
            }
            self.accepted = Counter()
            self.outcomes = Counter()
            self.clients = {}

        def teardown(self):
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)
            OUTCOMES.update(self.outcomes)

        # --- helpers ------------------------------------------------------------------------

        def year(self) -> FiscalYear:
            return FiscalYear.objects.get(pk=office.year.pk)

        def figures(self, projects, stage) -> dict:
            return {
                f.project_id: f
                for f in StageFigure.objects.filter(project__in=projects, stage=stage)
            }

        def refused(self, kind: str) -> None:
            self.outcomes[f"refused {kind}"] += 1

        # --- rules --------------------------------------------------------------------------

        @rule(
            ward=st.sampled_from(sorted(wards)),
            planner=st.booleans(),
            values=st.lists(st.sampled_from(AMOUNTS), min_size=3, max_size=3),
            reasons=st.lists(st.sampled_from(REASONS), min_size=3, max_size=3),
            stale=st.sampled_from([False] * 5 + [True]),
            other_stage=st.sampled_from([False] * 5 + [True]),
        )
        def save_sheet(self, ward, planner, values, reasons, stale, other_stage):
            ward_obj, staff, projects = wards[ward]
            year = self.year()
            stage = Stage.SEPTEMBER if year.open_stage is None else Stage(year.open_stage)
            current = self.figures(projects, stage)
            rows = []
            writes = 0
            for i, (project, value, reason) in enumerate(
                zip(projects, values, reasons, strict=True)
            ):
                figure = current.get(project.pk)
                version = figure.version if figure else 0
                rows.append(
                    SheetRow(
                        project_id=project.pk,
                        value=value,
                        reason=reason,
                        version=version + (1 if stale and i == 0 else 0),
                    )
                )
                if value != _value(figure) or (figure is not None and reason != figure.reason):
                    writes += 1
            sheet_stage = Stage(stage.next or Stage.INITIAL) if other_stage else stage
            try:
                written = services.figures_save_sheet(
                    user=office.planner if planner else staff,
                    fiscal_year=year,
                    ward=ward_obj,
                    rows=rows,
                    stage=sheet_stage,
                )
            except SaveRejected as rejected:
                assert str(rejected)  # says why
                if other_stage and year.open_stage is not None:
                    assert rejected.conflict and "開き直して" in str(rejected)
                self.refused("sheet")
                return
            assert year.open_stage is not None and not stale and not other_stage
            assert written == writes
            self.accepted[StageFigure] += writes
            self.outcomes["sheet"] += 1

        @rule(
            ward=st.sampled_from(sorted(wards)),
            values=st.lists(st.sampled_from(AMOUNTS), min_size=3, max_size=3),
        )
        def import_workbook(self, ward, values):
            """The staff's own export, edited in the open stage's column, uploaded and
            confirmed through the import pages."""
            ward_obj, staff, projects = wards[ward]
            client = self.clients.get(ward)
            if client is None:
                client = self.clients[ward] = Client()
                client.force_login(staff)
            export = client.get(reverse("budgets:staff-ward-export", args=[2025, ward]))
            assert export.status_code == 200
            year = self.year()
            url = reverse("budgets:staff-import", args=[2025, ward])
            if year.open_stage is None:
                response = client.post(url, {"file": SimpleUploadedFile(FILE_NAME, b"x")})
                assert response.status_code == 400
                self.refused("import")
                return
            stage = Stage(year.open_stage)
            current = self.figures(projects, stage)
            wb = openpyxl.load_workbook(io.BytesIO(export.content))
            ws = wb[ward_obj.name_ja]
            by_key = {ws.cell(row=r, column=KEY_COL).value: r for r in range(1, ws.max_row + 1)}
            changed = 0
            for project, value in zip(projects, values, strict=True):
                ws.cell(row=by_key[project.pk], column=STAGE_COL[stage]).value = _cell(value)
                changed += value != _value(current.get(project.pk))
            buffer = io.BytesIO()
            wb.save(buffer)
            upload = SimpleUploadedFile(FILE_NAME, buffer.getvalue(), XLSX_CONTENT_TYPE)
            preview = client.post(url, {"file": upload})
            match = re.search(r'name="token" value="([^"]+)"', preview.content.decode())
            if match is None:
                # Nothing to save, or refused before the confirmation (submitted ward).
                assert preview.status_code in {200, 400}
                assert changed == 0 or preview.status_code == 400
                self.refused("import")
                return
            response = client.post(url, {"token": match.group(1).replace("&quot;", '"')})
            if response.status_code != 302:
                assert response.status_code in {400, 409}
                self.refused("import")
                return
            [note] = [str(m) for m in get_messages(response.wsgi_request)]
            assert f"（{changed}件の変更）" in note
            self.accepted[StageFigure] += changed
            self.outcomes["import"] += 1

        @rule(ward=st.sampled_from(sorted(wards)))
        def fill_and_submit(self, ward):
            """What a ward does at the end: the missing figures as the previous stage's,
            then the submission (two accepted writes, or two refused ones)."""
            ward_obj, staff, projects = wards[ward]
            year = self.year()
            if year.open_stage is None:
                return self.submit(ward)
            stage = Stage(year.open_stage)
            current = self.figures(projects, stage)
            previous = self.figures(projects, stage.previous) if stage.previous else {}
            rows = [
                SheetRow(project_id=p.pk, value=_value(previous.get(p.pk)) or 0)
                for p in projects
                if p.pk not in current
            ]
            try:
                written = services.figures_save_sheet(
                    user=staff, fiscal_year=year, ward=ward_obj, rows=rows, stage=stage
                )
            except SaveRejected:
                self.refused("sheet")
            else:
                assert written == len(rows)
                self.accepted[StageFigure] += written
            return self.submit(ward)

        @rule(ward=st.sampled_from(sorted(wards)))
        def submit(self, ward):
            ward_obj, staff, _projects = wards[ward]
            try:
                services.ward_submit(user=staff, fiscal_year=self.year(), ward=ward_obj)
            except SaveRejected:
                self.refused("submit")
                return
            self.accepted[WardSubmission] += 1
            self.outcomes["submit"] += 1

        @rule(ward=st.sampled_from(sorted(wards)))
        def send_back(self, ward):
            try:
                services.ward_return(
                    user=office.planner, fiscal_year=self.year(), ward=wards[ward][0], reason="確認"
                )
            except SaveRejected:
                self.refused("send back")
                return
            self.accepted[WardSubmission] += 1  # the submission's deletion
            self.outcomes["send back"] += 1

        @rule(ready=st.booleans())
        def publish(self, ready):
            if ready:  # every ward fills in and submits first, as they do before a deadline
                for ward in sorted(wards):
                    self.fill_and_submit(ward)
            try:
                services.stage_publish(user=office.planner, fiscal_year=self.year())
            except SaveRejected:
                self.refused("publish")
                return
            self.accepted[FiscalYear] += 1
            self.accepted[StagePublication] += 1
            self.outcomes["publish"] += 1

        @rule()
        def open_next(self):
            year = self.year()
            stage = Stage(year.published_stage).next if year.published_stage else Stage.INITIAL
            try:
                services.stage_open(
                    user=office.planner, fiscal_year=year, stage=stage or Stage.SETTLEMENT
                )
            except SaveRejected:
                self.refused("open")
                return
            self.accepted[FiscalYear] += 1
            self.outcomes["open"] += 1

        @rule(
            index=st.integers(0, 5),
            value=st.sampled_from([None, 0, 100_000, 2_000_000, 3_100_000]),
            stale=st.sampled_from([False] * 5 + [True]),
        )
        def correct(self, index, value, stale):
            project = (office.kita_projects + office.chuo_projects)[index]
            year = self.year()
            stage = Stage(year.published_stage)
            figure = self.figures([project], stage).get(project.pk)
            try:
                services.figure_correct(
                    user=office.planner,
                    project=Project.objects.get(pk=project.pk),
                    stage=stage,
                    value=value,
                    reason="訂正",
                    version=(figure.version if figure else 0) + (1 if stale else 0),
                )
            except SaveRejected:
                assert stale or value == _value(figure) or stage == Stage.SETTLEMENT
                self.refused("correction")
                return
            assert not stale
            self.accepted[StageFigure] += 1
            self.accepted[Correction] += 1
            self.outcomes["correction"] += 1

        @rule(index=st.integers(0, 5), summary=st.sampled_from(["概要A", "概要B"]))
        def edit_project(self, index, summary):
            project = Project.objects.select_related("ward", "fiscal_year").get(
                pk=(office.kita_projects + office.chuo_projects)[index].pk
            )
            project.summary = summary
            services.project_save(user=office.planner, project=project, reason="概要の編集")
            self.accepted[Project] += 1
            self.outcomes["project"] += 1

        # --- what must always hold ----------------------------------------------------------

        @invariant()
        def history_adds_up(self):
            for model in audited:
                added = model.history.count() - self.baseline[model]
                assert added == self.accepted[model], model.__name__
                _assert_history_matches(model, self.baseline_ids[model])

    return HistoryMachine


OUTCOMES: Counter = Counter()


def test_history_adds_up_after_random_edits_imports_and_corrections(office):
    OUTCOMES.clear()
    machine = make_machine(office)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
    # The sequences reached every kind of step, accepted and refused.
    for kind in ("sheet", "import", "submit", "publish", "open", "correction", "project"):
        assert OUTCOMES[kind], (kind, OUTCOMES)
    for kind in ("sheet", "import", "publish", "correction"):
        assert OUTCOMES[f"refused {kind}"], (kind, OUTCOMES)
    print(dict(OUTCOMES))
