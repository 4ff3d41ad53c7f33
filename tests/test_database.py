"""CI runs the suite twice; this makes sure the second run really is on PostgreSQL."""

import os

from django.db import connection


def test_suite_runs_on_the_database_named_by_database_url(db):
    url = os.environ.get("DATABASE_URL", "")
    expected = "postgresql" if url.startswith(("postgres://", "postgresql://")) else "sqlite"
    assert connection.vendor == expected
