from django.db import migrations


class Migration(migrations.Migration):
    """Joins two independent changes made from 0004: the stage guard by approval, and
    business-unit appointments with the policy fallback (and the queue's verbose names)."""

    dependencies = [
        ("approvals", "0005_stage_guard_by_approval"),
        ("approvals", "0006_approval_queue_verbose_names"),
    ]

    operations = []
