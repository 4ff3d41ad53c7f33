"""Replace the whole database by a backup written by `manage.py backup`, all or nothing."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from kumamachi.backup import BackupError, backup_read, backup_restore, database_is_empty


class Command(BaseCommand):
    help = (
        "Restore a backup written by `manage.py backup FILE` into this (migrated) database. "
        "Everything now in it is replaced; --yes is needed when it holds data."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--database", default="default")
        parser.add_argument(
            "--yes", action="store_true", help="replace the data in a non-empty database"
        )

    def handle(self, *args, file: Path, database: str, yes: bool, **options):
        try:
            # The whole file is read and checked before anything is touched.
            data = backup_read(file, using=database)
        except BackupError as exc:
            raise CommandError(_("復元しませんでした。%(reason)s") % {"reason": exc}) from exc
        if not yes and not database_is_empty(database) and not self._confirmed():
            raise CommandError(
                _(
                    "復元しませんでした。このデータベースにはデータがあり、復元するとすべて"
                    "置き換わります。よければ --yes を付けて実行してください。"
                )
            )
        try:
            counts = backup_restore(data=data, using=database)
        except BackupError as exc:
            raise CommandError(
                _("復元しませんでした（データベースは元のままです）。%(reason)s") % {"reason": exc}
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "%(path)s を復元しました：%(rows)s行（%(created)s のバックアップ）。"
                    "全員、ログインし直してください。"
                )
                % {"path": file, "rows": sum(counts.values()), "created": data.get("created")}
            )
        )

    def _confirmed(self) -> bool:
        if not sys.stdin.isatty():
            return False
        answer = input(_("現在のデータをすべて置き換えます。続けますか？ [yes/no] "))
        return answer.strip().lower() in ("yes", "y", "はい")
