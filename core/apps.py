from django.apps import AppConfig
from django.db.backends.signals import connection_created


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core import checks  # noqa: F401 - registers the system checks
        from core.db import send_lists_binary

        connection_created.connect(send_lists_binary, dispatch_uid="core.send_lists_binary")
