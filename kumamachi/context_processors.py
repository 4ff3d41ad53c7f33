"""Template context shared by every page."""

from django.http import HttpRequest
from django.urls import translate_url
from django.utils.translation import get_language


def language_switch(request: HttpRequest) -> dict:
    """The same page in the other language. The language is in the address (``/en/…``;
    Japanese has none), so the switch is a plain link: a reader needs no cookie and no
    form, and each language's page has an address of its own to share or cache."""
    other = "ja" if get_language() == "en" else "en"
    return {
        "language_switch": {"code": other, "url": translate_url(request.get_full_path(), other)}
    }
