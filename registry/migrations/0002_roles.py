"""Creates the five role groups with the global permissions each role needs.

Object-level rights (who may change which registered model) are granted per model with
django-guardian; these groups only carry what a role may do everywhere.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CATALOGUE = ["dataset", "datasetversion", "feature", "job", "run"]


def _view_all():
    return [f"view_{m}" for m in CATALOGUE + ["registeredmodel", "modelversion"]]


ROLES = {
    "data-scientist": [f"view_{m}" for m in CATALOGUE]
    + [
        "add_registeredmodel",
        "add_modelversion",
        "add_dataset",
        "change_dataset",
        "add_datasetversion",
        "add_feature",
        "change_feature",
        "add_job",
        "change_job",
        "add_run",
        "change_run",
    ],
    "pipeline": [f"view_{m}" for m in CATALOGUE]
    + [
        "add_registeredmodel",
        "add_modelversion",
        "add_dataset",
        "change_dataset",
        "add_datasetversion",
        "add_feature",
        "change_feature",
        "add_job",
        "change_job",
        "add_run",
        "change_run",
    ],
    "model-validator": _view_all(),
    "risk-officer": _view_all(),
    "auditor": _view_all(),
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; roles need them now.
    for app_config in apps.get_app_configs():
        original = getattr(app_config, "models_module", None)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = original
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(
            content_type__app_label="registry", codename__in=codenames
        )
        missing = set(codenames) - set(perms.values_list("codename", flat=True))
        if missing:
            raise RuntimeError(f"permissions missing for role {role}: {sorted(missing)}")
        group.permissions.add(*perms)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
