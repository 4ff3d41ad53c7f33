"""Back up and restore everything: figures, history, users, groups, the admin log.

A backup is one gzip'd JSON document, portable between SQLite and PostgreSQL::

    {"format": "kumamachi-backup", "format_version": 1, "created": ..., "app_version": ...,
     "database_vendor": ..., "migrations": [...], "counts": {"app.model": n, ...},
     "content_version": n, "objects": [<Django serializer objects>]}

Every row of every model is in it except what ``migrate`` recreates (content types and
permissions, which rows refer to by natural key), sessions (a restore logs everyone out)
and the page cache's content version (a restore sets a fresh one). Primary keys are kept:
they are in the public addresses.

``restore`` reads and checks the whole file before it touches the database, then in one
transaction wipes the tables and loads the rows (all or nothing), resets the sequences and
sets a content version no worker has cached a page under.
"""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from django.apps import apps
from django.core import serializers
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.management.color import no_style
from django.core.serializers.base import DeserializationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.serializers.json import Serializer as JSONSerializer
from django.db import DatabaseError, connections, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Model, QuerySet, sql
from django.utils import timezone
from django.utils.translation import gettext as _

FORMAT = "kumamachi-backup"
FORMAT_VERSION = 1
# Recreated by migrate (and referred to by natural key), per-login, or a cache key.
EXCLUDED = frozenset(
    {"contenttypes.contenttype", "auth.permission", "sessions.session", "wards.contentversion"}
)
# Wiped by a restore though not in the backup: old logins must not outlive it.
WIPED_ONLY = ("sessions.session",)
# Referred to by natural key: their ids differ between databases migrated apart.
NATURAL = frozenset({"contenttypes.contenttype", "auth.permission"})


class BackupError(Exception):
    """A backup that cannot be written or restored; the message says why, in Japanese."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    counts: dict[str, int]
    header: dict


# --- Which models ------------------------------------------------------------------------------


def backup_models() -> list[type[Model]]:
    """Every stored model but the excluded ones, in app order (auto-created many-to-many
    tables travel with their model)."""
    return [
        model
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy and model._meta.label_lower not in EXCLUDED
    ]


def _through_models(models: Iterable[type[Model]]) -> list[type[Model]]:
    return [
        field.remote_field.through
        for model in models
        for field in model._meta.local_many_to_many
        if field.remote_field.through._meta.auto_created
    ]


def applied_migrations(using: str = "default") -> list[str]:
    recorder = MigrationRecorder(connections[using])
    return sorted(f"{app}.{name}" for app, name in recorder.applied_migrations())


def _app_version() -> str:
    try:
        return metadata.version("kumamachi")
    except metadata.PackageNotFoundError:
        return "unknown"


def content_version(using: str = "default") -> int:
    from wards.models import ContentVersion

    row = ContentVersion.objects.using(using).filter(pk=1).values_list("version", flat=True)
    return row.first() or 0


# --- Writing -----------------------------------------------------------------------------------


class _Encoder(DjangoJSONEncoder):
    """DjangoJSONEncoder but with whole microseconds: it cuts times to milliseconds, and a
    restored history would then differ from the original."""

    def default(self, o):
        if isinstance(o, dt.datetime | dt.time):
            return o.isoformat()
        return super().default(o)


class _Serializer(JSONSerializer):
    """Natural keys for content types and permissions only: every other reference keeps its
    id, which needs no lookup on restore."""

    def _natural_for(self, field) -> None:
        self.use_natural_foreign_keys = field.remote_field.model._meta.label_lower in NATURAL

    def handle_fk_field(self, obj, field):
        self._natural_for(field)
        super().handle_fk_field(obj, field)

    def handle_m2m_field(self, obj, field):
        self._natural_for(field)
        super().handle_m2m_field(obj, field)


def _ordered(model: type[Model], using: str):
    return model._base_manager.using(using).order_by("pk")


def backup_write(*, path: Path, using: str = "default") -> BackupInfo:
    """Write the whole database to ``path`` (gzip'd JSON), from one consistent snapshot."""
    path = Path(path)
    connection = connections[using]
    models = backup_models()
    tmp = path.with_name(path.name + ".part")
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql" and outermost:
            # One snapshot for every table, as pg_dump takes: writers are not blocked.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        counts = {m._meta.label_lower: _ordered(m, using).count() for m in models}
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": timezone.now().isoformat(),
            "app_version": _app_version(),
            "database_vendor": connection.vendor,
            "migrations": applied_migrations(using),
            "counts": counts,
            "content_version": content_version(using),
        }
        try:
            with gzip.open(tmp, "wt", encoding="utf-8") as out:
                # The header first, so that a reader sees what it is before the rows.
                out.write(json.dumps(header, ensure_ascii=False)[:-1] + ', "objects": ')
                rows = itertools.chain.from_iterable(
                    _ordered(m, using).iterator(chunk_size=2000) for m in models
                )
                _Serializer().serialize(rows, stream=out, cls=_Encoder, ensure_ascii=False)
                out.write("}\n")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(path)  # a backup is either whole or absent, never half written
    return BackupInfo(path=path, counts=counts, header=header)


# --- Reading and checking ----------------------------------------------------------------------


def backup_read(path: Path, *, using: str = "default") -> dict:
    """The backup at ``path``, checked against this database's schema: raises BackupError
    (with what is wrong) before anything is written."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError as exc:
        raise BackupError(
            _("バックアップファイル %(path)s がありません。") % {"path": path}
        ) from exc
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BackupError(
            _("%(path)s は gzip として読めません（途中で切れているか、壊れています）：%(error)s")
            % {"path": path, "error": exc}
        ) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackupError(
            _("%(path)s は JSON として読めません：%(error)s") % {"path": path, "error": exc}
        ) from exc
    except OSError as exc:
        raise BackupError(
            _("%(path)s を読めません：%(error)s") % {"path": path, "error": exc}
        ) from exc
    _check(data, path=path, using=using)
    return data


def _check(data, *, path: Path, using: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(
            _("%(path)s は kumamachi のバックアップではありません（形式の見出しがありません）。")
            % {"path": path}
        )
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BackupError(_("%(path)s の形式の版が読めません。") % {"path": path})
    if version > FORMAT_VERSION:
        raise BackupError(
            _(
                "%(path)s は新しい形式（版 %(version)d）で書かれています。このアプリが読めるのは"
                "版 %(supported)d までです。新しい版のアプリで復元してください。"
            )
            % {"path": path, "version": version, "supported": FORMAT_VERSION}
        )
    ours = set(applied_migrations(using))
    theirs = data.get("migrations")
    if not isinstance(theirs, list) or set(theirs) != ours:
        theirs = set(theirs) if isinstance(theirs, list) else set()
        raise BackupError(
            _(
                "%(path)s のデータベースの版（マイグレーション）がこのデータベースと一致しません。"
                "バックアップにだけあるもの：%(only_backup)s。このデータベースにだけあるもの："
                "%(only_here)s。同じ版のアプリで migrate してから復元してください。"
            )
            % {
                "path": path,
                "only_backup": ", ".join(sorted(theirs - ours)[:10]) or _("なし"),
                "only_here": ", ".join(sorted(ours - theirs)[:10]) or _("なし"),
            }
        )
    counts, objects = data.get("counts"), data.get("objects")
    if not isinstance(counts, dict) or not isinstance(objects, list):
        raise BackupError(_("%(path)s に件数表か行の一覧がありません。") % {"path": path})
    known = {m._meta.label_lower for m in backup_models()}
    found: Counter[str] = Counter()
    for index, obj in enumerate(objects):
        label = obj.get("model") if isinstance(obj, dict) else None
        if label not in known or not isinstance(obj.get("fields"), dict):
            raise BackupError(
                _("%(path)s の %(index)d 件目の行が読めません（モデル %(model)s）。")
                % {"path": path, "index": index + 1, "model": label}
            )
        found[label] += 1
    expected = {label: n for label, n in counts.items() if n}
    if dict(found) != expected:
        wrong = sorted(
            label for label in set(found) | set(expected) if found[label] != expected.get(label)
        )
        raise BackupError(
            _(
                "%(path)s の行数が見出しの件数と合いません（%(models)s）。ファイルが途中で"
                "切れているか、書き換えられています。"
            )
            % {
                "path": path,
                "models": ", ".join(
                    f"{label} {found[label]}/{expected.get(label, 0)}" for label in wrong[:10]
                ),
            }
        )


def database_is_empty(using: str = "default") -> bool:
    """No user and no ledger row: what migrate leaves (it creates the role groups)."""
    from django.contrib.auth import get_user_model

    from kumamachi.pagecache import LEDGER_APPS

    models = [get_user_model()] + [m for m in backup_models() if m._meta.app_label in LEDGER_APPS]
    return not any(_ordered(m, using).exists() for m in models)


# --- Restoring ---------------------------------------------------------------------------------


def fresh_content_version(*, before: int, backup: int) -> int:
    """A content version no worker can have cached a page under: above the version before
    the restore and the backup's, and at least the time in microseconds. Cached pages are
    keyed by the version and per worker, out of a restore's reach; a wiped database starts
    counting again from 0, so "one more than now" could meet a key cached before the wipe.
    Versions grow by one per write, never by a million a second, so the clock stays ahead."""
    return max(before + 1, backup + 1, time.time_ns() // 1000)


def _wipe(connection, models: list[type[Model]]) -> None:
    tables = [m._meta.db_table for m in models]
    tables += [m._meta.db_table for m in _through_models(models)]
    tables += [apps.get_model(label)._meta.db_table for label in WIPED_ONLY]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # TRUNCATE refuses a table with checks still pending in this transaction.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for sql in connection.ops.sql_flush(no_style(), tables, allow_cascade=False):
            cursor.execute(sql)
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


BATCH = 500


def _insert(model: type[Model], objs: list[Model], using: str) -> None:
    """Insert rows as they are, in batches: a raw insert, as loaddata's save does (no
    ``auto_now``, no version bump, no signals: nothing is recomputed), without its update
    attempt and signal round trips per row."""
    fields = model._meta.local_concrete_fields
    for start in range(0, len(objs), BATCH):
        query = sql.InsertQuery(model)
        query.insert_values(fields, objs[start : start + BATCH], raw=True)
        query.get_compiler(using=using).execute_sql()


def _insert_m2m(model: type[Model], loaded: list, using: str) -> None:
    for field in model._meta.local_many_to_many:
        through = field.remote_field.through
        source, target = field.m2m_field_name(), field.m2m_reverse_field_name()
        rows = [
            through(**{f"{source}_id": item.object.pk, f"{target}_id": pk})
            for item in loaded
            for pk in item.m2m_data.get(field.name, [])
        ]
        QuerySet(model=through).using(using).bulk_create(rows, batch_size=BATCH)


def _flush(loaded: list, using: str) -> None:
    if not loaded:
        return
    model = type(loaded[0].object)
    if model._meta.parents:  # multi-table inheritance: Django's save writes every table
        for item in loaded:
            item.save(using=using)
        return
    _insert(model, [item.object for item in loaded], using)
    _insert_m2m(model, loaded, using)


def _load(objects: list[dict], using: str) -> None:
    """Load the rows model by model (the backup writes them so)."""
    loaded: list = []
    try:
        for item in serializers.deserialize("python", objects, using=using):
            if loaded and type(item.object) is not type(loaded[0].object):
                _flush(loaded, using)
                loaded = []
            loaded.append(item)
        _flush(loaded, using)
    except (DeserializationError, ObjectDoesNotExist, ValidationError, ValueError) as exc:
        message = _("バックアップの行を読み込めませんでした：%(error)s")
        raise BackupError(message % {"error": exc}) from exc
    except DatabaseError as exc:
        where = f"{loaded[0].object._meta.label_lower}: " if loaded else ""
        raise BackupError(
            _("バックアップの行をデータベースに書けませんでした：%(error)s")
            % {"error": f"{where}{exc}"}
        ) from exc


def backup_restore(*, data: dict, using: str = "default") -> dict[str, int]:
    """Replace everything in the database by the checked backup ``data`` (backup_read), in
    one transaction: on any error nothing has changed. Returns the rows per model."""
    from kumamachi import pagecache
    from wards.models import ContentVersion

    connection = connections[using]
    models = backup_models()
    try:
        with transaction.atomic(using=using):
            before = content_version(using)
            _wipe(connection, models)
            _load(data["objects"], using)
            reset = connection.ops.sequence_reset_sql(
                no_style(), [*models, *_through_models(models)]
            )
            with connection.cursor() as cursor:
                for sql in reset:
                    cursor.execute(sql)
            connection.check_constraints()
            version = fresh_content_version(
                before=before, backup=int(data.get("content_version") or 0)
            )
            ContentVersion.objects.using(using).update_or_create(
                pk=1, defaults={"version": version}
            )
    except DatabaseError as exc:
        # The deferred checks run at commit (PostgreSQL): a broken reference ends here.
        raise BackupError(
            _("バックアップの行をデータベースに書けませんでした：%(error)s") % {"error": exc}
        ) from exc
    # This process's own cached pages; other workers miss on the new version.
    pagecache.store.clear()
    return {label: n for label, n in data["counts"].items() if n}
