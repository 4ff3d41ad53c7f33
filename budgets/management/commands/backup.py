"""Back up everything (figures, history, users, groups, admin log) to one gzip'd JSON file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from kumamachi.backup import BackupError, backup_write


class Command(BaseCommand):
    help = (
        "Write a backup of the whole database (portable between SQLite and PostgreSQL) to "
        "FILE, e.g. kumamachi-2026-04-01.json.gz. Restore it with `manage.py restore FILE`."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--database", default="default")

    def handle(self, *args, file: Path, database: str, **options):
        try:
            info = backup_write(path=file, using=database)
        except (BackupError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        rows = sum(info.counts.values())
        self.stdout.write(
            self.style.SUCCESS(
                _("バックアップを書き出しました：%(path)s（%(rows)s行、%(size)sバイト）")
                % {"path": info.path, "rows": rows, "size": file.stat().st_size}
            )
        )
        if options["verbosity"] > 1:
            for label, n in info.counts.items():
                self.stdout.write(f"  {label}: {n}")
