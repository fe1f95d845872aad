"""core.db.insert_new: INSERT … ON CONFLICT DO NOTHING RETURNING only the new rows."""

from datetime import datetime

import pytest

from core import db
from registry.models import Dataset
from registry.services import dataset_create

pytestmark = pytest.mark.django_db


def test_insert_new_skips_stored_keys_and_returns_only_what_it_inserted(pipeline):
    stored = dataset_create(actor=pipeline, namespace="s3://a", name="old")
    new = [Dataset(namespace="s3://a", name=n, owner=pipeline) for n in ("old", "new")]
    returned = db.insert_new(
        new,
        fields=(
            "namespace",
            "name",
            "description",
            "owner",
            "contains_pii",
            "archived",
            "created_at",
        ),
        unique_fields=("namespace", "name"),
        returning=("id", "name"),
    )
    assert [name for _, name in returned] == ["new"]
    assert Dataset.objects.get(name="new").pk == returned[0][0]
    assert isinstance(new[1].created_at, datetime)  # auto_now_add stamped, as save() would
    assert Dataset.objects.get(name="old").pk == stored.pk
