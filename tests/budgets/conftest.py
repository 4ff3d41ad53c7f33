import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The factories set passwords; the default hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def kita_client(client, office):
    """北区's staff, logged in."""
    client.force_login(office.kita_staff)
    return client
