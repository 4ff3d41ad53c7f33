"""Security logging: refused accesses, logins, failed logins and lockouts are recorded, each
line with the request id (kumamachi.middleware). And the client's address, one rule for the
log and for the login throttle."""

import ipaddress
import logging

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

logger = logging.getLogger("kumamachi.security")


def client_address(request) -> str | None:
    """REMOTE_ADDR, or behind DJANGO_PROXY_COUNT trusted proxies the address the outermost
    of them saw: each proxy appends the address it was reached from to X-Forwarded-For, so
    only the last PROXY_COUNT entries are not the client's own (forgeable) words."""
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR")
    count = settings.PROXY_COUNT
    if count > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= count:
            address = forwarded[-count]
    try:
        return str(ipaddress.ip_address(address))
    except (TypeError, ValueError):
        return None


def _client(request) -> str:
    return client_address(request) or "-"


def _text(value, limit: int = 150) -> str:
    """A typed username or a path as one log line can hold it: a newline or other control
    character in it cannot start a forged line."""
    text = str(value) if value else "-"
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:limit])


def log_refused(request, kind: str, ident) -> None:
    logger.warning(
        "access refused user=%s kind=%s id=%s path=%s addr=%s",
        getattr(request.user, "username", "") or "anonymous",
        kind,
        _text(ident),
        _text(request.path),
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
        "login failed user=%s addr=%s", _text(credentials.get("username")), _client(request)
    )


@receiver(user_locked_out)
def _locked_out(sender, request, username, ip_address, **kwargs):
    logger.warning("login locked out user=%s addr=%s", _text(username), ip_address or "-")
