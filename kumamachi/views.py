"""Site-wide views: the health check, the error pages and the login lockout page."""

import logging
import sys

from axes.helpers import get_cool_off
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils import timezone
from django.views.decorators.http import require_safe

from kumamachi.middleware import request_id_current
from kumamachi.pagecache import version_current

logger = logging.getLogger("kumamachi.health")


@require_safe
def healthz(request):
    """200 when the database answers and the ledger can be read, 503 otherwise. For the
    proxy or the load balancer: never cached, no session, no cookie."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        version_current()
    except DatabaseError as exc:
        logger.error("health check failed: database unavailable (%s)", type(exc).__name__)
        response = JsonResponse({"status": "unavailable", "database": "down"}, status=503)
    else:
        response = JsonResponse({"status": "ok", "database": "ok"})
    response["Cache-Control"] = "no-store"
    return response


def server_error(request):
    """The 500 page with the request id the citizen can quote; the traceback is only in the
    log (django.request, same id). No context processors: they may need the database that
    just failed.

    A lost database (Django reconnects on the next request) answers 503 with Retry-After
    instead: the request can simply be tried again, and a proxy knows it."""
    request_id = getattr(request, "request_id", None) or request_id_current()
    # Django calls this handler inside its ``except`` block: the exception is at hand.
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        template = loader.get_template("503.html")
        response = HttpResponse(template.render({"request_id": request_id}), status=503)
        response["Retry-After"] = "30"
        return response
    template = loader.get_template("500.html")
    return HttpResponseServerError(template.render({"request_id": request_id}))


def csrf_failure(request, reason=""):
    """A form sent without a valid token (an expired page, usually): say what to do."""
    return render(request, "403_csrf.html", status=403)


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer once a (username, address) pair has failed too often: 429 and the
    time the login can be tried again."""
    cool_off = get_cool_off(request)
    retry_at = timezone.localtime(timezone.now() + cool_off) if cool_off else None
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    response = render(
        request,
        "staff/locked_out.html",
        {"retry_at": retry_at, "minutes": minutes},
        status=429,
    )
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
