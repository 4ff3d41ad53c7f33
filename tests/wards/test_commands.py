"""add_staff: create or update a staff account as ward staff of some wards, or a planner."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tests.factories import WardFactory
from wards.roles import PLANNER_GROUP, WARD_STAFF_GROUP

pytestmark = pytest.mark.django_db

PASSWORD = "Kuma-machi-2026!"
OTHER_PASSWORD = "Higo-no-kuni-1871!"


@pytest.fixture
def wards():
    return {
        "kita": WardFactory(slug="kita", name_ja="北区", name_en="Kita Ward", position=5),
        "chuo": WardFactory(slug="chuo", name_ja="中央区", name_en="Chuo Ward", position=1),
    }


@pytest.fixture
def password_env(monkeypatch):
    """Put a password in KUMA_PASSWORD and return the arguments that read it."""

    def set_password(value=PASSWORD):
        monkeypatch.setenv("KUMA_PASSWORD", value)
        return ["--password-env", "KUMA_PASSWORD"]

    return set_password


def add_staff(*args) -> str:
    out = StringIO()
    call_command("add_staff", *args, stdout=out)
    return out.getvalue()


def _groups(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def _wards(user) -> set[str]:
    return set(user.member_wards.values_list("slug", flat=True))


def test_creates_ward_staff_of_two_wards(wards, password_env):
    out = add_staff("tanaka", "--ward", "kita", "--ward", "chuo", *password_env())
    assert "Created tanaka: ward staff of kita, chuo" in out
    assert PASSWORD not in out
    user = User.objects.get(username="tanaka")
    assert user.is_staff and user.is_active and not user.is_superuser
    assert user.check_password(PASSWORD)
    assert _groups(user) == {WARD_STAFF_GROUP}
    assert _wards(user) == {"kita", "chuo"}


def test_update_to_planner_switches_groups_and_drops_wards(wards, password_env):
    add_staff("tanaka", "--ward", "kita", "--ward", "chuo", *password_env())
    out = add_staff("tanaka", "--planner", "--keep-password")
    assert "Updated tanaka: planner" in out
    user = User.objects.get(username="tanaka")
    assert _groups(user) == {PLANNER_GROUP}
    assert _wards(user) == set()
    assert user.check_password(PASSWORD)
    assert User.objects.filter(username="tanaka").count() == 1


def test_update_replaces_wards_and_password(wards, password_env):
    add_staff("tanaka", "--planner", *password_env())
    add_staff("tanaka", "--ward", "chuo", *password_env(OTHER_PASSWORD))
    user = User.objects.get(username="tanaka")
    assert _groups(user) == {WARD_STAFF_GROUP}
    assert _wards(user) == {"chuo"}
    assert user.check_password(OTHER_PASSWORD)
    add_staff("tanaka", "--ward", "kita", "--keep-password")
    assert _wards(user) == {"kita"}
    user.refresh_from_db()
    assert user.check_password(OTHER_PASSWORD)


def test_update_reactivates_and_makes_staff(wards, password_env):
    User.objects.create_user("tanaka", password=PASSWORD, is_active=False, is_staff=False)
    add_staff("tanaka", "--ward", "kita", "--keep-password")
    user = User.objects.get(username="tanaka")
    assert user.is_active and user.is_staff
    assert user.check_password(PASSWORD)


def test_unknown_ward_names_the_known_ones(wards, password_env):
    with pytest.raises(CommandError) as error:
        add_staff("tanaka", "--ward", "kita", "--ward", "nishi", *password_env())
    message = str(error.value)
    assert "nishi" in message
    assert "kita" in message and "chuo" in message
    assert not User.objects.filter(username="tanaka").exists()


def test_unknown_ward_when_there_are_none(db, password_env):
    with pytest.raises(CommandError, match=r"\(none\)"):
        add_staff("tanaka", "--ward", "kita", *password_env())


def test_a_role_is_required_and_only_one(wards, password_env):
    with pytest.raises(CommandError):
        add_staff("tanaka", *password_env())
    with pytest.raises(CommandError):
        add_staff("tanaka", "--ward", "kita", "--planner", *password_env())
    assert not User.objects.filter(username="tanaka").exists()


# Common, too short, all digits, too like the username.
@pytest.mark.parametrize("weak", ["password", "kuma", "83719204655", "tanaka2026"])
def test_weak_password_rejected_by_the_validators(wards, password_env, weak):
    with pytest.raises(CommandError) as error:
        add_staff("tanaka", "--ward", "kita", *password_env(weak))
    assert str(error.value)
    assert not User.objects.filter(username="tanaka").exists()


def test_weak_password_leaves_an_existing_account_as_it_was(wards, password_env):
    add_staff("tanaka", "--ward", "kita", *password_env())
    with pytest.raises(CommandError):
        add_staff("tanaka", "--planner", *password_env("password"))
    user = User.objects.get(username="tanaka")
    assert user.check_password(PASSWORD)
    assert _groups(user) == {WARD_STAFF_GROUP}
    assert _wards(user) == {"kita"}


@pytest.mark.parametrize("value", ["", None])
def test_empty_or_missing_env_var_rejected(wards, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("KUMA_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("KUMA_PASSWORD", value)
    with pytest.raises(CommandError, match="KUMA_PASSWORD"):
        add_staff("tanaka", "--ward", "kita", "--password-env", "KUMA_PASSWORD")
    assert not User.objects.filter(username="tanaka").exists()


def test_keep_password_on_a_new_account_still_needs_one(wards, monkeypatch):
    monkeypatch.delenv("KUMA_PASSWORD", raising=False)
    with pytest.raises(CommandError):
        add_staff("tanaka", "--ward", "kita", "--keep-password", "--password-env", "KUMA_PASSWORD")
    assert not User.objects.filter(username="tanaka").exists()


def test_password_at_the_prompt(wards, monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    prompts = []

    def fake_getpass(prompt="Password: "):
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    out = add_staff("tanaka", "--ward", "kita")
    assert "Created tanaka" in out
    assert len(prompts) == 2
    assert User.objects.get(username="tanaka").check_password(PASSWORD)


def test_prompt_answers_must_match(wards, monkeypatch):
    answers = iter([PASSWORD, OTHER_PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(CommandError, match="do not match"):
        add_staff("tanaka", "--ward", "kita")
    assert not User.objects.filter(username="tanaka").exists()


def test_prompt_password_checked_by_the_validators(wards, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "12345678")
    with pytest.raises(CommandError):
        add_staff("tanaka", "--ward", "kita")
    assert not User.objects.filter(username="tanaka").exists()


def test_keep_password_does_not_prompt(wards, password_env, monkeypatch):
    add_staff("tanaka", "--ward", "kita", *password_env())

    def no_prompt(prompt=""):
        raise AssertionError("asked for a password")

    monkeypatch.setattr("getpass.getpass", no_prompt)
    add_staff("tanaka", "--ward", "chuo", "--keep-password")


def test_created_staff_logs_in_and_reaches_only_their_wards(client, wards, password_env):
    from wards.models import FiscalYear, Stage

    FiscalYear.objects.create(year=2025, published_stage=Stage.INITIAL, open_stage=Stage.SEPTEMBER)
    add_staff("tanaka", "--ward", "kita", *password_env())
    response = client.post("/staff/login/", {"username": "tanaka", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200
    assert client.get("/staff/2025/kita/").status_code == 200
    assert client.get("/staff/2025/chuo/").status_code == 403
    assert client.get("/staff/2025/review/").status_code == 403


def test_created_planner_logs_in(client, wards, password_env):
    from wards.models import FiscalYear

    FiscalYear.objects.create(year=2025)
    add_staff("sato", "--planner", *password_env())
    response = client.post("/staff/login/", {"username": "sato", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/staff/"
    assert client.get("/staff/2025/review/").status_code == 200
    assert client.get("/staff/2025/chuo/").status_code == 200


def test_wrong_password_does_not_log_in(client, wards, password_env):
    add_staff("tanaka", "--ward", "kita", *password_env())
    response = client.post("/staff/login/", {"username": "tanaka", "password": OTHER_PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
