"""Default oversight policies, and the role groups' oversight permissions: everyone reads
(filtered by what they may see); risk officers edit threshold rules and oversight policies."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = [
    "view_validationreport",
    "view_finding",
    "view_monitoringalert",
    "view_thresholdrule",
    "view_periodicreview",
    "view_overduereview",
    "view_oversightpolicy",
]
ROLES = {
    "data-scientist": READ,
    "pipeline": READ,
    "model-validator": READ,
    "risk-officer": READ + ["add_thresholdrule", "change_thresholdrule", "change_oversightpolicy"],
    "auditor": READ,
}


def grant(apps, schema_editor):
    from oversight.defaults import ensure_policies

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
            content_type__app_label="oversight", codename__in=codenames
        )
        missing = set(codenames) - set(perms.values_list("codename", flat=True))
        if missing:
            raise RuntimeError(f"permissions missing for role {role}: {sorted(missing)}")
        group.permissions.add(*perms)
    ensure_policies(apps)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="oversight")
    for group in Group.objects.filter(name__in=list(ROLES)):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [("oversight", "0001_initial"), ("registry", "0002_roles")]
    operations = [migrations.RunPython(grant, revoke)]
