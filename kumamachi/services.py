"""Helpers shared by the apps' service functions."""

from django.db import models


def validated_save(instance: models.Model, *, exclude: list[str] | None = None) -> models.Model:
    """Validate fields and constraints (with their Japanese messages), then save."""
    instance.full_clean(exclude=exclude)
    instance.save()
    return instance
