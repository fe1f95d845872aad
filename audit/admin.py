"""Read-only audit log in the admin: no add, change or delete, for anyone."""

from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "occurred_at",
        "actor_username",
        "channel",
        "action",
        "object_type",
        "object_id",
        "object_repr",
    ]
    list_filter = ["channel", "actor_kind", "action", "object_type"]
    search_fields = ["action", "actor_username", "object_repr", "object_id"]
    date_hierarchy = "occurred_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_view_permission(self, request, obj=None):
        user = request.user
        return user.is_active and (user.is_superuser or user.groups.filter(name="auditor").exists())

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
