"""Security logging: refused accesses, logins and failed logins are recorded."""

import logging

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

logger = logging.getLogger("kumamachi.security")


def _client(request) -> str:
    return request.META.get("REMOTE_ADDR", "-") if request is not None else "-"


def log_refused(request, kind: str, ident) -> None:
    logger.warning(
        "access refused user=%s kind=%s id=%s path=%s addr=%s",
        getattr(request.user, "username", "") or "anonymous",
        kind,
        ident,
        request.path,
        _client(request),
    )


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    logger.info("login user=%s addr=%s", user.get_username(), _client(request))


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    logger.info("logout user=%s addr=%s", getattr(user, "username", "-"), _client(request))


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    logger.warning(
        "login failed user=%s addr=%s", credentials.get("username", "-"), _client(request)
    )
