from django.db import migrations


class Migration(migrations.Migration):
    """Joins four independent changes made from 0004: token verbose names, run facets as sent,
    version description, labels and aliases, and the methodology and assumptions fields."""

    dependencies = [
        ("registry", "0005_api_token_verbose_names"),
        ("registry", "0005_run_facets_as_sent"),
        ("registry", "0005_version_description_labels_and_aliases"),
        ("registry", "0005_version_methodology_and_assumptions"),
    ]

    operations = []
