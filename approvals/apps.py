from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate, pre_save


def _restore_defaults(sender, using="default", apps=None, **kwargs) -> None:
    """After migrate or flush: the decide permission and any missing default policy."""
    from django.apps import apps as global_apps

    from approvals import defaults

    tables = connections[using].introspection.table_names()
    if "approvals_promotionpolicy" not in tables or "auth_permission" not in tables:
        return
    defaults.ensure_decide_permission(global_apps)
    defaults.ensure_policies(global_apps)


def _freeze_production_content(sender, instance, raw=False, **kwargs) -> None:
    """A production version's content is what was approved: editing it is refused (409)."""
    if raw or instance.pk is None:
        return
    from core.errors import Conflict

    stored = sender.objects.filter(pk=instance.pk).values_list("stage", "content_digest").first()
    if stored and stored[0] == "production" and stored[1] != instance.content_digest:
        raise Conflict(
            f"{instance} is in production and its content is what was approved; it cannot be "
            "changed. Register a new version (or withdraw this one) instead.",
            code="frozen",
        )


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import gates  # noqa: F401 - registers the built-in gates
        from registry.models import ModelVersion

        post_migrate.connect(_restore_defaults, sender=self, dispatch_uid="approvals.defaults")
        pre_save.connect(
            _freeze_production_content,
            sender=ModelVersion,
            dispatch_uid="approvals.freeze_production",
        )
