"""The three roles: ward staff (members of wards), planners (政策企画課) and administrators.

Groups carry the model permissions the admin checks; ward membership (``Ward.members``)
scopes ward staff to their own wards' rows.
"""

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
    cached = getattr(user, "_kumamachi_is_planner", None)
    if cached is None:
        cached = user.groups.filter(name=PLANNER_GROUP).exists()
        user._kumamachi_is_planner = cached
    return cached


def user_ward_ids(user) -> frozenset[int]:
    """The wards whose data this user may enter: every ward for planners."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_kumamachi_ward_ids", None)
    if cached is None:
        from wards.models import Ward

        wards = Ward.objects.all() if user_is_planner(user) else user.member_wards.all()
        cached = frozenset(wards.values_list("pk", flat=True))
        user._kumamachi_ward_ids = cached
    return cached


def user_can_enter(user, ward) -> bool:
    return ward.pk in user_ward_ids(user)


def scope_to_user_wards(queryset: QuerySet, user, ward_field: str = "ward") -> QuerySet:
    """Rows of the user's wards only (all rows for planners)."""
    if user_is_planner(user):
        return queryset
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{f"{ward_field}__in": user_ward_ids(user)})
