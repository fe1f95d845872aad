from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def _restore_defaults(sender, using="default", apps=None, **kwargs) -> None:
    """After migrate or flush: the default oversight policy of any tier that has none."""
    from django.apps import apps as global_apps

    from oversight.defaults import ensure_policies

    if "oversight_oversightpolicy" in connections[using].introspection.table_names():
        ensure_policies(global_apps)


class OversightConfig(AppConfig):
    name = "oversight"
    verbose_name = "Oversight"

    def ready(self) -> None:
        from approvals.gates import register_gate
        from oversight import selectors

        register_gate(
            selectors.FINDINGS_GATE, selectors.FINDINGS_GATE_LABEL, selectors.findings_gate
        )
        register_gate(selectors.REVIEW_GATE, selectors.REVIEW_GATE_LABEL, selectors.review_gate)
        post_migrate.connect(_restore_defaults, sender=self, dispatch_uid="oversight.defaults")
