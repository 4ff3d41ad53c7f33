from dataclasses import dataclass

import pytest
from django.core.management import call_command

from tests.factories import (
    AllocationFactory,
    FiscalYearFactory,
    FundFactory,
    ProjectFactory,
    StageFigureFactory,
    VisionPillarFactory,
    WardFactory,
    WardYearFactory,
    staff_user,
)
from wards.models import Stage


@pytest.fixture
def seeded(db):
    """The Kumamoto seed data, for tests of the seed data itself."""
    call_command("load_seed", verbosity=0)


@dataclass
class Office:
    """A fiscal year in progress: 北区 and 中央区 with three projects each, the initial
    budget published and the September revision open, and one account of every role."""

    year: object
    kita: object
    chuo: object
    machizukuri: object
    fukko: object
    kita_projects: list
    chuo_projects: list
    kita_staff: object
    chuo_staff: object
    planner: object
    admin: object


@pytest.fixture
def office(db):
    from django.contrib.auth.models import User

    year = FiscalYearFactory(year=2025, published_stage=Stage.INITIAL, open_stage=Stage.SEPTEMBER)
    kita = WardFactory(slug="kita", name_ja="北区", name_en="Kita Ward", position=5)
    chuo = WardFactory(slug="chuo", name_ja="中央区", name_en="Chuo Ward", position=1)
    machizukuri = FundFactory(code="machizukuri")
    fukko = FundFactory(code="fukko")
    projects = {}
    for ward in (kita, chuo):
        WardYearFactory(ward=ward, fiscal_year=year)
        AllocationFactory(ward=ward, fiscal_year=year, fund=machizukuri, amount=19_000_000)
        pillar = VisionPillarFactory(ward=ward, fiscal_year=year, position=1, name="交流の場")
        projects[ward.slug] = []
        for n, amount in enumerate((3_100_000, 617_000, 1_582_000), start=1):
            project = ProjectFactory(
                ward=ward,
                fiscal_year=year,
                fund=machizukuri,
                pillar=pillar,
                number=str(n),
                position=n,
                name=f"{ward.name_ja}事業{n}",
            )
            StageFigureFactory(project=project, stage=Stage.INITIAL, amount=amount)
            projects[ward.slug].append(project)
    return Office(
        year=year,
        kita=kita,
        chuo=chuo,
        machizukuri=machizukuri,
        fukko=fukko,
        kita_projects=projects["kita"],
        chuo_projects=projects["chuo"],
        kita_staff=staff_user("kita_staff", wards=[kita]),
        chuo_staff=staff_user("chuo_staff", wards=[chuo]),
        planner=staff_user("planner", planner=True),
        admin=User.objects.create_superuser("admin", "admin@example.jp", "Kuma-machi-2026!"),
    )


@pytest.fixture(autouse=True)
def _empty_page_cache():
    """Each test starts with an empty page cache: the database is rolled back between
    tests, so a content version can come round again with other data."""
    from kumamachi import pagecache

    pagecache.store.clear()
