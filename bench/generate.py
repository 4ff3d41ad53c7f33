"""Realistic synthetic data at a chosen scale, written in bulk.

``generate(wards=175, years=20, projects=40)`` adds, beside the seed data (which must be
loaded first: the funds come from it):

- ``wards`` synthetic wards (slugs ``w001``…, positions after the seed's, Japanese names);
- ``years`` fiscal years ending in 2020 (2001–2020 for 20), each published through
  settlement except the latest, which has its initial budget published and September open
  for entry (half of its projects already have a September draft);
- for every ward-year: the ward-year row (slogan, source document), the allocations
  (まちづくり推進経費 19,000千円; 復興支援自治推進経費 4,000千円 from 2016, the year of the
  earthquake), and the city totals of each year; 3–5 vision pillars;
- ``projects`` projects per ward-year with Japanese-looking names and summaries, grouped
  by pillar, about 85% carried on from the previous year (same name, ``previous`` linked,
  the rest new with ``is_new``), one in ten on the recovery fund from 2016;
- a figure for every published stage: amounts in whole thousand yen (some to the yen),
  revised at September and February with a reason, a settlement at or below the February
  budget; about 3% of projects have no budget (―) and about 1% of figures are not
  entered (未入力).

Everything is one transaction of bulk inserts (``batch_size`` rows a statement at most).
**History is skipped for the generated rows**: they are inserted through a plain
``django.db.models.QuerySet(model=...)``, not the audited managers, whose ``bulk_create``
would write a history row for each (kumamachi.audit.AuditedQuerySet). The seed rows keep
their history. On PostgreSQL the tables are VACUUMed and ANALYZEd afterwards, as
autovacuum does to a live database: statistics for the planner, and the visibility map
without which no index-only scan is possible (a count of 140,000 projects takes 2 × longer).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import connection, models, transaction
from django.db.models import Max

from bench import SCALES  # noqa: F401 - re-exported for the commands
from budgets.models import Allocation, Fund, Project, StageFigure
from wards.models import FiscalYear, Stage, VisionPillar, Ward, WardYear, wareki_year

LAST_YEAR = 2020  # the seed's years are 2021 and 2024: the generated ones end before them
RECOVERY_FROM = 2016  # the Kumamoto earthquake: the recovery fund starts
DEFAULT_BATCH = 2000

MACHIZUKURI_YEN = 19_000_000
RECOVERY_YEN = 4_000_000
P_CONTINUE = 0.85
P_NO_BUDGET = 0.03
P_NOT_ENTERED = 0.01
P_DRAFT = 0.5  # projects of the open year with a September draft already

_PLACES = (  # noqa: SIM905 - words, one space apart
    "青葉 桜木 若葉 緑ヶ丘 松原 竹迫 梅林 城山 白川 清水 泉ヶ丘 花園 朝日 託麻 龍田 水前寺 "
    "健軍 力合 飽田 天明 城南 植木 河内 芳野 富合 小島 高平 黒髪 楠野 春日"
).split()
_QUARTERS = (  # noqa: SIM905 - words, one space apart
    "東 西 南 北 中 台 原 野"
).split()
_THEMES = (  # noqa: SIM905 - words, one space apart
    "ふれあい交流 子ども見守り 防災訓練 花いっぱい 健康づくり 魅力発信 高齢者サロン 環境美化 "
    "伝統文化継承 スポーツ交流 まちあるき 子育て応援 防犯パトロール 地産地消 河川清掃 音楽祭 "
    "文化祭 地域食堂 歴史探訪 ボランティア育成 緑化推進 読み聞かせ 多文化共生 夏まつり"
).split()
_KINDS = (  # noqa: SIM905 - words, one space apart
    "事業 プロジェクト 推進事業 支援事業 啓発事業 モデル事業 活動 講座"
).split()
_PILLARS = (
    "誰もが安心して暮らせる地域づくり",
    "子どもと若者が輝くまちづくり",
    "地域の魅力を生かした交流の促進",
    "健康で生きがいのある暮らしの実現",
    "災害に強い地域づくり",
    "豊かな自然と環境を守る取り組み",
    "歴史と文化を次世代へつなぐ",
    "多世代がつながる居場所づくり",
)
_SLOGANS = (
    "人と人がつながり、笑顔あふれる{ward}",
    "自然と歴史を大切にし、安心して暮らせる{ward}",
    "みんなで支え合い、未来へつなぐ{ward}",
    "元気な声が響く、住みたくなる{ward}",
)
_GOALS = (
    "地域住民の交流と絆を深める",
    "子どもたちが安心して過ごせる環境をつくる",
    "地域の防災力を高める",
    "高齢者の健康と生きがいを支える",
    "地域の魅力を区内外に広く発信する",
    "良好な生活環境を保つ",
)
_ACTIVITIES = (
    "住民参加のイベント",
    "地域団体と連携した講座",
    "校区ごとの意見交換会",
    "ボランティアによる活動",
    "専門家を招いた研修会",
    "パンフレットの作成と配布",
)
_REASONS = (
    "参加者数の見込みの変更による補正",
    "事業内容の見直しによる減額",
    "入札残による減額",
    "雨天中止のため減額",
    "追加実施による増額",
    "実績の確定による精査",
)


def _circled(n: int) -> str:
    """①…⑳, ㉑…㉟, ㊱…㊿ as the printed tables number projects; digits after 50."""
    if 1 <= n <= 20:
        return chr(0x2460 + n - 1)
    if 21 <= n <= 35:
        return chr(0x3251 + n - 21)
    if 36 <= n <= 50:
        return chr(0x32B1 + n - 36)
    return str(n)


def _thousands(yen: float) -> int:
    return max(0, int(round(yen / 1000)) * 1000)


@dataclass
class Counts:
    wards: int = 0
    years: int = 0
    ward_years: int = 0
    allocations: int = 0
    pillars: int = 0
    projects: int = 0
    figures: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "wards": self.wards,
            "years": self.years,
            "ward_years": self.ward_years,
            "allocations": self.allocations,
            "pillars": self.pillars,
            "projects": self.projects,
            "figures": self.figures,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


class GenerateError(Exception):
    pass


def _bulk(model: type[models.Model], objs: Sequence[models.Model], batch_size: int) -> list:
    """bulk_create without the audited managers: no history rows for generated data."""
    return models.QuerySet(model=model).bulk_create(objs, batch_size=batch_size)


def _ward_names(count: int, taken: set[str]) -> list[tuple[str, str]]:
    """(name_ja, short name for project names) for ``count`` new wards."""
    names = []
    n = 0
    while len(names) < count:
        place = _PLACES[n % len(_PLACES)]
        quarter = _QUARTERS[(n // len(_PLACES)) % len(_QUARTERS)]
        lap = n // (len(_PLACES) * len(_QUARTERS))
        short = f"{place}{quarter}" + (str(lap + 1) if lap else "")
        n += 1
        if f"{short}区" not in taken:
            names.append((f"{short}区", short))
    return names


def _fresh_name(rng: random.Random, prefix: str, used: set[str]) -> str:
    for _attempt in range(50):
        name = f"{prefix}{rng.choice(_THEMES)}{rng.choice(_KINDS)}"
        if name not in used:
            return name
    n = 2
    while f"{prefix}地域活動その{n}" in used:
        n += 1
    return f"{prefix}地域活動その{n}"


def _summary(rng: random.Random, name: str) -> str:
    return (
        f"{rng.choice(_GOALS)}ため、{name.rstrip('事業')}として"
        f"{rng.choice(_ACTIVITIES)}を年{rng.randint(2, 12)}回実施する。"
    )


def _stage_amounts(rng: random.Random, initial: int) -> dict[Stage, int]:
    """A project's amounts through the year: revised in September and February, the
    settlement at or below the February budget (often to the yen)."""
    september = initial if rng.random() < 0.7 else _thousands(initial * rng.uniform(0.7, 1.05))
    february = september if rng.random() < 0.6 else _thousands(september * rng.uniform(0.5, 1.0))
    settlement = february if rng.random() < 0.3 else int(february * rng.uniform(0.6, 1.0))
    return {
        Stage.INITIAL: initial,
        Stage.SEPTEMBER: september,
        Stage.FEBRUARY: february,
        Stage.SETTLEMENT: settlement,
    }


def generate(
    *,
    wards: int,
    years: int,
    projects: int,
    seed: int = 20160414,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[str], None] | None = None,
) -> Counts:
    """Add the synthetic data (see the module docstring); returns what was written."""
    if wards < 1 or years < 1 or projects < 1:
        raise GenerateError("--wards, --years and --projects must be at least 1.")
    first_year = LAST_YEAR - years + 1
    if first_year < 1989:
        raise GenerateError(f"At most {LAST_YEAR - 1989 + 1} years (the first would be 1989).")
    say = progress or (lambda message: None)
    rng = random.Random(seed)
    counts = Counts()
    started = time.perf_counter()

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        counts.seconds[name] = counts.seconds.get(name, 0.0) + now - since
        return now

    funds = list(Fund.objects.order_by("position"))
    if not funds:
        raise GenerateError("No funds: load the seed data first (python manage.py load_seed).")
    machizukuri, recovery = funds[0], (funds[1] if len(funds) > 1 else None)
    if Ward.objects.filter(slug="w001").exists():
        raise GenerateError("Synthetic data is already there (ward w001): use a fresh database.")
    clash = list(
        FiscalYear.objects.filter(year__gte=first_year, year__lte=LAST_YEAR).values_list(
            "year", flat=True
        )
    )
    if clash:
        raise GenerateError(f"Fiscal years {clash} already exist: use a fresh database.")

    with transaction.atomic():
        t = time.perf_counter()
        position = (Ward.objects.aggregate(m=Max("position"))["m"] or 0) + 1
        taken = set(Ward.objects.values_list("name_ja", flat=True))
        names = _ward_names(wards, taken)
        ward_objs = _bulk(
            Ward,
            [
                Ward(
                    slug=f"w{i + 1:03d}",
                    name_ja=name,
                    name_en=f"Synthetic Ward {i + 1:03d}",
                    kind=Ward.Kind.WARD,
                    position=position + i,
                )
                for i, (name, _short) in enumerate(names)
            ],
            batch_size,
        )
        shorts = [short for _name, short in names]
        counts.wards = len(ward_objs)

        year_list = list(range(first_year, LAST_YEAR + 1))
        year_objs = {
            y: FiscalYear(
                year=y,
                published_stage=Stage.SETTLEMENT if y < LAST_YEAR else Stage.INITIAL,
                open_stage=None if y < LAST_YEAR else Stage.SEPTEMBER,
            )
            for y in year_list
        }
        _bulk(FiscalYear, list(year_objs.values()), batch_size)
        counts.years = len(year_objs)

        ward_years, allocations = [], []
        for y in year_list:
            recovery_year = recovery is not None and y >= RECOVERY_FROM
            for ward in ward_objs:
                ward_years.append(
                    WardYear(
                        ward=ward,
                        fiscal_year=year_objs[y],
                        slogan=rng.choice(_SLOGANS).format(ward=ward.name_ja),
                        source_document=(
                            f"{wareki_year(y)} {ward.name_ja}まちづくりの取り組み（合成データ）"
                        ),
                        projects_complete=True,
                    )
                )
                allocations.append(
                    Allocation(
                        fiscal_year=year_objs[y],
                        ward=ward,
                        fund=machizukuri,
                        amount=MACHIZUKURI_YEN,
                    )
                )
                if recovery_year:
                    allocations.append(
                        Allocation(
                            fiscal_year=year_objs[y], ward=ward, fund=recovery, amount=RECOVERY_YEN
                        )
                    )
            allocations.append(
                Allocation(
                    fiscal_year=year_objs[y],
                    ward=None,
                    fund=machizukuri,
                    amount=MACHIZUKURI_YEN * len(ward_objs),
                )
            )
            if recovery_year:
                allocations.append(
                    Allocation(
                        fiscal_year=year_objs[y],
                        ward=None,
                        fund=recovery,
                        amount=RECOVERY_YEN * len(ward_objs),
                    )
                )
        _bulk(WardYear, ward_years, batch_size)
        _bulk(Allocation, allocations, batch_size)
        counts.ward_years, counts.allocations = len(ward_years), len(allocations)
        t = lap("wards, years, allocations", t)

        pillar_objs = []
        pillar_index: dict[tuple[int, int], list[VisionPillar]] = {}
        for y in year_list:
            for w, ward in enumerate(ward_objs):
                chosen = sorted(rng.sample(range(len(_PILLARS)), rng.randint(3, 5)))
                row = [
                    VisionPillar(
                        ward=ward,
                        fiscal_year=year_objs[y],
                        position=p + 1,
                        name=_PILLARS[index],
                        description=f"{_PILLARS[index]}に向けて、地域の皆さんと取り組みます。",
                    )
                    for p, index in enumerate(chosen)
                ]
                pillar_index[(y, w)] = row
                pillar_objs.extend(row)
        _bulk(VisionPillar, pillar_objs, batch_size)
        if any(p.pk is None for p in pillar_objs):
            raise GenerateError("This database does not return the ids of bulk inserts.")
        counts.pillars = len(pillar_objs)
        t = lap("pillars", t)

        # Slot s of ward w: its current name, fund and the id of last year's project.
        slot_name: dict[tuple[int, int], str] = {}
        slot_fund: dict[tuple[int, int], Fund] = {}
        slot_id: dict[tuple[int, int], int] = {}
        for y in year_list:
            latest = y == LAST_YEAR
            year_projects: list[Project] = []
            plans: list[dict] = []
            for w, ward in enumerate(ward_objs):
                pillars = pillar_index[(y, w)]
                used: set[str] = set()
                slots = []
                for s in range(projects):
                    fund = (
                        recovery
                        if recovery is not None and y >= RECOVERY_FROM and s % 10 == 9
                        else machizukuri
                    )
                    carry = (
                        (w, s) in slot_name
                        and slot_fund[(w, s)] == fund
                        and rng.random() < P_CONTINUE
                    )
                    slots.append((s, fund, carry))
                    if carry:
                        used.add(slot_name[(w, s)])
                weights = [rng.uniform(0.3, 1.7) for _ in range(projects)]
                machi_weight = sum(
                    wt for (_s, f, _c), wt in zip(slots, weights, strict=True) if f == machizukuri
                )
                for (s, fund, carry), weight in zip(slots, weights, strict=True):
                    if carry:
                        name, previous_id = slot_name[(w, s)], slot_id[(w, s)]
                    else:
                        name = _fresh_name(rng, shorts[w], used)
                        used.add(name)
                        previous_id = None
                    slot_name[(w, s)], slot_fund[(w, s)] = name, fund
                    if fund == machizukuri:
                        initial = _thousands(MACHIZUKURI_YEN * 0.95 * weight / machi_weight)
                    else:
                        initial = rng.randint(200, 1500) * 1000
                    if rng.random() < 0.05:
                        initial += rng.randint(1, 999)  # figures to the yen do occur
                    year_projects.append(
                        Project(
                            ward=ward,
                            fiscal_year=year_objs[y],
                            pillar=pillars[s * len(pillars) // projects],
                            fund=fund,
                            number=_circled(s + 1),
                            position=s + 1,
                            name=name,
                            summary=_summary(rng, name),
                            is_new=not carry and y > first_year,
                            previous_id=previous_id,
                        )
                    )
                    plans.append(
                        {
                            "slot": (w, s),
                            "no_budget": rng.random() < P_NO_BUDGET,
                            "amounts": _stage_amounts(rng, initial),
                        }
                    )
            _bulk(Project, year_projects, batch_size)
            if year_projects and year_projects[0].pk is None:
                raise GenerateError("This database does not return the ids of bulk inserts.")
            counts.projects += len(year_projects)
            t = lap("projects", t)

            figures = []
            stages = Stage.up_to(year_objs[y].published_stage)
            for project, plan in zip(year_projects, plans, strict=True):
                slot_id[plan["slot"]] = project.pk
                wanted = list(stages)
                if latest and rng.random() < P_DRAFT:
                    wanted.append(Stage.SEPTEMBER)  # a draft of the open stage
                amounts = plan["amounts"]
                for stage in wanted:
                    if rng.random() < P_NOT_ENTERED:
                        continue
                    amount = None if plan["no_budget"] else amounts[stage]
                    previous = amounts.get(stage.previous) if stage.previous else None
                    changed = stage.previous is not None and amount != previous
                    figures.append(
                        StageFigure(
                            project=project,
                            stage=stage,
                            amount=amount,
                            reason=rng.choice(_REASONS) if changed and amount is not None else "",
                        )
                    )
            _bulk(StageFigure, figures, batch_size)
            counts.figures += len(figures)
            t = lap("figures", t)
            say(f"  {y}: {len(year_projects):,} projects, {len(figures):,} figures")

    if connection.vendor == "postgresql":
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # outside the transaction: VACUUM needs that
        lap("analyze", t)
    counts.seconds["total"] = time.perf_counter() - started
    return counts
