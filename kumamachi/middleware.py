"""Japanese first: the interface is Japanese unless the address asks for English."""

from django.conf import settings
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
