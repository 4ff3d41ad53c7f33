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
