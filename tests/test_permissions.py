"""The permission matrix: every URL of the URL conf, GET as every role, against the status
each role must get. The URLs come from walking the resolver, so a URL added later without
an expectation here fails the matrix until someone decides who may see it.

Roles: anonymous, kita_staff (the object's ward), chuo_staff (another ward), planner and
admin (a superuser). Objects belong to 北区 ("kita"), 中央区 ("chuo") or the city ("city").
"""

import re
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import LocalePrefixPattern, RegexPattern, RoutePattern

from budgets.models import Allocation, Correction, Project, StageFigure
from tests.factories import AllocationFactory, PrintedTotalFactory
from wards.models import CityPlan, CityVision, Stage, VisionPillar, WardSubmission, WardYear

pytestmark = pytest.mark.django_db

PASSWORD = "Kuma-machi-2026!"
LOGIN_PATH = "/staff/login/"
ROLES = ("anonymous", "kita_staff", "chuo_staff", "planner", "admin")
WARD_OF_ROLE = {"kita_staff": "kita", "chuo_staff": "chuo"}

# Expected outcomes. LOGIN: 302, and following the redirects ends on the staff login page.
# REFUSED: 403 or 404, as long as nothing of the object is shown.
OK, LOGIN, REDIRECT = "200", "login", "302"
FORBIDDEN, NOT_FOUND, NOT_ALLOWED, REFUSED = "403", "404", "405", "403/404"
BAD_REQUEST = "400"
_STATUSES = {
    OK: {200},
    REDIRECT: {302},
    FORBIDDEN: {403},
    NOT_FOUND: {404},
    NOT_ALLOWED: {405},
    REFUSED: {403, 404},
    BAD_REQUEST: {400},
}


def _own(role, owner) -> bool:
    return WARD_OF_ROLE.get(role) == owner


def _is_planner(role) -> bool:
    return role in ("planner", "admin")


# --- Expectations: staff screens and public pages, by URL name ----------------------------------


def _public(role, owner):
    return OK


def _staff(rule):
    """Anonymous users are sent to the login page; ``rule`` decides for everyone else."""

    def expect(role, owner):
        return LOGIN if role == "anonymous" else rule(role, owner)

    return expect


def _own_ward_or_planner(role, owner):
    return OK if _is_planner(role) or _own(role, owner) else FORBIDDEN


def _planner_only(role, owner):
    return OK if _is_planner(role) else FORBIDDEN


def _post_only(role, owner):
    return NOT_ALLOWED


def _admin_page(rule):
    return _staff(rule)


def _admin_app_index(role, app_label):
    if role == "admin":
        return OK
    # Ward staff and planners hold no permission on accounts: the app's index is not there.
    return NOT_FOUND if app_label == "auth" else OK


URL_RULES = {
    # Public pages: published data only, the same for everyone.
    "budgets:home": _public,
    "budgets:city": _public,
    "budgets:ward": _public,
    "budgets:project": _public,
    "budgets:data": _public,
    "budgets:search": _public,
    "budgets:glossary": _public,
    # Without ?a=&b= the comparison answers a form error.
    "budgets:compare": lambda role, owner: BAD_REQUEST,
    "budgets:year-export": _public,
    "budgets:ward-export": _public,
    "budgets:data-csv": _public,
    "budgets:data-json": _public,
    # Without ?from=&to= the cross-year workbook answers a form error.
    "budgets:cross-year-export": lambda role, owner: BAD_REQUEST,
    "budgets:staff-export": _staff(lambda role, owner: OK),
    "budgets:staff-ward-export": _staff(_own_ward_or_planner),
    # Staff screens.
    "budgets:staff-login": lambda role, owner: OK if role == "anonymous" else REDIRECT,
    # LogoutView answers only POST; a GET shows nothing, logged in or not.
    "budgets:staff-logout": lambda role, owner: NOT_ALLOWED,
    "budgets:staff-home": _staff(lambda role, owner: OK),
    "budgets:staff-project": _staff(_own_ward_or_planner),
    "budgets:staff-sheet": _staff(_own_ward_or_planner),
    "budgets:staff-review": _staff(_planner_only),
    "budgets:staff-open": _staff(_post_only),
    "budgets:staff-publish": _staff(_post_only),
    "budgets:staff-submit": _staff(_post_only),
    "budgets:staff-return": _staff(_post_only),
    "budgets:staff-import": _staff(_own_ward_or_planner),
    # The admin site's own pages.
    "admin:index": _admin_page(lambda role, owner: OK),
    # Both the admin's login page and the redirect in front of it send to /staff/login/,
    # which sends a logged-in user on to /staff/.
    "admin:login": lambda role, owner: LOGIN if role == "anonymous" else REDIRECT,
    "route:admin/login/": lambda role, owner: LOGIN if role == "anonymous" else REDIRECT,
    "admin:logout": _admin_page(_post_only),
    "admin:password_change": _admin_page(lambda role, owner: OK),
    "admin:password_change_done": _admin_page(lambda role, owner: OK),
    # No model has autocomplete fields: the JSON view refuses every request.
    "admin:autocomplete": _admin_page(lambda role, owner: FORBIDDEN),
    "admin:jsi18n": _admin_page(lambda role, owner: OK),
    # No model has get_absolute_url.
    "admin:view_on_site": _admin_page(lambda role, owner: NOT_FOUND),
    "admin:app_list": _admin_page(_admin_app_index),
    "route:admin/(?P<url>.*)$": _admin_page(lambda role, owner: NOT_FOUND),
}


# --- Expectations: the admin's model pages, from each role's permissions ------------------------


@dataclass(frozen=True)
class AdminRule:
    """What ward staff and planners may do with a model in the admin.

    ``scoped``: ward staff reach only their own wards' rows. ``never``: actions the model's
    admin refuses to everyone, administrators included.
    """

    staff: frozenset = frozenset()
    planner: frozenset = frozenset()
    scoped: bool = True
    never: frozenset = frozenset()


VIEW = frozenset({"view"})
VIEW_ADD_CHANGE = frozenset({"view", "add", "change"})
ALL = frozenset({"view", "add", "change", "delete"})

ADMIN_RULES = {
    "auth.user": AdminRule(scoped=False),
    "auth.group": AdminRule(scoped=False),
    "wards.ward": AdminRule(planner=VIEW, scoped=False),
    "wards.fiscalyear": AdminRule(staff=VIEW, planner=VIEW_ADD_CHANGE, scoped=False),
    "wards.cityplan": AdminRule(planner=VIEW_ADD_CHANGE, scoped=False),
    "wards.wardyear": AdminRule(staff=frozenset({"view", "change"}), planner=ALL),
    "wards.visionpillar": AdminRule(staff=VIEW_ADD_CHANGE, planner=ALL),
    "budgets.fund": AdminRule(planner=VIEW_ADD_CHANGE, scoped=False),
    "budgets.allocation": AdminRule(staff=VIEW, planner=ALL),
    "budgets.printedtotal": AdminRule(planner=ALL),
    "budgets.project": AdminRule(staff=VIEW_ADD_CHANGE, planner=ALL),
    # Listed only (made on the staff project screen): ward staff see their wards' ones.
    "budgets.correction": AdminRule(
        staff=VIEW, planner=VIEW, never=frozenset({"add", "change", "delete"})
    ),
}


def _may(rule: AdminRule, role: str, action: str) -> bool:
    if action in rule.never:
        return False
    if role == "admin":
        return True
    if role == "planner":
        return action in rule.planner
    return action in rule.staff


def _out_of_scope(rule: AdminRule, role: str, owner) -> bool:
    return rule.scoped and role in WARD_OF_ROLE and owner is not None and not _own(role, owner)


def _admin_model_expectation(rule: AdminRule, suffix: str, role: str, owner):
    if role == "anonymous":
        return LOGIN
    can_see = _may(rule, role, "view") or _may(rule, role, "change")
    if suffix == "changelist":
        return OK if can_see else FORBIDDEN
    if suffix == "add":
        return OK if _may(rule, role, "add") else FORBIDDEN
    if suffix == "object_redirect":
        return REDIRECT  # to the change page, which decides (checked separately)
    if _out_of_scope(rule, role, owner):
        return REFUSED
    if suffix in ("change", "history", "simple_history"):
        return OK if can_see else REFUSED
    if suffix == "delete":
        return OK if _may(rule, role, "delete") else FORBIDDEN
    if suffix == "password_change":
        return OK if _may(rule, role, "change") else FORBIDDEN
    return None


ADMIN_SUFFIXES = {
    "changelist",
    "add",
    "change",
    "history",
    "delete",
    "simple_history",
    "object_redirect",
    "password_change",
}


# --- Walking the URL conf ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    pieces: tuple
    name: str | None
    callback: object

    @property
    def text(self) -> str:
        return "".join(str(piece) for piece in self.pieces)

    @property
    def key(self) -> str:
        return self.name or f"route:{self.text}"

    @property
    def params(self) -> tuple[list[str], int]:
        """Named parameters and the number of positional (unnamed regex) groups."""
        names, positional = [], 0
        for piece in self.pieces:
            if isinstance(piece, LocalePrefixPattern):
                continue  # "" in Japanese, the default: the English "en/" adds nothing to check
            if isinstance(piece, RoutePattern):
                names += list(piece.converters)
            else:
                names += list(piece.regex.groupindex)
                positional += piece.regex.groups - len(piece.regex.groupindex)
        return names, positional

    def url(self, kwargs: dict, args: tuple = ()) -> str:
        positional = iter(args)
        parts = []
        for piece in self.pieces:
            text = str(piece)
            if isinstance(piece, LocalePrefixPattern):
                text = piece.language_prefix
            elif isinstance(piece, RoutePattern):
                text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), text)
            else:
                assert isinstance(piece, RegexPattern)
                text = text.removeprefix("^").removesuffix("$")
                text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(kwargs[m.group(1)]), text)
                text = re.sub(r"\([^)]*\)", lambda m: str(next(positional)), text)
            parts.append(text)
        return "/" + "".join(parts)


def _walk(resolver, pieces=(), namespace=None):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry, pieces + (entry.pattern,), ns)
        else:
            assert isinstance(entry, URLPattern)
            name = entry.name and (f"{namespace}:{entry.name}" if namespace else entry.name)
            yield Route(pieces + (entry.pattern,), name, entry.callback)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver()))


def _admin_models() -> dict[str, type]:
    """Each registered model's URL prefix in the admin ("budgets/project/") to its model."""
    return {f"{m._meta.app_label}/{m._meta.model_name}/": m for m in admin.site._registry}


def admin_model_of(route: Route):
    """(model, suffix) for an admin model page, else None."""
    if len(route.pieces) < 3 or str(route.pieces[0]) != "admin/":
        return None
    model = _admin_models().get(str(route.pieces[1]))
    if model is None:
        return None
    if route.name is None:
        return model, "object_redirect"
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
    assert route.name.startswith(prefix), route.name
    return model, route.name.removeprefix(prefix)


# Admin's own login page is shadowed by the redirect to /staff/login/ placed before it.
SHADOWED = {"admin:login"}


@dataclass
class Case:
    key: str
    url: str
    owner: str | None
    expect: object  # (role) -> outcome, or None where no expectation exists
    secret: str | None = None  # text of the object that a refused page must not show
    change_url: str | None = None


@dataclass
class World:
    office: object
    admin_objects: dict  # "app.model" -> {owner: object}
    users: dict  # role -> user or None


@pytest.fixture
def world(office):
    plan = CityPlan.objects.create(ordinal=8, name="熊本市第8次総合計画")
    CityVision.objects.create(plan=plan, number=1, title="上質な生活都市")
    city_allocation = AllocationFactory(
        ward=None, fiscal_year=office.year, fund=office.machizukuri, amount=95_000_000
    )
    corrections, printed = {}, {}
    for slug, projects in (("kita", office.kita_projects), ("chuo", office.chuo_projects)):
        ward = getattr(office, slug)
        printed[slug] = PrintedTotalFactory(
            ward=ward, fiscal_year=office.year, fund=office.machizukuri, amount=5_299_000
        )
        corrections[slug] = Correction.objects.create(
            project=projects[0],
            stage=Stage.INITIAL,
            old_entered=True,
            old_amount=3_000_000,
            new_amount=3_100_000,
            reason=f"{ward.name_ja}の誤記訂正",
            corrected_by=office.planner,
        )

    def by_ward(model):
        return {
            slug: model.objects.get(ward=getattr(office, slug), fiscal_year=office.year)
            for slug in ("kita", "chuo")
        }

    admin_objects = {
        "auth.user": {"city": office.kita_staff},
        "auth.group": {"city": Group.objects.get(name="区職員")},
        "wards.ward": {"city": office.kita},
        "wards.fiscalyear": {"city": office.year},
        "wards.cityplan": {"city": plan},
        "wards.wardyear": by_ward(WardYear),
        "wards.visionpillar": by_ward(VisionPillar),
        "budgets.fund": {"city": office.machizukuri},
        "budgets.allocation": {**by_ward(Allocation), "city": city_allocation},
        "budgets.printedtotal": printed,
        "budgets.project": {"kita": office.kita_projects[0], "chuo": office.chuo_projects[0]},
        "budgets.correction": corrections,
    }
    users = {
        "anonymous": None,
        "kita_staff": office.kita_staff,
        "chuo_staff": office.chuo_staff,
        "planner": office.planner,
        "admin": office.admin,
    }
    return World(office, admin_objects, users)


def _project_of(world, owner):
    return getattr(world.office, f"{owner}_projects")[0]


def _ward_kwargs(world, owner) -> dict:
    return {"year": 2025, "ward": owner, "pk": _project_of(world, owner).pk}


def _history_id(obj) -> int | None:
    record = getattr(obj, "history", None)
    return record.order_by("-history_id").first().history_id if record is not None else None


def build_cases(world) -> tuple[list[Case], list[str]]:
    """Every URL of the URL conf with its parameters filled, and the routes that have no
    expectation (or no way to fill their parameters)."""
    cases, missing = [], []
    for route in all_routes():
        names, positional = route.params
        found = admin_model_of(route)
        if found is not None:
            model, suffix = found
            label = model._meta.label_lower
            rule = ADMIN_RULES.get(label)
            if rule is None or suffix not in ADMIN_SUFFIXES:
                missing.append(f"{route.key} ({label}, {suffix})")
                continue

            def expect(role, owner, rule=rule, suffix=suffix):
                return _admin_model_expectation(rule, suffix, role, owner)

            if not names and not positional:
                cases.append(Case(route.key, route.url({}), None, expect))
                continue
            for owner, obj in world.admin_objects[label].items():
                kwargs = {name: obj.pk for name in names}
                args = (obj.pk, _history_id(obj))[:positional]
                opts = model._meta
                change_url = reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]
                )
                url = route.url(kwargs, args)
                cases.append(Case(route.key, url, owner, expect, str(obj), change_url))
            continue

        rule = URL_RULES.get(route.key)
        if rule is None:
            missing.append(route.key)
            continue
        if positional:
            missing.append(f"{route.key} (unnamed parameters)")
        elif not names:
            cases.append(Case(route.key, route.url({}), None, rule))
        elif set(names) <= {"year", "ward", "pk"}:
            for owner in ("kita", "chuo"):
                secret = _project_of(world, owner).name if "pk" in names else None
                url = route.url(_ward_kwargs(world, owner))
                cases.append(Case(route.key, url, owner, rule, secret=secret))
        elif names == ["app_label"]:
            for label in ("auth", "wards", "budgets"):
                cases.append(Case(route.key, route.url({"app_label": label}), label, rule))
        elif names == ["content_type_id", "object_id"]:
            project = world.office.kita_projects[0]
            kwargs = {
                "content_type_id": ContentType.objects.get_for_model(Project).pk,
                "object_id": project.pk,
            }
            cases.append(Case(route.key, route.url(kwargs), "kita", rule))
        elif names == ["url"]:
            cases.append(Case(route.key, route.url({"url": "no-such-page/"}), None, rule))
        else:
            missing.append(f"{route.key} (parameters {names})")
    # Each filled-in URL leads back to its own route.
    for case in cases:
        match = resolve(case.url.split("?")[0])
        if not case.key.startswith("route:") and case.key not in SHADOWED:
            assert match.view_name == case.key, (case.url, match.view_name)
    return cases, missing


def snapshot() -> dict:
    """Every row of the ledger, its history, accounts and the admin log."""
    models = [
        *apps.get_app_config("wards").get_models(),
        *apps.get_app_config("budgets").get_models(),
        *apps.get_app_config("auth").get_models(),
        *apps.get_app_config("admin").get_models(),
    ]
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values()) for model in models
    }


def _client_for(world, role) -> Client:
    client = Client()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    return client


def _check(client, case: Case, role: str) -> str | None:
    """None if the GET answered as expected, else what went wrong."""
    expected = case.expect(role, case.owner)
    if expected is None:
        return f"{case.key} {case.url}: no expectation for {role}"
    response = client.get(case.url)
    status = response.status_code
    where = f"{role} GET {case.url} ({case.key}, {case.owner})"
    if expected == LOGIN:
        if status != 302:
            return f"{where}: {status}, expected a redirect to the login page"
        final = client.get(case.url, follow=True)
        if final.request["PATH_INFO"] != LOGIN_PATH or final.status_code != 200:
            return f"{where}: redirected to {final.request['PATH_INFO']}, not to the login page"
        return None
    if status not in _STATUSES[expected]:
        return f"{where}: {status}, expected {expected}"
    if case.secret and status != 200 and case.secret in response.content.decode():
        return f"{where}: refused page shows {case.secret!r}"
    if expected == REDIRECT and case.change_url and response["Location"] != case.change_url:
        return f"{where}: redirected to {response['Location']}, not {case.change_url}"
    return None


# --- The tests -----------------------------------------------------------------------------------


def test_every_url_has_an_expectation(world):
    cases, missing = build_cases(world)
    assert missing == [], "URLs without an expectation in the permission matrix"
    keys = {case.key for case in cases}
    # The walk found the staff screens and the admin pages of the ledger's models.
    assert {"budgets:staff-sheet", "budgets:staff-review", "budgets:staff-login"} <= keys
    for label in ("project", "visionpillar", "allocation", "fiscalyear"):
        app = "wards" if label in ("visionpillar", "fiscalyear") else "budgets"
        for suffix in ("changelist", "add", "change", "history", "delete"):
            assert f"admin:{app}_{label}_{suffix}" in keys
    # Every model in the admin has its rule, and every rule a model in the admin.
    assert {m._meta.label_lower for m in admin.site._registry} == set(ADMIN_RULES)
    # Whatever the rules say, anonymous users are sent to log in from every page of /staff/
    # and /admin/ but the login page itself (and logout, which answers only POST).
    for case in cases:
        path = case.url.split("?")[0]
        if not path.startswith(("/staff/", "/admin/")):
            continue
        expected = case.expect("anonymous", case.owner)
        if path == LOGIN_PATH:
            assert expected == OK
        elif path == "/staff/logout/":
            assert expected == NOT_ALLOWED
        else:
            assert expected == LOGIN, case.url


def test_unknown_url_fails_the_matrix(world, monkeypatch):
    """A URL added without an expectation is reported, not silently skipped."""
    monkeypatch.delitem(URL_RULES, "budgets:staff-review")
    _, missing = build_cases(world)
    assert missing == ["budgets:staff-review"]


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(world, role):
    cases, missing = build_cases(world)
    assert not missing
    client = _client_for(world, role)
    before = snapshot()
    failures = [problem for case in cases if (problem := _check(client, case, role))]
    assert failures == [], "\n".join(failures)
    # No GET wrote anything: figures, submissions, years, their history, the admin log.
    assert snapshot() == before


@pytest.mark.parametrize(
    ("role", "owner", "expected"),
    [
        ("kita_staff", "kita", 200),
        ("kita_staff", "chuo", 403),
        ("chuo_staff", "kita", 403),
        ("planner", "chuo", 200),
        ("admin", "kita", 200),
    ],
)
def test_matrix_spot_checks(world, role, owner, expected):
    """A few cells of the matrix spelled out, as a reader would check them by hand."""
    client = _client_for(world, role)
    assert client.get(f"/staff/2025/{owner}/").status_code == expected
    pk = _project_of(world, owner).pk
    assert client.get(f"/staff/projects/{pk}/").status_code == expected
    change = client.get(f"/admin/budgets/project/{pk}/change/")
    assert change.status_code == (200 if expected == 200 else 404)
    history = client.get(f"/admin/budgets/project/{pk}/history/")
    assert history.status_code == (200 if expected == 200 else 403)
    review = client.get("/staff/2025/review/").status_code
    assert review == (200 if role in ("planner", "admin") else 403)


def test_anonymous_sees_only_the_login_page(world):
    client = Client()
    login = client.get(LOGIN_PATH)
    assert login.status_code == 200
    assert 'name="password"' in login.content.decode()
    response = client.get("/admin/login/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_PATH)
    for url in ("/staff/", "/staff/2025/kita/", "/admin/", "/admin/budgets/project/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].split("?")[0] in (LOGIN_PATH, "/admin/login/"), url
        assert b"\xe5\x8c\x97\xe5\x8c\xba" not in response.content  # 北区


# --- CSRF ----------------------------------------------------------------------------------------


def _sheet_post(projects, values):
    data = {}
    for project, value in zip(projects, values, strict=True):
        figure = StageFigure.objects.filter(project=project, stage=Stage.SEPTEMBER).first()
        data[f"amount_{project.pk}"] = value
        data[f"reason_{project.pk}"] = "見直し"
        data[f"version_{project.pk}"] = figure.version if figure else 0
    return data


def test_posts_without_csrf_token_are_refused(world):
    office = world.office
    kita_projects = office.kita_projects
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(office.kita_staff)
    planner = Client(enforce_csrf_checks=True)
    planner.force_login(office.planner)
    before = snapshot()
    pk = kita_projects[0].pk
    attempts = [
        (staff, "/staff/2025/kita/", _sheet_post(kita_projects, ["3,100", "617", "1,582"])),
        (staff, "/staff/2025/kita/submit/", {}),
        (planner, "/staff/2025/open/", {"stage": Stage.SEPTEMBER}),
        (planner, "/staff/2025/publish/", {}),
        (planner, "/staff/2025/kita/return/", {"reason": "再確認"}),
        (planner, f"/staff/projects/{pk}/", {"stage": 1, "amount": "1", "reason": "x"}),
        (staff, f"/admin/budgets/project/{pk}/change/", {"name": "書き換え"}),
        (staff, "/staff/logout/", {}),
    ]
    for client, url, data in attempts:
        response = client.post(url, data)
        assert response.status_code == 403, url
    assert snapshot() == before
    assert not StageFigure.objects.filter(stage=Stage.SEPTEMBER).exists()
    assert not WardSubmission.objects.exists()
    # The refused logout left the session as it was.
    assert staff.get("/staff/").status_code == 200
    # Logging in needs the token too.
    anonymous = Client(enforce_csrf_checks=True)
    response = anonymous.post(LOGIN_PATH, {"username": "kita_staff", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in anonymous.session
