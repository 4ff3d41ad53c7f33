"""The admin: rows, choices and object pages scoped to the user's wards; filters and search;
writes through the services, recorded in the history with the user and the reason; a save
over a newer version refused."""

import pytest
from django import forms
from django.urls import reverse

from budgets.models import Allocation, Project
from tests.factories import FiscalYearFactory, ProjectFactory, VisionPillarFactory, WardFactory
from wards.models import FiscalYear, Stage, VisionPillar

pytestmark = pytest.mark.django_db


def _login(client, user):
    client.force_login(user)
    return client


def _form_data(response, **changes) -> dict:
    """POST data for an admin form exactly as the page shows it, with ``changes`` applied."""
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
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def _rows(response) -> list:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def _filter_links(response) -> list[str]:
    """The query strings of every choice in the changelist's filter sidebar."""
    cl = response.context["cl"]
    return [choice["query_string"] for spec in cl.filter_specs for choice in spec.choices(cl)]


def _choices(response, field) -> set:
    return set(response.context["adminform"].form.fields[field].queryset)


def _change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


# --- Changelists ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["budgets/project", "wards/visionpillar", "budgets/allocation"])
def test_ward_staff_changelists_show_only_their_wards_rows(client, office, model):
    response = _login(client, office.kita_staff).get(f"/admin/{model}/")
    rows = _rows(response)
    assert rows and {row.ward_id for row in rows} == {office.kita.pk}
    html = response.content.decode()
    assert "中央区" not in html
    # Planners see every ward's rows.
    rows = _rows(_login(client, office.planner).get(f"/admin/{model}/"))
    assert {office.kita.pk, office.chuo.pk} <= {row.ward_id for row in rows}


def test_ward_year_changelist_is_scoped(client, office):
    rows = _rows(_login(client, office.chuo_staff).get("/admin/wards/wardyear/"))
    assert [row.ward for row in rows] == [office.chuo]


def test_ward_staff_changelist_with_another_wards_filter_shows_nothing_of_it(client, office):
    client = _login(client, office.kita_staff)
    chuo_pillar = office.chuo_projects[0].pillar
    for query in (f"ward__id__exact={office.chuo.pk}", f"pillar__id__exact={chuo_pillar.pk}"):
        response = client.get(f"/admin/budgets/project/?{query}")
        # Django drops a filter it does not display; either way no row of 中央区.
        assert not {row.ward_id for row in _rows(response)} - {office.kita.pk}, query
        assert "中央区" not in response.content.decode()


@pytest.fixture
def higashi(office):
    """A third ward, with a project, whose staff kita_staff also is; and a year before."""
    higashi = WardFactory(slug="higashi", name_ja="東区", name_en="Higashi Ward", position=2)
    higashi.members.add(office.kita_staff)
    earlier = FiscalYearFactory(year=2024)
    ProjectFactory(ward=higashi, fiscal_year=office.year, fund=office.machizukuri, name="東区事業")
    ProjectFactory(
        ward=office.kita, fiscal_year=earlier, fund=office.machizukuri, name="北区旧事業"
    )
    for n in (1, 2):
        ProjectFactory(
            ward=office.chuo, fiscal_year=earlier, fund=office.fukko, name=f"中央区旧事業{n}"
        )
    return higashi


def test_filter_sidebar_offers_no_other_wards_or_pillars(client, office, higashi):
    response = _login(client, office.kita_staff).get("/admin/budgets/project/")
    assert {row.ward for row in _rows(response)} == {office.kita, higashi}
    links = " ".join(_filter_links(response))
    kita_pillar = office.kita_projects[0].pillar
    chuo_pillar = office.chuo_projects[0].pillar
    assert f"ward__id__exact={office.kita.pk}" in links
    assert f"ward__id__exact={higashi.pk}" in links
    assert f"pillar__id__exact={kita_pillar.pk}" in links
    assert f"ward__id__exact={office.chuo.pk}" not in links
    assert f"pillar__id__exact={chuo_pillar.pk}" not in links
    assert "中央区" not in response.content.decode()
    VisionPillarFactory(ward=higashi, fiscal_year=office.year, name="東区の方向性")
    response = _login(client, office.kita_staff).get("/admin/wards/visionpillar/")
    links = " ".join(_filter_links(response))
    assert f"ward__id__exact={higashi.pk}" in links
    assert f"ward__id__exact={office.chuo.pk}" not in links


def test_every_filter_link_works(client, office, higashi):
    """Each query string the sidebar generates answers with a list (an unknown lookup would
    redirect to ?e=1) of the rows it names, among the user's own."""
    for user in (office.planner, office.kita_staff):
        client = _login(client, user)
        response = client.get("/admin/budgets/project/")
        whole = set(_rows(response))
        links = {q for q in _filter_links(response) if q not in ("?", "")}
        assert {"?fiscal_year__year__exact=2025", "?fiscal_year__year__exact=2024"} <= links
        assert f"?ward__id__exact={office.kita.pk}" in links
        for query in links:
            rows = set(_rows(client.get(f"/admin/budgets/project/{query}")))
            assert rows <= whole, query
            field, _, value = query.lstrip("?").partition("=")
            if field == "ward__id__exact":
                assert {row.ward_id for row in rows} == {int(value)}, query
            if field == "fiscal_year__year__exact":
                assert {row.fiscal_year_id for row in rows} == {int(value)}, query


def test_facet_counts_count_only_own_rows(client, office, higashi):
    html = _login(client, office.planner).get("/admin/budgets/project/?_facets=True")
    html = html.content.decode()
    assert "中央区 (5)" in html and "北区 (4)" in html
    assert "令和6年度 (2024年度) (3)" in html
    html = _login(client, office.kita_staff).get("/admin/budgets/project/?_facets=True")
    html = html.content.decode()
    assert "北区 (4)" in html and "東区 (1)" in html
    assert "令和6年度 (2024年度) (1)" in html
    assert "令和7年度 (2025年度) (4)" in html
    assert "中央区" not in html


def test_filters_by_year_ward_pillar_and_fund(client, office):
    FiscalYearFactory(year=2024)  # a second year, so the year filter is offered
    client = _login(client, office.planner)
    url = "/admin/budgets/project/"
    assert len(_rows(client.get(f"{url}?fiscal_year__year__exact=2025"))) == 6
    assert _rows(client.get(f"{url}?fiscal_year__year__exact=2024")) == []
    kita_rows = _rows(client.get(f"{url}?ward__id__exact={office.kita.pk}"))
    assert set(kita_rows) == set(office.kita_projects)
    pillar = office.chuo_projects[0].pillar
    assert set(_rows(client.get(f"{url}?pillar__id__exact={pillar.pk}"))) == set(
        office.chuo_projects
    )
    assert len(_rows(client.get(f"{url}?fund__id__exact={office.machizukuri.pk}"))) == 6
    assert _rows(client.get(f"{url}?fund__id__exact={office.fukko.pk}")) == []
    both = f"{url}?fiscal_year__year__exact=2025&ward__id__exact={office.chuo.pk}"
    assert set(_rows(client.get(both))) == set(office.chuo_projects)
    pillars = _rows(client.get(f"/admin/wards/visionpillar/?ward__id__exact={office.kita.pk}"))
    assert [p.ward for p in pillars] == [office.kita]
    allocations = _rows(
        client.get(f"/admin/budgets/allocation/?fund__id__exact={office.machizukuri.pk}")
    )
    assert {a.ward for a in allocations} == {office.kita, office.chuo}


def test_search(client, office):
    client = _login(client, office.planner)
    rows = _rows(client.get("/admin/budgets/project/?q=事業2"))
    assert {row.name for row in rows} == {"北区事業2", "中央区事業2"}
    rows = _rows(client.get("/admin/wards/visionpillar/?q=交流"))
    assert len(rows) == 2
    client = _login(client, office.kita_staff)
    assert [row.name for row in _rows(client.get("/admin/budgets/project/?q=事業2"))] == [
        "北区事業2"
    ]
    assert _rows(client.get("/admin/budgets/project/?q=中央区")) == []
    assert len(_rows(client.get("/admin/wards/visionpillar/?q=交流"))) == 1


# --- Choices in the forms ------------------------------------------------------------------------


def test_project_form_offers_only_own_wards_choices(client, office):
    earlier = FiscalYearFactory(year=2024)
    kita_old = ProjectFactory(ward=office.kita, fiscal_year=earlier, fund=office.machizukuri)
    chuo_old = ProjectFactory(ward=office.chuo, fiscal_year=earlier, fund=office.machizukuri)
    chuo_pillar = office.chuo_projects[0].pillar
    client = _login(client, office.kita_staff)
    for url in ("/admin/budgets/project/add/", _change_url(office.kita_projects[0])):
        response = client.get(url)
        assert _choices(response, "ward") == {office.kita}
        pillars = _choices(response, "pillar")
        assert office.kita_projects[0].pillar in pillars and chuo_pillar not in pillars
        previous = _choices(response, "previous")
        assert kita_old in previous
        assert chuo_old not in previous
        assert not previous & set(office.chuo_projects)
        html = response.content.decode()
        assert "中央区" not in html
    # A planner chooses among every ward.
    response = _login(client, office.planner).get("/admin/budgets/project/add/")
    assert {office.kita, office.chuo} <= _choices(response, "ward")
    assert chuo_old in _choices(response, "previous")


def test_pillar_form_offers_only_own_wards(client, office):
    response = _login(client, office.chuo_staff).get("/admin/wards/visionpillar/add/")
    assert _choices(response, "ward") == {office.chuo}


def test_other_wards_object_pages_refused(client, office):
    client = _login(client, office.kita_staff)
    project = office.chuo_projects[0]
    pillar = project.pillar
    allocation = Allocation.objects.get(ward=office.chuo)
    for obj in (project, pillar, allocation):
        opts = obj._meta
        for view in ("change", "history", "delete"):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])
            response = client.get(url)
            assert response.status_code in (403, 404), url
            assert str(obj) not in response.content.decode(), url


# --- Writes through the services -----------------------------------------------------------------


def test_ward_staff_edit_is_recorded_with_user_and_reason(client, office):
    project = office.kita_projects[0]
    client = _login(client, office.kita_staff)
    url = _change_url(project)
    data = _form_data(client.get(url), summary="子ども食堂を開く。", change_reason="概要の追記")
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    project.refresh_from_db()
    assert project.summary == "子ども食堂を開く。"
    record = project.history.latest()
    assert record.history_user == office.kita_staff
    assert record.history_change_reason == "概要の追記"
    assert record.history_type == "~"
    # The history page shows who and why.
    html = client.get(reverse("admin:budgets_project_history", args=[project.pk])).content
    assert "概要の追記" in html.decode()


def test_empty_reason_records_the_default(client, office):
    project = office.kita_projects[1]
    client = _login(client, office.kita_staff)
    url = _change_url(project)
    client.post(url, _form_data(client.get(url), summary="変更"))
    record = project.history.latest()
    assert (record.history_user, record.history_change_reason) == (
        office.kita_staff,
        "管理画面で編集",
    )

    add = "/admin/budgets/project/add/"
    data = _form_data(
        client.get(add),
        ward=str(office.kita.pk),
        fiscal_year="2025",
        fund=str(office.machizukuri.pk),
        name="北区新規事業",
        position="9",
    )
    response = client.post(add, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    created = Project.objects.get(name="北区新規事業")
    assert created.ward == office.kita
    record = created.history.get()
    assert record.history_type == "+"
    assert (record.history_user, record.history_change_reason) == (
        office.kita_staff,
        "管理画面で登録",
    )


def test_planner_edit_of_pillar_and_allocation_recorded(client, office):
    client = _login(client, office.planner)
    pillar = office.chuo_projects[0].pillar
    url = _change_url(pillar)
    data = _form_data(client.get(url), description="地域の交流拠点", change_reason="説明を追加")
    assert client.post(url, data).status_code == 302
    record = pillar.history.latest()
    assert (record.history_user, record.history_change_reason) == (office.planner, "説明を追加")
    allocation = Allocation.objects.get(ward=office.kita)
    url = _change_url(allocation)
    data = _form_data(client.get(url), amount="20000000", change_reason="配分見直し")
    assert client.post(url, data).status_code == 302
    allocation.refresh_from_db()
    assert allocation.amount == 20_000_000
    record = allocation.history.latest()
    assert (record.history_user, record.history_change_reason) == (office.planner, "配分見直し")


def test_planner_deletes_through_the_service(client, office):
    pillar = VisionPillarFactory(ward=office.kita, fiscal_year=office.year, name="使わない方向性")
    pk = pillar.pk
    client = _login(client, office.planner)
    url = reverse("admin:wards_visionpillar_delete", args=[pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not VisionPillar.objects.filter(pk=pk).exists()
    record = VisionPillar.history.filter(id=pk).latest()
    assert record.history_type == "-"
    assert (record.history_user, record.history_change_reason) == (office.planner, "管理画面で削除")


def test_ward_staff_cannot_move_a_project_to_another_ward(client, office):
    project = office.kita_projects[0]
    client = _login(client, office.kita_staff)
    url = _change_url(project)
    page = client.get(url)
    before = project.history.count()
    chuo_pillar = office.chuo_projects[0].pillar
    for change in ({"ward": str(office.chuo.pk)}, {"pillar": str(chuo_pillar.pk)}):
        response = client.post(url, _form_data(page, **change))
        assert response.status_code == 200
        form = response.context["adminform"].form
        assert set(change) <= set(form.errors)
    project.refresh_from_db()
    assert project.ward == office.kita
    assert project.history.count() == before
    # Nor create one there.
    add = "/admin/budgets/project/add/"
    data = _form_data(
        client.get(add),
        ward=str(office.chuo.pk),
        fiscal_year="2025",
        fund=str(office.machizukuri.pk),
        name="中央区に紛れ込む事業",
    )
    response = client.post(add, data)
    assert response.status_code == 200
    assert "ward" in response.context["adminform"].form.errors
    assert not Project.objects.filter(name="中央区に紛れ込む事業").exists()


def test_ward_staff_cannot_add_to_a_year_settled_and_published(client, office):
    FiscalYearFactory(year=2021, published_stage=Stage.SETTLEMENT)
    client = _login(client, office.kita_staff)
    add = "/admin/budgets/project/add/"
    data = _form_data(
        client.get(add),
        ward=str(office.kita.pk),
        fiscal_year="2021",
        fund=str(office.machizukuri.pk),
        name="決算済みの年度の事業",
    )
    assert client.post(add, data).status_code == 403
    assert not Project.objects.filter(name="決算済みの年度の事業").exists()


def test_ward_staff_only_view_allocations(client, office):
    allocation = Allocation.objects.get(ward=office.kita)
    client = _login(client, office.kita_staff)
    url = _change_url(allocation)
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert 'name="_save"' not in page.content.decode()
    data = {"fiscal_year": "2025", "ward": str(office.kita.pk)}
    data |= {"fund": str(office.machizukuri.pk), "amount": "99000000"}
    assert client.post(url, data).status_code == 403
    assert client.get("/admin/budgets/allocation/add/").status_code == 403
    assert client.post("/admin/budgets/allocation/add/", data).status_code == 403
    allocation.refresh_from_db()
    assert allocation.amount == 19_000_000


def test_ward_staff_cannot_change_fiscal_years(client, office):
    client = _login(client, office.kita_staff)
    url = _change_url(office.year)
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert client.post(url, {"year": "2025", "change_reason": "x"}).status_code == 403
    assert client.post("/admin/wards/fiscalyear/add/", {"year": "2030"}).status_code == 403
    assert not FiscalYear.objects.filter(year=2030).exists()
    office.year.refresh_from_db()
    assert (office.year.published_stage, office.year.open_stage) == (Stage.INITIAL, Stage.SEPTEMBER)


def test_planner_adds_a_year_but_stages_move_only_by_the_workflow(client, office):
    client = _login(client, office.planner)
    add = "/admin/wards/fiscalyear/add/"
    data = _form_data(client.get(add), year="2026", change_reason="新年度")
    data |= {"published_stage": "4", "open_stage": "1"}  # read-only: ignored
    assert client.post(add, data).status_code == 302
    year = FiscalYear.objects.get(year=2026)
    assert (year.published_stage, year.open_stage) == (None, None)
    record = year.history.get()
    assert (record.history_user, record.history_change_reason) == (office.planner, "新年度")


# --- Two people editing the same project ---------------------------------------------------------


def test_second_of_two_concurrent_saves_is_refused(office):
    from django.test import Client

    project = office.kita_projects[0]
    url = _change_url(project)
    first = _login(Client(), office.kita_staff)
    second = _login(Client(), office.planner)
    first_data = _form_data(first.get(url), summary="先に保存した内容", change_reason="一人目")
    second_data = _form_data(second.get(url), summary="後から保存した内容", change_reason="二人目")
    assert first_data["version"] == second_data["version"]
    before = project.history.count()

    assert first.post(url, first_data).status_code == 302
    response = second.post(url, second_data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert any("他の人" in error for error in errors)
    assert "他の人" in response.content.decode()

    project.refresh_from_db()
    assert project.summary == "先に保存した内容"
    assert project.history.count() == before + 1
    record = project.history.latest()
    assert (record.history_user, record.history_change_reason) == (office.kita_staff, "一人目")

    # Reloading the page gives the new version, and then the save goes through.
    retry = _form_data(second.get(url), summary="後から保存した内容", change_reason="二人目")
    assert second.post(url, retry).status_code == 302
    project.refresh_from_db()
    assert project.summary == "後から保存した内容"
