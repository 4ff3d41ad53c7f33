from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class WardsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "wards"
    verbose_name = _("区と年度")

    def ready(self) -> None:
        import kumamachi.security  # noqa: F401 - connects the login signal receivers
        from kumamachi.pagecache import connect_signals
        from wards.roles import groups_ensure

        connect_signals()

        # Permissions exist only after migrate, so the groups are made then.
        post_migrate.connect(groups_ensure, sender=self, dispatch_uid="wards_groups_ensure")
