"""The load test's ceiling: a trivial view that returns a page's bytes as they are.

``bench.load`` saves each measured page's HTML as ``<name>.html`` (and its content type
as ``<name>.type``) in the folder ``KUMAMACHI_BENCH_CEILING_DIR``. With
``KUMAMACHI_BENCH_CEILING=1``, ``kumamachi/urls.py`` serves them at
``/__bench__/ceiling/<name>/``: the same bytes through the same middleware and server,
with no query and no template, so page ÷ ceiling is what the view itself costs.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.http import Http404, HttpResponse

# Read once per worker: the files are written before the first request and never change.
_PAGES: dict[str, tuple[bytes, str]] = {}


def _page(name: str) -> tuple[bytes, str]:
    page = _PAGES.get(name)
    if page is None:
        folder = Path(os.environ.get("KUMAMACHI_BENCH_CEILING_DIR", ""))
        try:
            body = (folder / f"{name}.html").read_bytes()
        except (OSError, ValueError) as exc:
            raise Http404(name) from exc
        kind = folder / f"{name}.type"
        content_type = kind.read_text().strip() if kind.exists() else "text/html; charset=utf-8"
        page = _PAGES[name] = (body, content_type)
    return page


def view(request, name: str) -> HttpResponse:
    body, content_type = _page(name)
    return HttpResponse(body, content_type=content_type)
