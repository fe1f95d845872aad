"""Gives the role groups their approvals permissions: everyone reads requests and the stage
history (filtered by what they may see); risk officers edit promotion policies."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = [
    "view_promotionrequest",
    "view_promotiondecision",
    "view_stagetransition",
    "view_promotionpolicy",
]
REVIEW = READ + ["view_approvalqueue"]
ROLES = {
    "data-scientist": READ,
    "pipeline": READ,
    "model-validator": REVIEW,
    "risk-officer": REVIEW + ["change_promotionpolicy"],
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
        perms = Permission.objects.filter(
            content_type__app_label="approvals", codename__in=codenames
        )
        missing = set(codenames) - set(perms.values_list("codename", flat=True))
        if missing:
            raise RuntimeError(f"permissions missing for role {role}: {sorted(missing)}")
        group.permissions.add(*perms)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="approvals")
    for group in Group.objects.filter(name__in=list(ROLES)):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0002_policies"), ("registry", "0002_roles")]
    operations = [migrations.RunPython(grant, revoke)]
