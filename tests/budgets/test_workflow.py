"""A fiscal year run end to end through the staff screens: open, enter, submit, publish,
correct; drafts never visible to the public until published."""

import pytest
from django.urls import reverse

from budgets.models import Correction, StageFigure
from wards.models import Stage, StagePublication, WardSubmission

pytestmark = pytest.mark.django_db


def _sheet_data(projects, values, reasons=None, client=None, url=None):
    """POST data for the entry sheet: the versions as the sheet shows them now."""
    data = {"stage": projects[0].fiscal_year.open_stage}
    for project, value in zip(projects, values, strict=True):
        figure = StageFigure.objects.filter(
            project=project, stage=project.fiscal_year.open_stage
        ).first()
        data[f"amount_{project.pk}"] = value
        data[f"reason_{project.pk}"] = (reasons or {}).get(project.pk, "")
        data[f"version_{project.pk}"] = figure.version if figure else 0
    return data


def test_full_year_through_four_stages(client, office):
    year, kita, chuo = office.year, office.kita, office.chuo
    # Start from a fresh year: nothing published, nothing open.
    year.published_stage = None
    year.open_stage = None
    year.save()
    StageFigure.objects.all().delete()
    sheets = {
        kita: (office.kita_staff, office.kita_projects),
        chuo: (office.chuo_staff, office.chuo_projects),
    }
    plan = {
        Stage.INITIAL: ["3,100", "617", "1,582"],
        Stage.SEPTEMBER: ["3,100", "162", "１，０９６"],
        Stage.FEBRUARY: ["600", "162", "1,096"],
        Stage.SETTLEMENT: ["100", "81", "885.5"],
    }
    for stage, values in plan.items():
        client.force_login(office.planner)
        response = client.post(reverse("budgets:staff-open", args=[2025]), {"stage": stage})
        assert response.status_code == 302
        year.refresh_from_db()
        assert year.open_stage == stage
        for ward, (user, projects) in sheets.items():
            client.force_login(user)
            url = reverse("budgets:staff-sheet", args=[2025, ward.slug])
            reasons = {p.pk: "事業の見直し" for p in projects}
            response = client.post(url, _sheet_data(projects, values, reasons))
            assert response.status_code == 302, response.content.decode()
            # Not yet published: the public page shows nothing of this stage.
            public = client.get(f"/2025/{ward.slug}/").content.decode()
            assert f">{stage.label}</th>" not in public
            response = client.post(reverse("budgets:staff-submit", args=[2025, ward.slug]))
            assert response.status_code == 302
            assert WardSubmission.objects.filter(ward=ward, stage=stage).exists()
        client.force_login(office.planner)
        review = client.get(reverse("budgets:staff-review", args=[2025]))
        assert review.status_code == 200
        response = client.post(reverse("budgets:staff-publish", args=[2025]))
        assert response.status_code == 302
        year.refresh_from_db()
        assert year.published_stage == stage and year.open_stage is None
        assert StagePublication.objects.filter(fiscal_year=year, stage=stage).exists()
    client.logout()
    html = client.get("/2025/kita/").content.decode()
    # 100 + 81 + 885.5 thousand yen at settlement.
    assert "1,066.5" in html
    assert StageFigure.objects.get(project=office.kita_projects[2], stage=4).amount == 885_500


def test_drafts_are_invisible_until_published(client, office):
    client.force_login(office.kita_staff)
    url = reverse("budgets:staff-sheet", args=[2025, "kita"])
    data = _sheet_data(
        office.kita_projects, ["7,777", "617", "1,582"], {office.kita_projects[0].pk: "増額"}
    )
    assert client.post(url, data).status_code == 302
    client.logout()
    for page in ("/2025/", "/2025/kita/", f"/2025/kita/{office.kita_projects[0].pk}/"):
        assert "7,777" not in client.get(page).content.decode(), page
    # Another ward's staff cannot see the draft either.
    client.force_login(office.chuo_staff)
    assert client.get(url).status_code == 403
    assert (
        client.get(reverse("budgets:staff-project", args=[office.kita_projects[0].pk])).status_code
        == 403
    )


def test_submitted_sheet_is_locked_until_returned(client, office):
    client.force_login(office.kita_staff)
    url = reverse("budgets:staff-sheet", args=[2025, "kita"])
    client.post(url, _sheet_data(office.kita_projects, ["3,100", "617", "1,582"]))
    assert client.post(reverse("budgets:staff-submit", args=[2025, "kita"])).status_code == 302
    response = client.post(
        url,
        _sheet_data(
            office.kita_projects, ["1", "617", "1,582"], {office.kita_projects[0].pk: "減額"}
        ),
    )
    assert response.status_code == 400
    assert StageFigure.objects.get(project=office.kita_projects[0], stage=2).amount == 3_100_000
    client.force_login(office.planner)
    client.post(reverse("budgets:staff-return", args=[2025, "kita"]), {"reason": "確認のため"})
    assert not WardSubmission.objects.filter(ward=office.kita).exists()


def test_publish_refused_while_a_ward_has_not_submitted(client, office):
    client.force_login(office.kita_staff)
    client.post(
        reverse("budgets:staff-sheet", args=[2025, "kita"]),
        _sheet_data(office.kita_projects, ["3,100", "617", "1,582"]),
    )
    client.post(reverse("budgets:staff-submit", args=[2025, "kita"]))
    client.force_login(office.planner)
    response = client.post(reverse("budgets:staff-publish", args=[2025]), follow=True)
    assert "まだ提出されていない区があります：中央区" in response.content.decode()
    office.year.refresh_from_db()
    assert office.year.published_stage == Stage.INITIAL


def test_planner_corrects_a_published_figure_and_the_public_sees_it(client, office):
    project = office.kita_projects[0]
    client.force_login(office.planner)
    url = reverse("budgets:staff-project", args=[project.pk])
    figure = StageFigure.objects.get(project=project, stage=Stage.INITIAL)
    response = client.post(
        url, {"stage": 1, "amount": "3,000", "reason": "転記誤りの訂正", "version": figure.version}
    )
    assert response.status_code == 302
    correction = Correction.objects.get(project=project)
    assert (correction.old_amount, correction.new_amount) == (3_100_000, 3_000_000)
    client.logout()
    html = client.get(f"/2025/kita/{project.pk}/").content.decode()
    assert "公表後の訂正" in html and "転記誤りの訂正" in html and "3,000" in html


def test_ward_staff_cannot_correct_published_figures(client, office):
    project = office.kita_projects[0]
    client.force_login(office.kita_staff)
    url = reverse("budgets:staff-project", args=[project.pk])
    response = client.post(url, {"stage": 1, "amount": "1", "reason": "x", "version": 1})
    assert response.status_code == 403
    assert StageFigure.objects.get(project=project, stage=1).amount == 3_100_000
