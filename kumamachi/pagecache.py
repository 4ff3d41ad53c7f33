"""Cached public pages that can never show a stale figure.

A public page is cached under the ledger's content version (``wards.ContentVersion``),
which every write to a ledger model bumps inside the write's own transaction. A reader
takes the version with one indexed read before it looks in the cache, so a publication
or a correction shows on the very next request in every worker, whatever cache backend
each worker has. Only anonymous readers are served from the cache; staff always see the
page rendered for them.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable

from django.apps import apps
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest, HttpResponse
from django.utils.translation import get_language

HEADER = "X-Page-Cache"
LEDGER_APPS = ("wards", "budgets")
# A page larger than this is rendered each time rather than filling the cache.
MAX_CACHED_BYTES = 2 * 1024 * 1024


class PageStore:
    """Each worker's cached pages, least recently used first out, bounded in entries and
    bytes. A plain dict rather than Django's LocMemCache: that one pickles every value,
    which costs more than serving a large page does. No expiry is needed: the key holds
    the content version, so an old page is never asked for again and ages out."""

    def __init__(self, *, max_entries: int, max_bytes: int):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._pages: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple):
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def set(self, key: tuple, content: bytes, content_type: str) -> None:
        with self._lock:
            if key in self._pages:
                return
            self._pages[key] = (content, content_type)
            self._bytes += len(content)
            while self._pages and (
                len(self._pages) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (old, _type) = self._pages.popitem(last=False)
                self._bytes -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._pages)


store = PageStore(max_entries=settings.PAGE_CACHE_ENTRIES, max_bytes=settings.PAGE_CACHE_MAX_BYTES)


def version_current() -> int:
    """The content version: read on every cached page, so a plain cursor (the ORM's
    query building costs more than the query itself).

    When this is a request's first query on a kept connection, the read stands in for
    Django's health check (CONN_HEALTH_CHECKS), whose ``SELECT 1`` would cost a second
    round trip, as long as the read itself: if the connection has gone bad, it is closed
    and the read made once more on a new one, as the health check would."""
    checking = connection.health_check_enabled and not connection.health_check_done
    if not checking or connection.in_atomic_block:
        return _version_read()
    connection.health_check_done = True
    try:
        return _version_read()
    except (OperationalError, InterfaceError):
        connection.close()
        return _version_read()


def _version_read() -> int:
    from wards.models import ContentVersion

    with connection.cursor() as cursor:
        table = connection.ops.quote_name(ContentVersion._meta.db_table)
        cursor.execute(f"SELECT version FROM {table} WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else 0


def version_bump(**_kwargs) -> None:
    """Called on every ledger write, in the writer's transaction."""
    from wards.models import ContentVersion

    if not ContentVersion.objects.filter(pk=1).update(version=F("version") + 1):
        ContentVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def connect_signals() -> None:
    """Every ledger model's save, delete and many-to-many change bumps the version (the
    audited querysets bump it for their bulk writes)."""
    from simple_history.models import HistoricalChanges

    from wards.models import ContentVersion

    for label in LEDGER_APPS:
        for model in apps.get_app_config(label).get_models():
            # A history row is written with the row it records, which bumps already.
            if model is ContentVersion or issubclass(model, HistoricalChanges):
                continue
            uid = f"pagecache_{model._meta.label_lower}"
            post_save.connect(version_bump, sender=model, dispatch_uid=f"{uid}_save")
            post_delete.connect(version_bump, sender=model, dispatch_uid=f"{uid}_delete")
            for field in model._meta.local_many_to_many:
                m2m_changed.connect(
                    version_bump, sender=field.remote_field.through, dispatch_uid=f"{uid}_m2m"
                )


def _cacheable_request(request: HttpRequest) -> bool:
    if not settings.PAGE_CACHE or request.method not in ("GET", "HEAD"):
        return False
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return True  # no session: certainly anonymous, and no query to find out
    return not request.user.is_authenticated


def _key(request: HttpRequest, version: int) -> tuple:
    return (version, get_language(), request.get_full_path())


def cache_public_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve a public page from the cache while the ledger is unchanged."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not _cacheable_request(request):
            return view(request, *args, **kwargs)
        key = _key(request, version_current())
        cached = store.get(key)
        if cached is not None:
            content, content_type = cached
            response = HttpResponse(content, content_type=content_type)
            response[HEADER] = "hit"
            return response
        response = view(request, *args, **kwargs)
        if getattr(response, "render", None) and not response.is_rendered:
            response.render()
        if (
            response.status_code == 200
            and not response.streaming
            and not response.cookies
            # A page that asked for a CSRF token (a form) is each reader's own; the public
            # pages have none (the language switch is a link).
            and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
            and len(response.content) <= MAX_CACHED_BYTES
        ):
            store.set(key, response.content, response["Content-Type"])
            response[HEADER] = "miss"
        return response

    return wrapper
