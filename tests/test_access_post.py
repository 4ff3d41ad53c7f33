"""The POST matrix and CSRF: every URL of the URL conf (Japanese and English), POSTed as
every role, against objects of the role's own ward and of another ward, with data that
would be accepted from someone allowed to send it.

Each POST runs in a savepoint that is rolled back, so every case starts from the same
ledger. A role that may not do something must get 403/404/405 (or the login page), and the
database must be as it was: no unauthorized POST changes anything. A role that may must
change what it asked to (so the data is plausible and the refusals are real ones).

CSRF: every URL, without a token, logged in as an administrator (and anonymous): 403
everywhere, and nothing written.
"""

from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.http import HttpResponseForbidden
from django.test import Client
from django.urls import resolve, reverse
from django.utils import translation

from budgets import imports, services
from budgets.exports import XLSX_CONTENT_TYPE
from budgets.models import StageFigure
from tests.test_permissions import ADMIN_RULES as RULES
from tests.test_permissions import (
    FORBIDDEN,
    LOGIN,
    NOT_ALLOWED,
    NOT_FOUND,
    PASSWORD,
    REFUSED,
    ROLES,
    Case,
    _client_for,
    _is_planner,
    _may,
    _out_of_scope,
    _own,
    admin_model_of,
    build_cases,
    login_path,
    snapshot,
    world_build,
)
from wards.models import FiscalYear, Stage, Ward

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(office):
    return world_build(office)


# Outcomes of a POST, besides the refusals of the GET matrix (LOGIN, FORBIDDEN, REFUSED,
# NOT_FOUND): WRITE must change the database; TRY is allowed but may change nothing (a
# business rule refuses it, or there was nothing to change); NOOP must change nothing.
WRITE, TRY, NOOP = "write", "try", "noop"
# A refused POST: 405 also means the view did nothing.
_REFUSALS = {FORBIDDEN: {403, 405}, NOT_FOUND: {404, 405}, REFUSED: {403, 404, 405}}


@dataclass
class Post:
    case: Case
    expect: Callable  # (role, owner) -> outcome
    data: Callable = lambda world, role: {}  # noqa: E731
    prepare: Callable | None = None  # (world) -> None, run in the savepoint before the POST
    label: str = ""


# --- Reading a page's form, as a browser would send it ------------------------------------------


class _FormFields(HTMLParser):
    """The values a browser would send from the page's POST forms (no file, no button)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def _add(self, name, value):
        if name and name != "csrfmiddlewaretoken":
            self.fields.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._in_form = (a.get("method") or "").lower() == "post"
        if not self._in_form:
            return
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "file", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self._add(a.get("name"), a.get("value") or ("on" if kind == "checkbox" else ""))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self._add(self._select, a.get("value", ""))
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.fields.setdefault(self._textarea, []).append("")

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea][-1] += data


def form_fields(client, url: str) -> dict[str, list[str]]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    parser = _FormFields()
    parser.feed(response.content.decode())
    return parser.fields


# --- The staff screens --------------------------------------------------------------------------


def _year_of(world, url: str) -> FiscalYear:
    return world.draft_year if "/2026/" in url else world.office.year


def _projects(world, owner, year):
    if year.year == world.draft_year.year:
        return [world.draft_project]
    return getattr(world.office, f"{owner}_projects")


def _sheet_data(world, case: Case) -> dict:
    """The whole sheet of the open stage as saved, with the first project's amount changed."""
    year = _year_of(world, case.url)
    stage = Stage(year.open_stage)
    data = {"stage": int(stage)}
    for n, project in enumerate(_projects(world, case.owner, year)):
        figure = StageFigure.objects.filter(project=project, stage=stage).first()
        amount = f"{figure.amount / 1000:,.3f}" if figure else ""
        data[f"amount_{project.pk}"] = "7,700" if n == 0 else amount
        data[f"reason_{project.pk}"] = "権限テストの見直し" if n == 0 else figure.reason
        data[f"version_{project.pk}"] = figure.version if figure else 0
    return data


def _every_ward_submits(world, year: FiscalYear) -> None:
    for ward in Ward.objects.filter(projects__fiscal_year=year).distinct():
        services.ward_submit(user=world.office.planner, fiscal_year=year, ward=ward)


def _owner_submits(world, case: Case) -> None:
    year = _year_of(world, case.url)
    ward = Ward.objects.get(slug=case.owner)
    services.ward_submit(user=world.office.planner, fiscal_year=year, ward=ward)


def _published(world, year: FiscalYear) -> None:
    _every_ward_submits(world, year)
    services.stage_publish(user=world.office.planner, fiscal_year=year)


def _correction_data(world, case: Case) -> dict:
    with translation.override(case.lang):
        pk = resolve(case.url).kwargs["pk"]
    figure = StageFigure.objects.get(project_id=pk, stage=Stage.INITIAL)
    return {
        "stage": int(Stage.INITIAL),
        "amount": "3,200",
        "reason": "誤記訂正",
        "version": figure.version,
    }


def _import_token(world, case: Case, role: str) -> dict:
    """A confirmation token as the preview signs it, for the poster (kita_staff's when
    anonymous) and the address's ward: it changes the first project's figure."""
    year = FiscalYear.objects.get(pk=_year_of(world, case.url).pk)
    stage = Stage(year.open_stage)
    project = _projects(world, case.owner, year)[0]
    figure = StageFigure.objects.get(project=project, stage=stage)
    change = imports.Change(
        project_id=project.pk,
        name=project.name,
        stage=stage,
        old=figure.amount,
        new=7_777_000,
        version=figure.version,
        cell="E5",
    )
    result = imports.ImportResult(
        fiscal_year=year,
        ward=project.ward,
        stage=stage,
        sheet=project.ward.name_ja,
        changes=[change],
    )
    user = world.users[role] or world.office.kita_staff
    return {"token": imports.sign_changes(user=user, result=result, file_name="記入済み.xlsx")}


def _import_upload(admin_client, world, case: Case) -> dict:
    """The ward's own staff workbook, uploaded as it was downloaded."""
    year = _year_of(world, case.url)
    content = admin_client.get(f"/staff/{year.year}/{case.owner}/export.xlsx").content
    return {"file": SimpleUploadedFile("記入済み.xlsx", content, content_type=XLSX_CONTENT_TYPE)}


def _staff(rule):
    return lambda role, owner: LOGIN if role == "anonymous" else rule(role, owner)


def _own_or_planner(role, owner):
    return WRITE if _is_planner(role) or _own(role, owner) else FORBIDDEN


def _planner(role, owner):
    return WRITE if _is_planner(role) else FORBIDDEN


def _staff_posts(world, case: Case, admin_client) -> list[Post]:
    """The POSTs of a staff screen or the login, or [] when the URL is not one of them."""
    key = case.key
    if key == "budgets:staff-login":
        data = {"username": "kita_staff", "password": PASSWORD}
        # Logging in writes the last login; a logged-in user is sent on to /staff/.
        expect = lambda role, owner: WRITE if role == "anonymous" else NOOP  # noqa: E731
        return [Post(case, expect, lambda w, r: data)]
    if key in ("budgets:staff-logout", "admin:logout"):
        # Ends the session (see _restore); axes notes the time of a logout in its log.
        return [Post(case, lambda role, owner: TRY)]
    if key == "budgets:staff-sheet":
        return [Post(case, _staff(_own_or_planner), lambda w, r: _sheet_data(w, case))]
    if key == "budgets:staff-submit":
        return [Post(case, _staff(_own_or_planner))]
    if key == "budgets:staff-return":
        prepare = lambda w: _owner_submits(w, case)  # noqa: E731
        data = {"reason": "補正理由を確認してください"}
        return [Post(case, _staff(_planner), lambda w, r: data, prepare)]
    if key == "budgets:staff-publish":
        prepare = lambda w: _every_ward_submits(w, _year_of(w, case.url))  # noqa: E731
        return [Post(case, _staff(_planner), prepare=prepare)]
    if key == "budgets:staff-open":
        # The open stage published first: the next one may open.
        def data(w, r):
            year = FiscalYear.objects.get(pk=_year_of(w, case.url).pk)
            return {"stage": int(Stage(year.published_stage).next)}

        prepare = lambda w: _published(w, _year_of(w, case.url))  # noqa: E731
        return [Post(case, _staff(_planner), data, prepare)]
    if key == "budgets:staff-project":
        # Corrections are of published figures: 2026 has none, nothing may change.
        draft = f"/{world.draft_project.pk}/" in case.url
        rule = _staff(
            lambda role, owner: NOOP if draft and _is_planner(role) else _planner(role, owner)
        )
        return [Post(case, rule, lambda w, r: _correction_data(w, case))]
    if key == "budgets:staff-import":
        preview = _staff(
            lambda role, owner: NOOP if _own_or_planner(role, owner) == WRITE else FORBIDDEN
        )
        return [
            Post(
                case, preview, lambda w, r: _import_upload(admin_client, w, case), label="preview"
            ),
            Post(
                case,
                _staff(_own_or_planner),
                lambda w, r: _import_token(w, case, r),
                label="confirm",
            ),
        ]
    return []


# --- The admin ----------------------------------------------------------------------------------


# New rows for the add pages: the owner's row with what must be unique changed.
def _add_tweaks(world) -> dict:
    office = world.office
    return {
        "auth.user": {
            "username": "atarashii",
            "password1": "Atarashii-aikotoba-2027",
            "password2": "Atarashii-aikotoba-2027",
            "usable_password": "true",
        },
        "auth.group": {"name": "新しいグループ"},
        "wards.ward": {"slug": "shin", "name_ja": "新区", "name_en": "New Ward", "position": "99"},
        "wards.fiscalyear": {"year": "2030"},
        "wards.cityplan": {"ordinal": "9", "name": "第9次総合計画"},
        "wards.wardyear": {"fiscal_year": str(world.draft_year.pk)},
        "wards.visionpillar": {"position": "9", "name": "新しい方向性"},
        "budgets.fund": {
            "code": "shin",
            "name_ja": "新しい経費",
            "name_en": "New fund",
            "position": "99",
        },
        "budgets.allocation": {"fund": str(office.fukko.pk)},
        "budgets.printedtotal": {"fund": str(office.fukko.pk)},
        "budgets.project": {"number": "99", "name": "新しい事業"},
    }


def _admin_posts(world, case: Case, admin_client) -> list[Post]:
    found = admin_model_of(_route_of(case))
    if found is None:
        return []
    model, suffix = found
    label = model._meta.label_lower
    rule = RULES[label]
    opts = model._meta

    def scoped(role, owner, allowed):
        """The outcome for a page of one row: the row's ward first, then the permission."""
        if role == "anonymous":
            return LOGIN
        if _out_of_scope(rule, role, owner):
            return REFUSED
        return allowed(role)

    if suffix == "changelist":
        # The delete action on each owner's row: another ward's row is not in the list.
        posts = []
        for owner, obj in world.admin_objects[label].items():

            def expect(role, owner, label=label):
                if role == "anonymous":
                    return LOGIN
                if not (_may(rule, role, "view") or _may(rule, role, "change")):
                    return FORBIDDEN
                if _may(rule, role, "delete") and not _out_of_scope(rule, role, owner):
                    return TRY  # a row others depend on is not deleted
                return NOOP

            data = {
                "action": "delete_selected",
                "_selected_action": [obj.pk],
                "post": "yes",
                "index": 0,
            }
            posts.append(
                Post(Case(case.key, case.url, owner, None), expect, lambda w, r, d=data: d)
            )
        return posts
    if suffix == "add":
        tweaks = _add_tweaks(world).get(label, {})
        posts = []
        for owner, obj in world.admin_objects[label].items():
            change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])

            def data(w, r, change_url=change_url):
                if not _may(rule, "admin", "add"):
                    return tweaks  # no one may open the page: nothing to read
                fields = form_fields(admin_client, case.url)
                if "username" not in tweaks:
                    saved = form_fields(admin_client, change_url)
                    # The row's own fields; its inlines' rows stay the add page's (none).
                    fields.update({k: v for k, v in saved.items() if k in fields and "-" not in k})
                return fields | {"change_reason": ["権限テスト"]} | tweaks

            def expect(role, owner):
                if role == "anonymous":
                    return LOGIN
                if not _may(rule, role, "add"):
                    return FORBIDDEN
                # Another ward's row: its ward is not among the choices (a form error).
                return NOOP if _out_of_scope(rule, role, owner) else WRITE

            posts.append(Post(Case(case.key, case.url, owner, None), expect, data))
        return posts
    if suffix in ("change", "simple_history"):
        # simple_history's version page is a form too: saving it reverts the row.
        def data(w, r):
            return form_fields(admin_client, case.url) | {"change_reason": ["権限テスト"]}

        def allowed(role):
            if _may(rule, role, "change"):
                # axes' records are read-only fields: saving them changes nothing but the log.
                return WRITE
            return FORBIDDEN if _may(rule, role, "view") else REFUSED

        return [Post(case, lambda role, owner: scoped(role, owner, allowed), data)]
    if suffix == "delete":

        def allowed(role):
            return TRY if _may(rule, role, "delete") else FORBIDDEN

        data = {"post": "yes"}
        return [Post(case, lambda role, owner: scoped(role, owner, allowed), lambda w, r: data)]
    if suffix == "password_change":
        data = {"password1": "Atarashii-aikotoba-2027", "password2": "Atarashii-aikotoba-2027"}

        def allowed(role):
            return WRITE if _may(rule, role, "change") else FORBIDDEN

        return [Post(case, lambda role, owner: scoped(role, owner, allowed), lambda w, r: data)]
    return []


def _route_of(case: Case):
    return _ROUTES[case.key]


_ROUTES: dict = {}


def _own_password(role, owner):
    return LOGIN if role == "anonymous" else WRITE


def _from_get(case: Case) -> Callable:
    """A URL with no POST of its own: refused as the GET is, and otherwise nothing changes."""

    def expect(role, owner):
        outcome = case.expect(role, owner)
        if outcome in (LOGIN, FORBIDDEN, NOT_FOUND, REFUSED):
            return outcome
        assert outcome != NOT_ALLOWED, f"{case.key}: answers only POST, but has no POST case"
        return NOOP

    return expect


def build_posts(world) -> list[Post]:
    from tests.test_permissions import all_routes

    _ROUTES.clear()
    _ROUTES.update({route.key: route for route in all_routes()})
    admin_client = _client_for(world, "admin")
    cases, missing = build_cases(world)
    assert not missing
    posts = []
    for case in cases:
        found = _staff_posts(world, case, admin_client) or _admin_posts(world, case, admin_client)
        if not found and case.key == "admin:password_change":
            data = {
                "old_password": PASSWORD,
                "new_password1": "Atarashii-aikotoba-2027",
                "new_password2": "Atarashii-aikotoba-2027",
            }
            found = [Post(case, _own_password, lambda w, r, data=data: data)]
        posts += found or [Post(case, _from_get(case))]
    return posts


def _post(client, world, post: Post, role: str, baseline: dict) -> str | None:
    """None if the POST answered as expected, else what went wrong. Nothing it wrote stays."""
    expected = post.expect(role, post.case.owner)
    where = f"{role} POST {post.case.url} {post.label} ({post.case.key}, {post.case.owner})"
    with transaction.atomic():
        if post.prepare:
            post.prepare(world)
        before = snapshot() if post.prepare else baseline
        data = post.data(world, role)
        response = client.post(post.case.url, data)
        changed = snapshot() != before
        transaction.set_rollback(True)
    status = response.status_code
    if status >= 500:
        return f"{where}: {status}"
    if expected == WRITE:
        if not changed or status >= 400:
            return f"{where}: {status}, changed={changed}, expected a write"
        return None
    if changed and expected != TRY:
        return f"{where}: {status}, CHANGED THE DATABASE (expected {expected})"
    if expected == LOGIN:
        # The admin's login address redirects to the staff login (checked in the GET matrix).
        to = response.get("Location", "")
        if status != 302 or not to.startswith((login_path(post.case.url), "/admin/login/")):
            return f"{where}: {status} {response.get('Location')}, expected the login page"
    elif expected in _REFUSALS and status not in _REFUSALS[expected]:
        return f"{where}: {status}, expected {expected}"
    return None


def _restore(client, cookies: dict) -> None:
    """The client's cookies as before the POST (a logout or a login changes the session;
    the session rows themselves were rolled back)."""
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies[name] = value


# --- The tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_post_matrix(world, role):
    posts = build_posts(world)
    client = _client_for(world, role)
    client.raise_request_exception = False  # a 500 is a failure of its case, not the test
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    baseline = snapshot()
    failures = []
    for post in posts:
        if problem := _post(client, world, post, role, baseline):
            failures.append(problem)
        _restore(client, cookies)
    assert failures == [], "\n".join(failures)
    assert snapshot() == baseline


# --- CSRF: every URL ----------------------------------------------------------------------------


def csrf_refused(request, reason=""):
    """Stands in for the site's CSRF failure page: tells the refusal apart from a 403 of
    the permissions."""
    return HttpResponseForbidden(b"csrf-refused")


def resolve_url_callback(url: str):
    with translation.override("en" if url.startswith("/en/") else "ja"):
        return resolve(url.split("?")[0]).func


@pytest.mark.parametrize("role", ["anonymous", "admin"])
def test_every_post_needs_the_csrf_token(world, role, settings):
    """POST without a token to every URL (Japanese and English): the CSRF check refuses it
    before any view runs, or, for the import (which checks the token only once the body's
    size is known to be allowed), before it reads the body. Nothing is written."""
    settings.CSRF_FAILURE_VIEW = "tests.test_access_post.csrf_refused"
    cases, missing = build_cases(world)
    assert not missing
    urls = sorted({case.url for case in cases})
    client = Client(enforce_csrf_checks=True)
    if world.users[role] is not None:
        client.force_login(world.users[role])
    before = snapshot()
    data = {"username": "kita_staff", "password": PASSWORD, "post": "yes", "stage": 3}
    answers = {url: client.post(url, data) for url in urls}
    refused = {
        url for url, r in answers.items() if r.status_code == 403 and r.content == b"csrf-refused"
    }
    # The import's outer view is csrf_exempt (its inner one checks the token): an anonymous
    # user is sent to log in before that.
    exempt = {url for url in urls if getattr(resolve_url_callback(url), "csrf_exempt", False)}
    assert {url for url in exempt if "/import/" not in url} == set()
    if role == "anonymous":
        for url in exempt:
            assert answers[url].status_code == 302, url
            assert answers[url]["Location"].startswith(login_path(url)), url
        refused |= exempt
    assert sorted(set(urls) - refused) == []
    assert snapshot() == before
    # Logged in still: the refused logouts did not end the session.
    if role == "admin":
        assert client.get("/staff/").status_code == 200
    assert len(urls) > 150  # every URL of the walk, not a few


# --- Found by the matrix: simple_history's version page -----------------------------------------


def test_every_audited_admin_guards_its_version_page():
    from django.contrib import admin

    from kumamachi.admin import ScopedAdmin

    # The guard is ScopedAdmin's: every audited model's admin has it and none replaces it.
    for model, model_admin in admin.site._registry.items():
        if hasattr(model._meta, "simple_history_manager_attribute"):
            assert isinstance(model_admin, ScopedAdmin), model
            assert type(model_admin).history_form_view is ScopedAdmin.history_form_view, model


def test_version_page_of_a_correction_saves_nothing(world):
    """Corrections are never edited in the admin: saving an old version of one was a 500
    (and, for a model one may only view, a save past the permission)."""
    correction = world.admin_objects["budgets.correction"]["kita"]
    version = correction.history.first().history_id
    url = f"/admin/budgets/correction/{correction.pk}/history/{version}/"
    admin_client = _client_for(world, "admin")
    data = form_fields(admin_client, url) | {"change_reason": ["書き換え"]}
    clients = {role: _client_for(world, role) for role in ("kita_staff", "planner", "admin")}
    before = snapshot()
    for role, client in clients.items():
        assert client.post(url, data).status_code == 403, role
    assert snapshot() == before


def test_old_version_of_another_wards_row_is_not_found(world):
    """A project that was 北区's and is now 中央区's: 北区 staff cannot open, nor save, the
    version from when it was theirs (that would move it back to 北区)."""
    office = world.office
    project = office.kita_projects[2]
    old_version = project.history.order_by("history_id").last().history_id
    StageFigure.objects.filter(project=project).delete()
    project.ward = office.chuo
    project.number = "9"
    project.pillar = world.admin_objects["wards.visionpillar"]["chuo"]
    services.project_save(user=office.planner, project=project, reason="中央区へ移管")
    url = f"/admin/budgets/project/{project.pk}/history/{old_version}/"
    data = form_fields(_client_for(world, "admin"), url) | {"change_reason": ["取り戻す"]}
    assert data["ward"] == [str(office.kita.pk)]  # the old version is 北区's
    staff, planner = _client_for(world, "kita_staff"), _client_for(world, "planner")
    before = snapshot()
    assert staff.get(url).status_code == 404
    assert staff.post(url, data).status_code == 404
    assert snapshot() == before
    project.refresh_from_db()
    assert project.ward == office.chuo
    # A planner may: the page is there.
    assert planner.get(url).status_code == 200


# --- Import tokens of other users and wards -----------------------------------------------------


def test_import_token_of_another_user_or_ward_saves_nothing(world):
    """A confirmation token is bound to who previewed, which ward and which year: replayed
    by someone else or at another ward's address, nothing is saved."""
    office = world.office
    kita_case = Case("budgets:staff-import", "/staff/2025/kita/import/", "kita", None)
    kita_token = _import_token(world, kita_case, "kita_staff")
    planner_token = _import_token(world, kita_case, "planner")
    clients = {role: _client_for(world, role) for role in ("planner", "kita_staff", "chuo_staff")}
    before = snapshot()
    attempts = [
        ("planner", "/staff/2025/kita/import/", kita_token, 400),  # kita_staff's, by another
        ("planner", "/staff/2025/chuo/import/", planner_token, 400),  # 北区's, at 中央区
        ("kita_staff", "/staff/2025/chuo/import/", kita_token, 403),  # not their ward
        ("chuo_staff", "/staff/2025/chuo/import/", kita_token, 400),
        ("kita_staff", "/staff/2026/kita/import/", kita_token, 400),  # another year
    ]
    for role, url, token, status in attempts:
        response = clients[role].post(url, token)
        assert response.status_code == status, (role, url)
    assert snapshot() == before
    # The same token, by the one it was made for: saved.
    response = clients["kita_staff"].post("/staff/2025/kita/import/", kita_token)
    assert response.status_code == 302
    figure = StageFigure.objects.get(project=office.kita_projects[0], stage=Stage.SEPTEMBER)
    assert figure.amount == 7_777_000
