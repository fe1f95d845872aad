"""Seeds the default promotion policies (README, "Promotions") and creates the permission
`registry.decide_promotion` on registered models (see approvals/permissions.py for why it
lives on registry's content type)."""

from django.db import migrations

from approvals import defaults


def seed(apps, schema_editor):
    defaults.ensure_decide_permission(apps)
    defaults.ensure_policies(apps)


def unseed(apps, schema_editor):
    apps.get_model("approvals", "PromotionPolicy").objects.all().delete()
    apps.get_model("auth", "Permission").objects.filter(
        content_type__app_label="registry", codename=defaults.DECIDE_CODENAME
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0001_initial"),
        ("registry", "0002_roles"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(seed, unseed)]
