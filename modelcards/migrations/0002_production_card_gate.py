"""Production policies require a model card of the current content before approving
(README, "Promotions"). Databases seeded before the gate existed get it added here; policies
an administrator already gave it are left alone."""

from django.db import migrations

GATE = "model_card_current"


def add_gate(apps, schema_editor):
    Policy = apps.get_model("approvals", "PromotionPolicy")
    for policy in Policy.objects.filter(to_stage="production"):
        if GATE not in policy.approval_gates:
            policy.approval_gates = [*policy.approval_gates, GATE]
            policy.save(update_fields=["approval_gates"])


def remove_gate(apps, schema_editor):
    Policy = apps.get_model("approvals", "PromotionPolicy")
    for policy in Policy.objects.filter(to_stage="production"):
        if GATE in policy.approval_gates:
            policy.approval_gates = [g for g in policy.approval_gates if g != GATE]
            policy.save(update_fields=["approval_gates"])


class Migration(migrations.Migration):
    dependencies = [
        ("modelcards", "0001_initial"),
        ("approvals", "0002_policies"),
    ]
    operations = [migrations.RunPython(add_gate, remove_gate)]
