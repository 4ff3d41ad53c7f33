import pytest
from django.core.management import call_command


@pytest.fixture
def seeded(db):
    """The Kumamoto seed data, for tests of the seed data itself."""
    call_command("load_seed", verbosity=0)
