"""The audit trail: who changed what and why, whatever path the write took.

Services wrap their writes in ``audit_context(user=..., reason=...)``. Audited models pick
the user and reason up on every save and delete, and their querysets write history for
bulk creates, bulk updates and ``update()`` too, so no write path skips the history.
"""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import models, transaction
from django.db.models import F
from simple_history.models import HistoricalRecords

from kumamachi.pagecache import version_bump

_actor: contextvars.ContextVar[tuple[object | None, str]] = contextvars.ContextVar(
    "audit_actor", default=(None, "")
)


@contextmanager
def audit_context(*, user, reason: str) -> Iterator[None]:
    user = user if getattr(user, "is_authenticated", False) else None
    token = _actor.set((user, reason or ""))
    try:
        yield
    finally:
        _actor.reset(token)


def current_user():
    return _actor.get()[0]


def current_reason() -> str:
    return _actor.get()[1]


def _history_user(instance=None, request=None, **kwargs):
    user = getattr(instance, "_history_user", None) or current_user()
    if user is None and request is not None and request.user.is_authenticated:
        user = request.user
    return user


def audit_history(**kwargs) -> HistoricalRecords:
    """HistoricalRecords that know the acting user outside of a request too."""
    return HistoricalRecords(get_user=_history_user, **kwargs)


class AuditedQuerySet(models.QuerySet):
    """Bulk writes record history like single saves do."""

    def _history(self, objs, *, update: bool) -> None:
        self.model.history.bulk_history_create(
            objs,
            update=update,
            default_user=current_user(),
            default_change_reason=current_reason(),
        )

    def bulk_create(self, objs, *args, **kwargs):
        if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            # Which rows were inserted, updated or skipped cannot be told reliably (no ids
            # come back for skipped rows, and an updated row is not an insert), so the
            # history could not be right: refused rather than recorded wrongly.
            raise TypeError(
                f"{self.model.__name__}: bulk_create(ignore_conflicts/update_conflicts) would "
                "record the history wrongly; save the rows one by one (kumamachi.services.upsert)."
            )
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            # Recorded as stored (defaults and database conversions applied), like update().
            pks = [obj.pk for obj in created if obj.pk is not None]
            self._history(list(self.model._default_manager.filter(pk__in=pks)), update=False)
            version_bump()
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        # Django's bulk_update writes through update() below, which records each row it
        # changed (as stored); recording ``objs`` here as well would record every row twice.
        return super().bulk_update(objs, fields, *args, **kwargs)

    def delete(self):
        # One by one, so each deletion carries the user and reason to history.
        if self.query.is_sliced:
            raise TypeError("Cannot use 'limit' or 'offset' with delete().")
        deleted, per_model = 0, Counter()
        with transaction.atomic(using=self.db):
            # Ordered by the key alone, as Django's delete() drops the ordering: a default
            # ordering over a nullable relation would make FOR UPDATE fail on PostgreSQL.
            for obj in self.order_by("pk"):
                count, counts = obj.delete()
                deleted += count
                per_model.update(counts)
        return deleted, dict(per_model)

    def update(self, **kwargs):
        # A row changed in bulk gets a new version like a saved one does, so a form or sheet
        # opened before it is refused instead of silently writing over it.
        meta = getattr(self.model, "_concurrencymeta", None)
        if meta is not None and meta.field.attname not in kwargs:
            kwargs[meta.field.attname] = F(meta.field.attname) + 1
        with transaction.atomic(using=self.db):
            # Without the default ordering, as Django's update() (see delete()).
            pks = list(self.order_by().values_list("pk", flat=True))
            count = super().update(**kwargs)
            self._history(list(self.model._default_manager.filter(pk__in=pks)), update=True)
            version_bump()
        return count


class AuditedModel(models.Model):
    """A model whose every save and delete carries the acting user and reason to history."""

    objects = AuditedQuerySet.as_manager()

    class Meta:
        abstract = True
        # Django writes through the base manager in places (a reverse relation's
        # ``add(bulk=True)``, combined querysets): the audited one, so those record history
        # too. The models inherit it without a migration (it is not one of their options).
        base_manager_name = "objects"

    def save(self, *args, **kwargs):
        stamped = self._stamp_audit()
        try:
            super().save(*args, **kwargs)
        finally:
            self._clear_stamp(stamped)

    def delete(self, *args, **kwargs):
        stamped = self._stamp_audit()
        try:
            return super().delete(*args, **kwargs)
        finally:
            self._clear_stamp(stamped)

    def _stamp_audit(self) -> list[str]:
        """Stamp the context's reason and user unless the caller set its own; returns the
        attributes stamped."""
        stamped = []
        if not getattr(self, "_change_reason", None):
            self._change_reason = current_reason()
            stamped.append("_change_reason")
        if getattr(self, "_history_user", None) is None and current_user() is not None:
            self._history_user = current_user()
            stamped.append("_history_user")
        return stamped

    def _clear_stamp(self, stamped: list[str]) -> None:
        # The stamp is for this write only: a later save of the same instance in another
        # context must record that context's user and reason, not this one's.
        for name in stamped:
            self.__dict__.pop(name, None)
