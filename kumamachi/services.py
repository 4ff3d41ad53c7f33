"""Helpers shared by the apps' service functions."""

from typing import TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def validated_save(instance: M, *, exclude: list[str] | None = None) -> M:
    """Validate fields and constraints (with their Japanese messages), then save."""
    instance.full_clean(exclude=exclude)
    instance.save()
    return instance


def upsert(model: type[M], *, lookup: dict, values: dict) -> M:
    """Create or update the row matching ``lookup``; an unchanged row is not saved again,
    so running a load twice writes no history."""
    instance = model._default_manager.filter(**lookup).first()
    if instance is not None and all(getattr(instance, k) == v for k, v in values.items()):
        return instance
    instance = instance or model(**lookup)
    for name, value in values.items():
        setattr(instance, name, value)
    return validated_save(instance)


def scoped_save(*, user, instance: M, ward_id: int | None, planner_only: bool = False) -> M:
    """Save a master-data row on behalf of a user, checking the user may write that ward.

    Callers wrap it in audit_context so the history carries the user and reason.
    """
    from django.core.exceptions import PermissionDenied

    from wards.roles import user_is_planner, user_ward_ids

    if planner_only or ward_id is None:
        if not user_is_planner(user):
            raise PermissionDenied("planner only")
    elif ward_id not in user_ward_ids(user):
        raise PermissionDenied("not a member of this ward")
    return validated_save(instance)
