from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from audit.services import audit_listener_register
        from webhooks import events

        events.register_builtin()
        audit_listener_register(events.on_audit_events)
