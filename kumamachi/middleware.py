"""Japanese first: the interface is Japanese unless the address asks for English. And the
request id that ties every log line and error page to one request."""

import logging
import re
import uuid
from contextvars import ContextVar

from django.conf import settings
from django.core.signals import request_finished
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class JapaneseFirstLocaleMiddleware(LocaleMiddleware):
    """The language is in the address: ``/en/…`` is English, every other address Japanese.
    Neither the browser's Accept-Language nor a cookie switches a Japanese municipal site to
    English, so one address always shows one page, to every reader and every cache."""

    def process_request(self, request):
        code = translation.get_language_from_path(request.path_info) or settings.LANGUAGE_CODE
        translation.activate(code)
        request.LANGUAGE_CODE = translation.get_language()


# --- Request id -----------------------------------------------------------------------------------

# A proxy's id is kept only when it cannot forge a log line: short, no spaces or newlines.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def request_id_current() -> str:
    """The id of the request being served in this thread, "-" outside a request."""
    return _request_id.get()


class RequestIdMiddleware:
    """Gives each request an id (the proxy's X-Request-ID when sane, else a new one), for
    every log line of the request and for the citizen to quote from an error page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        _request_id.set(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def _request_id_clear(**_kwargs) -> None:
    # Cleared when the response is closed, not when this middleware returns: Django logs a
    # 4xx answer ("Not Found: …") after the middleware chain, and that line needs the id too.
    _request_id.set("-")


request_finished.connect(_request_id_clear, dispatch_uid="kumamachi_request_id_clear")


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record, for the formatter's ``%(request_id)s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True
