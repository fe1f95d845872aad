from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _restore_defaults(sender, using="default", apps=None, **kwargs) -> None:
    """After migrate or flush: the decide permission and any missing default policy."""
    from django.apps import apps as global_apps

    from approvals import defaults

    tables = connections[using].introspection.table_names()
    if "approvals_promotionpolicy" not in tables or "auth_permission" not in tables:
        return
    defaults.ensure_decide_permission(global_apps)
    defaults.ensure_policies(global_apps)


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import gates  # noqa: F401 - registers the built-in gates

        post_migrate.connect(_restore_defaults, sender=self, dispatch_uid="approvals.defaults")
