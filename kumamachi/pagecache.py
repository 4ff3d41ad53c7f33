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
from django.db import connection
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils.translation import get_language

# The language switch's CSRF token differs per reader: the cached copy holds this marker,
# and each answer gets the reader's own token in its place.
CSRF_PLACEHOLDER = "__kumamachi_csrf_token__"
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
        self._pages: OrderedDict[tuple, tuple[tuple[bytes, ...], str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple):
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def set(self, key: tuple, parts: tuple[bytes, ...], content_type: str) -> None:
        size = sum(len(p) for p in parts)
        with self._lock:
            if key in self._pages:
                return
            self._pages[key] = (parts, content_type)
            self._bytes += size
            while self._pages and (
                len(self._pages) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (old_parts, _type) = self._pages.popitem(last=False)
                self._bytes -= sum(len(p) for p in old_parts)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._pages)


store = PageStore(max_entries=settings.PAGE_CACHE_ENTRIES, max_bytes=settings.PAGE_CACHE_MAX_BYTES)


def version_current() -> int:
    """The content version: read on every cached page, so a plain cursor (the ORM's
    query building costs more than the query itself)."""
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
    from wards.models import ContentVersion

    for label in LEDGER_APPS:
        for model in apps.get_app_config(label).get_models():
            if model is ContentVersion:
                continue
            uid = f"pagecache_{model._meta.label_lower}"
            post_save.connect(version_bump, sender=model, dispatch_uid=f"{uid}_save")
            post_delete.connect(version_bump, sender=model, dispatch_uid=f"{uid}_delete")
            for field in model._meta.local_many_to_many:
                m2m_changed.connect(
                    version_bump, sender=field.remote_field.through, dispatch_uid=f"{uid}_m2m"
                )


def csrf_placeholder(request: HttpRequest) -> dict:
    """Context processor: a page being rendered for the cache gets the marker as its
    CSRF token (it runs after Django's own csrf processor, so it wins)."""
    if getattr(request, "_page_cache_render", False):
        return {"csrf_token": CSRF_PLACEHOLDER}
    return {}


def _cacheable_request(request: HttpRequest) -> bool:
    if not settings.PAGE_CACHE or request.method not in ("GET", "HEAD"):
        return False
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return True  # no session: certainly anonymous, and no query to find out
    return not request.user.is_authenticated


def _key(request: HttpRequest, version: int) -> tuple:
    return (version, get_language(), request.get_full_path())


def _with_token(request: HttpRequest, parts: tuple[bytes, ...]) -> bytes:
    if len(parts) == 1:
        return parts[0]
    return get_token(request).encode().join(parts)


def cache_public_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve a public page from the cache while the ledger is unchanged."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not _cacheable_request(request):
            return view(request, *args, **kwargs)
        key = _key(request, version_current())
        cached = store.get(key)
        if cached is not None:
            parts, content_type = cached
            response = HttpResponse(_with_token(request, parts), content_type=content_type)
            response[HEADER] = "hit"
            return response
        request._page_cache_render = True
        try:
            response = view(request, *args, **kwargs)
        finally:
            request._page_cache_render = False
        if getattr(response, "render", None) and not response.is_rendered:
            response.render()
        if response.streaming:
            return response
        parts = tuple(response.content.split(CSRF_PLACEHOLDER.encode()))
        if (
            response.status_code == 200
            and not response.cookies
            and len(response.content) <= MAX_CACHED_BYTES
        ):
            store.set(key, parts, response["Content-Type"])
            response[HEADER] = "miss"
        response.content = _with_token(request, parts)
        return response

    return wrapper
