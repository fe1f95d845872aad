"""Gives the role groups their lineage permissions: pipelines and data scientists post events;
every role reads the graph and the raw events."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = ["view_edge", "view_lineageevent"]
ROLES = {
    "data-scientist": READ + ["add_lineageevent"],
    "pipeline": READ + ["add_lineageevent"],
    "model-validator": READ,
    "risk-officer": READ,
    "auditor": READ,
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        original = getattr(app_config, "models_module", None)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = original
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="lineage", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="lineage")
    for group in Group.objects.filter(name__in=list(ROLES)):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [("lineage", "0001_initial"), ("registry", "0002_roles")]
    operations = [migrations.RunPython(grant, revoke)]
