"""Staff login as an attacker and a colleague meet it: throttling per (username, address)
with a cool-off, password rules, sessions that expire, logout that ends the session, and
the log of it all (with the request id, never the password)."""

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from kumamachi.middleware import RequestIdFilter

pytestmark = pytest.mark.django_db

LOGIN = "/staff/login/"
PASSWORD = "Kuma-machi-2026!"
WRONG = "wrong-Guess-42"
ADDRESS_A, ADDRESS_B = "198.51.100.10", "203.0.113.20"


def _login(client: Client, username: str, password: str, address: str):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _fail_five_times(username: str = "kita_staff", address: str = ADDRESS_A) -> list[int]:
    return [_login(Client(), username, WRONG, address).status_code for _ in range(5)]


@pytest.fixture
def security_log(caplog):
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO, logger="kumamachi.security")
    return caplog


def _lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "kumamachi.security"]


def test_five_failures_lock_that_username_at_that_address(office):
    statuses = _fail_five_times()
    # Four answers say the password is wrong; the fifth failure locks.
    assert statuses == [200, 200, 200, 200, 429]
    client = Client()
    response = _login(client, "kita_staff", PASSWORD, ADDRESS_A)
    assert response.status_code == 429
    assert not _logged_in(client)
    page = response.content.decode()
    assert "ログインを一時的に停止しています" in page
    retry = timezone.localtime(timezone.now() + settings.AXES_COOLOFF_TIME)
    # When to try again, as a time of day and in minutes (the minute may just turn over).
    times = {retry.strftime("%H:%M"), (retry - timedelta(minutes=1)).strftime("%H:%M")}
    assert any(f"{t}以降" in page for t in times), page
    assert "約15分後" in page
    assert response["Retry-After"] == str(15 * 60)
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_the_lockout_page_is_in_english_under_en(office):
    _fail_five_times()
    response = Client().post(
        "/en" + LOGIN, {"username": "kita_staff", "password": PASSWORD}, REMOTE_ADDR=ADDRESS_A
    )
    assert response.status_code == 429
    assert 'lang="en"' in response.content.decode()


def test_an_attacker_elsewhere_cannot_lock_a_colleague_out(office):
    """The same username from another address, and another user from the locked address,
    still log in: the lock is on the pair."""
    _fail_five_times("kita_staff", ADDRESS_A)
    colleague = Client()
    response = _login(colleague, "kita_staff", PASSWORD, ADDRESS_B)
    assert response.status_code == 302 and response["Location"] == "/staff/"
    assert _logged_in(colleague)
    neighbour = Client()
    assert _login(neighbour, "chuo_staff", PASSWORD, ADDRESS_A).status_code == 302
    assert _logged_in(neighbour)
    # The colleague's success did not lift the lock at the attacker's address.
    assert _login(Client(), "kita_staff", PASSWORD, ADDRESS_A).status_code == 429


def test_after_the_cool_off_the_login_works_again_and_the_count_restarts(office):
    _fail_five_times()
    assert _login(Client(), "kita_staff", PASSWORD, ADDRESS_A).status_code == 429
    # The cool-off passes: the attempt's last failure moves back beyond it.
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    client = Client()
    assert _login(client, "kita_staff", PASSWORD, ADDRESS_A).status_code == 302
    assert _logged_in(client)
    # A success resets the count: four more failures do not lock.
    assert not AccessAttempt.objects.filter(username="kita_staff").exists()
    assert [_login(Client(), "kita_staff", WRONG, ADDRESS_A).status_code for _ in range(4)] == [
        200
    ] * 4


def test_fewer_failures_than_the_limit_lock_nothing(office):
    for _ in range(4):
        assert _login(Client(), "kita_staff", WRONG, ADDRESS_A).status_code == 200
    client = Client()
    assert _login(client, "kita_staff", PASSWORD, ADDRESS_A).status_code == 302


def test_logins_failures_and_lockouts_are_logged_without_the_password(office, security_log):
    ok = _login(Client(), "chuo_staff", PASSWORD, ADDRESS_B)
    failures = [_login(Client(), "kita_staff", WRONG, ADDRESS_A) for _ in range(5)]
    lines = _lines(security_log)
    messages = [r.getMessage() for r in lines]
    assert messages[0] == f"login user=chuo_staff addr={ADDRESS_B}"
    assert lines[0].request_id == ok["X-Request-ID"]
    failed = [r for r in lines if r.getMessage().startswith("login failed")]
    assert [r.getMessage() for r in failed] == [
        f"login failed user=kita_staff addr={ADDRESS_A}"
    ] * 5
    assert [r.request_id for r in failed] == [f["X-Request-ID"] for f in failures]
    locked = [r for r in lines if r.getMessage().startswith("login locked out")]
    assert [r.getMessage() for r in locked] == [
        f"login locked out user=kita_staff addr={ADDRESS_A}"
    ]
    assert locked[0].request_id == failures[-1]["X-Request-ID"]
    assert all(r.levelno == logging.WARNING for r in failed + locked)
    # No password in any log line, of ours or of django-axes, nor in axes' records.
    assert WRONG not in security_log.text and PASSWORD not in security_log.text
    for attempt in AccessAttempt.objects.all():
        assert WRONG not in attempt.post_data and PASSWORD not in attempt.post_data


def test_logout_is_logged(office, security_log):
    client = Client()
    _login(client, "kita_staff", PASSWORD, ADDRESS_A)
    client.post("/staff/logout/", REMOTE_ADDR=ADDRESS_A)
    assert f"logout user=kita_staff addr={ADDRESS_A}" in [
        r.getMessage() for r in _lines(security_log)
    ]


# --- Passwords and sessions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    ["qwertyuiop", "12345678901", "password123", "kita_staff1", "Ab1!"],
    ids=["common-word", "numeric", "common", "like-username", "short"],
)
def test_add_staff_refuses_a_weak_password_and_creates_nothing(office, monkeypatch, weak):
    from django.contrib.auth.models import User

    monkeypatch.setenv("NEW_STAFF_PASSWORD", weak)
    with pytest.raises(CommandError):
        call_command(
            "add_staff", "kita_staff1", "--ward", "kita", "--password-env", "NEW_STAFF_PASSWORD"
        )
    assert not User.objects.filter(username="kita_staff1").exists()


def test_the_password_change_form_refuses_a_weak_password_in_japanese(office):
    form = SetPasswordForm(
        office.kita_staff, {"new_password1": "12345678", "new_password2": "12345678"}
    )
    assert not form.is_valid()
    errors = " ".join(form.errors["new_password2"])
    assert "パスワード" in errors
    office.kita_staff.refresh_from_db()
    assert office.kita_staff.check_password(PASSWORD)


def test_a_session_ends_after_the_working_day(office):
    client = Client()
    _login(client, "kita_staff", PASSWORD, ADDRESS_A)
    session = Session.objects.get(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)
    lifetime = session.expire_date - timezone.now()
    assert timedelta(hours=7) < lifetime <= timedelta(hours=8)
    assert client.get("/staff/").status_code == 200
    # The working day is over.
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/staff/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_logout_ends_the_session_so_a_copied_cookie_no_longer_works(office):
    client = Client()
    _login(client, "kita_staff", PASSWORD, ADDRESS_A)
    stolen = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.get("/staff/").status_code == 200
    assert client.post("/staff/logout/").status_code == 302
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = stolen
    response = replay.get("/staff/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert not Session.objects.filter(session_key=stolen).exists()


def test_the_session_cookie_is_not_readable_by_script(office):
    client = Client()
    _login(client, "kita_staff", PASSWORD, ADDRESS_A)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    # Ends with the browser (no Max-Age) and on the server after SESSION_COOKIE_AGE.
    assert not cookie["max-age"]
