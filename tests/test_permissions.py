"""The permission matrix: every URL of the URL conf, GET as every role, against the status
each role must get. The URLs come from walking the resolver, so a URL added later without
an expectation here fails the matrix until someone decides who may see it. Every address
under i18n_patterns is checked twice: in Japanese (no prefix) and in English (/en/).

Roles: anonymous, kita_staff (the object's ward), chuo_staff (another ward), planner and
admin (a superuser). Objects belong to 北区 ("kita"), 中央区 ("chuo") or the city ("city").

Each ward has figures being entered at the open September stage, and a year (2026) with
nothing published has one: every response is searched for them (HTML, CSV, JSON and the
cells of every xlsx sheet). Public pages never show them, to anyone; staff pages only to
those who may enter that ward. The POST matrix and the CSRF checks are in
test_access_post.py.
"""

import io
import re
from dataclasses import dataclass

import openpyxl
import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import LocalePrefixPattern, RegexPattern, RoutePattern
from django.utils import translation

from budgets.exports import XLSX_CONTENT_TYPE
from budgets.models import Allocation, Correction, Project, StageFigure
from tests.factories import (
    AllocationFactory,
    FiscalYearFactory,
    PrintedTotalFactory,
    ProjectFactory,
    StageFigureFactory,
    VisionPillarFactory,
)
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
    # For the proxy: answers everyone, shows only whether the database answers.
    "healthz": _public,
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
    # django-axes' records of logins and lockouts: administrators only (unlocking is
    # deleting an attempt); axes' admin refuses to add one by hand.
    "axes.accessattempt": AdminRule(scoped=False, never=frozenset({"add"})),
    "axes.accesslog": AdminRule(scoped=False, never=frozenset({"add"})),
    "axes.accessfailurelog": AdminRule(scoped=False, never=frozenset({"add"})),
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
                continue  # "" in Japanese, "en/" in English: no parameter
            if isinstance(piece, RoutePattern):
                names += list(piece.converters)
            else:
                names += list(piece.regex.groupindex)
                positional += piece.regex.groups - len(piece.regex.groupindex)
        return names, positional

    @property
    def languages(self) -> tuple[str, ...]:
        """Japanese at the plain address; English too under /en/ for i18n_patterns."""
        localized = any(isinstance(piece, LocalePrefixPattern) for piece in self.pieces)
        return ("ja", "en") if localized else ("ja",)

    def url(self, kwargs: dict, args: tuple = (), lang: str = "ja") -> str:
        positional = iter(args)
        parts = []
        for piece in self.pieces:
            text = str(piece)
            if isinstance(piece, LocalePrefixPattern):
                # prefix_default_language=False: Japanese has no prefix.
                text = "" if lang == "ja" else f"{lang}/"
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


# Models whose rows' names are public text, shown by every page.
PUBLIC_NAMES = {"budgets.fund"}

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
    lang: str = "ja"


@dataclass
class World:
    office: object
    admin_objects: dict  # "app.model" -> {owner: object}
    users: dict  # role -> user or None
    draft_year: object  # 2026: nothing published, the initial budget being entered
    draft_project: object  # 北区's project of 2026


# Figures being entered (September 2025; the initial budget of 2026, a year with nothing
# published), as each response could show them: thousand yen as on the pages, yen as in
# CSV/JSON, the ward's September total, and the reason typed with them.
DRAFT_YEN = {"kita": 7_654_321, "chuo": 5_432_109}
DRAFT_YEN_2026 = 6_543_210
DRAFT_MARKERS = {
    "kita": (
        "7,654.321",
        "7654.321",
        "7654321",
        "9,853.321",  # September total: 7,654.321 + 617 + 1,582
        "9853321",
        "非公開メモ北区",
        "6,543.21",
        "6543.21",
        "6543210",
    ),
    "chuo": ("5,432.109", "5432.109", "5432109", "7,631.109", "7631109", "非公開メモ中央区"),
}


def _drafts_enter(office) -> tuple:
    """Each ward's September draft (the first project's figure changed, with a reason) and
    2026, a year with no stage published, whose initial budget 北区 is entering."""
    for slug, amount in DRAFT_YEN.items():
        projects = getattr(office, f"{slug}_projects")
        ward = getattr(office, slug)
        for project, value in zip(projects, (amount, 617_000, 1_582_000), strict=True):
            reason = f"非公開メモ{ward.name_ja}" if value == amount else ""
            StageFigureFactory(project=project, stage=Stage.SEPTEMBER, amount=value, reason=reason)
    draft_year = FiscalYearFactory(year=2026, published_stage=None, open_stage=Stage.INITIAL)
    pillar = VisionPillarFactory(
        ward=office.kita, fiscal_year=draft_year, position=1, name="交流の場"
    )
    draft_project = ProjectFactory(
        ward=office.kita,
        fiscal_year=draft_year,
        fund=office.machizukuri,
        pillar=pillar,
        number="1",
        position=1,
        name="北区事業2026",
    )
    StageFigureFactory(project=draft_project, stage=Stage.INITIAL, amount=DRAFT_YEN_2026)
    return draft_year, draft_project


def _axes_records() -> dict:
    """One login record of each kind django-axes keeps, as admin objects."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    seen = {"username": "kita_staff", "ip_address": "192.0.2.1", "user_agent": "test"}
    seen |= {"http_accept": "text/html", "path_info": LOGIN_PATH}
    attempt = AccessAttempt.objects.create(
        **seen, get_data="", post_data="username=kita_staff", failures_since_start=2
    )
    return {
        "axes.accessattempt": {"city": attempt},
        "axes.accesslog": {"city": AccessLog.objects.create(**seen)},
        "axes.accessfailurelog": {"city": AccessFailureLog.objects.create(**seen)},
    }


@pytest.fixture
def world(office):
    return world_build(office)


def world_build(office) -> World:
    draft_year, draft_project = _drafts_enter(office)
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
        **_axes_records(),
    }
    users = {
        "anonymous": None,
        "kita_staff": office.kita_staff,
        "chuo_staff": office.chuo_staff,
        "planner": office.planner,
        "admin": office.admin,
    }
    return World(office, admin_objects, users, draft_year, draft_project)


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
                # A fund's name is on every page of the site, the refusals included.
                secret = None if label in PUBLIC_NAMES else str(obj)
                cases.append(Case(route.key, url, owner, expect, secret, change_url))
            continue

        rule = URL_RULES.get(route.key)
        if rule is None:
            missing.append(route.key)
            continue
        if positional:
            missing.append(f"{route.key} (unnamed parameters)")
            continue
        for lang in route.languages:
            found = _route_cases(world, route, names, rule, lang)
            if found is None:
                missing.append(f"{route.key} (parameters {names})")
                break
            cases += found
    # Each filled-in URL leads back to its own route.
    for case in cases:
        with translation.override(case.lang):
            match = resolve(case.url.split("?")[0])
        if not case.key.startswith("route:") and case.key not in SHADOWED:
            assert match.view_name == case.key, (case.url, match.view_name)
    return cases, missing


# Addresses with a query string: the search, and forms whose other answers are form errors.
QUERY_CASES = {
    "budgets:search": (("?q=事業", _public), ("?q=非公開メモ", _public)),
    "budgets:compare": (("?a=2025&b=2026", lambda role, owner: BAD_REQUEST),),
    "budgets:cross-year-export": (("?from=2025&to=2026", _public),),
}


def _route_cases(world, route: Route, names: list, rule, lang: str) -> list[Case] | None:
    """The cases of one route (not an admin model page) in one language; None when its
    parameters are of a kind the matrix does not know how to fill."""

    def case(kwargs, owner, secret=None):
        return Case(route.key, route.url(kwargs, lang=lang), owner, rule, secret, lang=lang)

    if not names:
        queries = QUERY_CASES.get(route.key, ())
        return [case({}, None)] + [
            Case(route.key, route.url({}, lang=lang) + q, None, expect, lang=lang)
            for q, expect in queries
        ]
    if set(names) <= {"year", "ward", "pk"}:
        cases = []
        for owner in ("kita", "chuo"):
            secret = _project_of(world, owner).name if "pk" in names else None
            cases.append(case(_ward_kwargs(world, owner), owner, secret))
        # The year with nothing published: its addresses follow the same rules.
        if "year" in names or "pk" in names:
            kwargs = {"year": world.draft_year.year, "ward": "kita", "pk": world.draft_project.pk}
            cases.append(case(kwargs, "kita", world.draft_project.name))
        return cases
    if names == ["app_label"]:
        return [case({"app_label": label}, label) for label in ("auth", "wards", "budgets")]
    if names == ["content_type_id", "object_id"]:
        project = world.office.kita_projects[0]
        kwargs = {
            "content_type_id": ContentType.objects.get_for_model(Project).pk,
            "object_id": project.pk,
        }
        return [case(kwargs, "kita")]
    if names == ["url"]:
        return [case({"url": "no-such-page/"}, None)]
    return None


def snapshot() -> dict:
    """Every row of the ledger, its history, accounts (with their groups and wards), the
    admin log and the login records: read as plain rows, since the POST matrix reads it
    after every request."""
    models = [
        model
        for label in ("wards", "budgets", "auth", "admin", "axes")
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
    ]
    rows = {}
    with connection.cursor() as cursor:
        for model in models:
            table = connection.ops.quote_name(model._meta.db_table)
            column = connection.ops.quote_name(model._meta.pk.column)
            cursor.execute(f"SELECT * FROM {table} ORDER BY {column}")  # noqa: S608 - our names
            rows[model._meta.label] = cursor.fetchall()
    return rows


def _client_for(world, role) -> Client:
    client = Client()
    if world.users[role] is not None:
        client.force_login(world.users[role])
    return client


def _xlsx_text(content: bytes) -> str:
    """Every cell of every sheet (hidden ones too); numbers also as whole yen, the way
    thousand-yen cells would give a draft away."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    parts = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            for value in row:
                if isinstance(value, int | float) and not isinstance(value, bool):
                    parts.append(f"{value} {round(value * 1000)}")
                elif value is not None:
                    parts.append(str(value))
    return "\n".join(parts)


def body_text(response) -> str:
    """What a response shows: the page, the CSV or JSON, or the workbook's cells."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Type", "").startswith(XLSX_CONTENT_TYPE):
        return _xlsx_text(content)
    return content.decode("utf-8", "replace")


def _is_staff_path(url: str) -> bool:
    return url.removeprefix("/en").startswith(("/staff/", "/admin/"))


def may_see_drafts(role: str, ward: str, url: str) -> bool:
    """Figures being entered show on staff pages to those who may enter the ward, and
    nowhere else: a logged-in user sees the public pages as the public does."""
    return _is_staff_path(url) and (_is_planner(role) or _own(role, ward))


def drafts_shown(body: str, role: str, url: str) -> list[str]:
    """The draft markers in ``body`` that ``role`` may not see at ``url``."""
    return [
        marker
        for ward, markers in DRAFT_MARKERS.items()
        if not may_see_drafts(role, ward, url)
        for marker in markers
        if marker in body
    ]


def login_path(url: str) -> str:
    return "/en" + LOGIN_PATH if url.startswith("/en/") else LOGIN_PATH


def _check(client, case: Case, role: str) -> str | None:
    """None if the GET answered as expected, else what went wrong."""
    expected = case.expect(role, case.owner)
    if expected is None:
        return f"{case.key} {case.url}: no expectation for {role}"
    response = client.get(case.url)
    status = response.status_code
    where = f"{role} GET {case.url} ({case.key}, {case.owner})"
    body = body_text(response)
    if leaked := drafts_shown(body, role, case.url):
        return f"{where}: shows figures being entered {leaked}"
    if expected == LOGIN:
        if status != 302:
            return f"{where}: {status}, expected a redirect to the login page"
        final = client.get(case.url, follow=True)
        if final.request["PATH_INFO"] != login_path(case.url) or final.status_code != 200:
            return f"{where}: redirected to {final.request['PATH_INFO']}, not to the login page"
        return None
    if status not in _STATUSES[expected]:
        return f"{where}: {status}, expected {expected}"
    if case.secret and status != 200 and case.secret in body:
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
        path = case.url.split("?")[0].removeprefix("/en")
        if not _is_staff_path(path):
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
    assert (
        StageFigure.objects.get(project=kita_projects[0], stage=Stage.SEPTEMBER).amount
        == (DRAFT_YEN["kita"])
    )
    assert not WardSubmission.objects.exists()
    # The refused logout left the session as it was.
    assert staff.get("/staff/").status_code == 200
    # Logging in needs the token too.
    anonymous = Client(enforce_csrf_checks=True)
    response = anonymous.post(LOGIN_PATH, {"username": "kita_staff", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in anonymous.session


# --- Figures being entered ----------------------------------------------------------------------


def test_drafts_show_where_they_belong(world):
    """The search for drafts finds them where they may be (so the matrix can fail):
    北区 staff's sheet and workbook, the planner's review; the public pages show the
    published figures, and the drafts only as 未公表."""
    kita = _client_for(world, "kita_staff")
    sheet = body_text(kita.get("/staff/2025/kita/"))
    assert "7,654.321" in sheet and "非公開メモ北区" in sheet
    assert "6,543.21" in body_text(kita.get("/staff/2026/kita/"))
    assert "7654321" in body_text(kita.get("/staff/2025/kita/export.xlsx"))
    review = body_text(_client_for(world, "planner").get("/staff/2025/review/"))
    assert "非公開メモ北区" in review and "非公開メモ中央区" in review
    # Each of them would be reported on a public page, or on another ward's screen.
    assert drafts_shown(sheet, "kita_staff", "/2025/kita/")
    assert drafts_shown(sheet, "chuo_staff", "/staff/2025/kita/")
    assert not drafts_shown(sheet, "planner", "/en/staff/2025/kita/")
    public = body_text(kita.get("/2025/kita/"))
    assert "3,100" in public and "未公表" in public
    assert drafts_shown(public, "anonymous", "/2025/kita/") == []
    csv = body_text(Client().get("/2025/data.csv"))
    assert "3100000" in csv and "unpublished" in csv
