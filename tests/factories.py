"""factory_boy factories for the ledger. Amounts are whole yen."""

import factory

from budgets.models import Allocation, Fund, PrintedTotal, Project, StageFigure
from wards.models import FiscalYear, Stage, VisionPillar, Ward, WardYear


class WardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ward
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"ward{n}")
    name_ja = factory.Sequence(lambda n: f"第{n}区")
    name_en = factory.Sequence(lambda n: f"Ward {n}")
    kind = Ward.Kind.WARD
    position = factory.Sequence(lambda n: n + 100)


class FiscalYearFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FiscalYear
        django_get_or_create = ("year",)

    year = 2021
    published_stage = Stage.SETTLEMENT
    open_stage = None


class FundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Fund
        django_get_or_create = ("code",)

    code = "machizukuri"
    name_ja = factory.LazyAttribute(
        lambda o: {"machizukuri": "まちづくり推進経費", "fukko": "復興支援自治推進経費"}.get(
            o.code, f"経費 {o.code}"
        )
    )
    name_en = factory.LazyAttribute(lambda o: o.code)
    position = factory.LazyAttribute(lambda o: {"machizukuri": 1, "fukko": 2}.get(o.code, 9))
    capped_by_allocation = factory.LazyAttribute(lambda o: o.code == "machizukuri")


class WardYearFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WardYear

    ward = factory.SubFactory(WardFactory)
    fiscal_year = factory.SubFactory(FiscalYearFactory)
    slogan = "みんなのまち"


class VisionPillarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VisionPillar

    ward = factory.SubFactory(WardFactory)
    fiscal_year = factory.SubFactory(FiscalYearFactory)
    position = factory.Sequence(lambda n: n + 1)
    name = factory.Sequence(lambda n: f"方向性{n}")


class AllocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Allocation

    fiscal_year = factory.SubFactory(FiscalYearFactory)
    ward = factory.SubFactory(WardFactory)
    fund = factory.SubFactory(FundFactory)
    amount = 19_000_000


class PrintedTotalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PrintedTotal

    fiscal_year = factory.SubFactory(FiscalYearFactory)
    ward = factory.SubFactory(WardFactory)
    fund = factory.SubFactory(FundFactory)
    stage = Stage.INITIAL
    amount = 19_000_000


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    ward = factory.SubFactory(WardFactory)
    fiscal_year = factory.SubFactory(FiscalYearFactory)
    fund = factory.SubFactory(FundFactory)
    pillar = None
    number = factory.Sequence(lambda n: str(n + 1))
    position = factory.Sequence(lambda n: n + 1)
    name = factory.Sequence(lambda n: f"事業{n}")
    summary = "地域の交流を深める。"


class StageFigureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StageFigure

    project = factory.SubFactory(ProjectFactory)
    stage = Stage.INITIAL
    amount = 1_000_000


def project_with_figures(figures: dict, **kwargs) -> Project:
    """A project with the given {stage: yen or None} figures; missing stages not entered."""
    project = ProjectFactory(**kwargs)
    for stage, amount in figures.items():
        StageFigureFactory(project=project, stage=stage, amount=amount)
    return project


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "auth.User"
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.django.Password("Kuma-machi-2026!")


def staff_user(username: str, *, wards=(), planner: bool = False):
    """A staff account as add_staff makes it: in its role's group, member of its wards."""
    from django.contrib.auth.models import Group

    from wards.roles import PLANNER_GROUP, WARD_STAFF_GROUP, groups_ensure

    groups_ensure()
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name=PLANNER_GROUP if planner else WARD_STAFF_GROUP))
    for ward in wards:
        ward.members.add(user)
    return user
