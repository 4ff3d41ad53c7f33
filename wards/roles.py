"""The three roles: ward staff (members of wards), planners (政策企画課) and administrators.

Groups carry the model permissions the admin checks; ward membership (``Ward.members``)
scopes ward staff to their own wards' rows.
"""

from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.db.models import QuerySet

PLANNER_GROUP = "政策企画課"
WARD_STAFF_GROUP = "区職員"

# (app_label, model, actions) each group may perform in the admin.
_PLANNER_PERMISSIONS = [
    ("wards", "fiscalyear", ("view", "add", "change")),
    ("wards", "wardyear", ("view", "add", "change", "delete")),
    ("wards", "visionpillar", ("view", "add", "change", "delete")),
    ("wards", "ward", ("view",)),
    ("wards", "cityplan", ("view", "add", "change")),
    ("wards", "cityvision", ("view", "add", "change")),
    ("budgets", "fund", ("view", "add", "change")),
    ("budgets", "allocation", ("view", "add", "change", "delete")),
    ("budgets", "printedtotal", ("view", "add", "change", "delete")),
    ("budgets", "project", ("view", "add", "change", "delete")),
    ("budgets", "correction", ("view",)),
]
_WARD_STAFF_PERMISSIONS = [
    ("wards", "fiscalyear", ("view",)),
    ("wards", "wardyear", ("view", "change")),
    ("wards", "visionpillar", ("view", "add", "change")),
    ("budgets", "allocation", ("view",)),
    ("budgets", "project", ("view", "add", "change")),
    ("budgets", "correction", ("view",)),
]


def _permissions(spec) -> list[Permission]:
    perms = []
    for app_label, model, actions in spec:
        for action in actions:
            perms.append(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=f"{action}_{model}"
                )
            )
    return perms


def groups_ensure(*, using: str = "default", **kwargs) -> None:
    """Create the two groups with their permissions (run after every migrate)."""
    # The apps' permissions may not exist yet when this runs after the first migrate.
    for label in ("wards", "budgets"):
        create_permissions(apps.get_app_config(label), verbosity=0, using=using)
    for name, spec in (
        (PLANNER_GROUP, _PLANNER_PERMISSIONS),
        (WARD_STAFF_GROUP, _WARD_STAFF_PERMISSIONS),
    ):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_permissions(spec))


def user_is_planner(user) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return _roles(user).is_planner


def user_ward_ids(user) -> frozenset[int]:
    """The wards whose data this user may enter: every ward for planners."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    return _roles(user).ward_ids


@dataclass(frozen=True)
class _Roles:
    is_planner: bool
    wards: list  # the wards the user may enter, in position order
    ward_ids: frozenset[int]
    every_ward_id: frozenset[int]


def _roles(user) -> _Roles:
    """The user's roles, read once per request and kept on the user object."""
    roles = getattr(user, "_kumamachi_roles", None)
    if roles is None:
        roles = user._kumamachi_roles = _roles_load(user)
    return roles


def _roles_load(user) -> _Roles:
    """Whether the user is a planner and which wards they may enter, in one query (every
    ward, each flagged)."""
    from django.db.models import Exists, OuterRef

    from wards.models import Ward

    planner = user.groups.through.objects.filter(user_id=user.pk, group__name=PLANNER_GROUP)
    member = Ward.members.through.objects.filter(ward_id=OuterRef("pk"), user_id=user.pk)
    wards = list(
        Ward.objects.order_by("position").annotate(
            user_is_planner=Exists(planner), user_is_member=Exists(member)
        )
    )
    is_planner = user.is_superuser or (
        wards[0].user_is_planner if wards else user.groups.filter(name=PLANNER_GROUP).exists()
    )
    mine = [w for w in wards if is_planner or w.user_is_member]
    return _Roles(
        is_planner=is_planner,
        wards=mine,
        ward_ids=frozenset(w.pk for w in mine),
        every_ward_id=frozenset(w.pk for w in wards),
    )


def ward_ids_every(user) -> frozenset[int]:
    """Every ward's id, read with the user's roles (no query when they are loaded)."""
    return _roles(user).every_ward_id


def user_ward_get(user, *, slug: str):
    """The ward of ``slug`` if the user may enter its data, else None (no query when the
    user's roles are already loaded)."""
    if not user.is_authenticated or not user.is_active:
        return None
    return next((w for w in _roles(user).wards if w.slug == slug), None)


def user_can_enter(user, ward) -> bool:
    return ward.pk in user_ward_ids(user)


def scope_to_user_wards(queryset: QuerySet, user, ward_field: str = "ward") -> QuerySet:
    """Rows of the user's wards only (all rows for planners)."""
    if user_is_planner(user):
        return queryset
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{f"{ward_field}__in": user_ward_ids(user)})
