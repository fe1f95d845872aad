"""Key → value tags, aliases and renames: registry services every door shares."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from registry import selectors, services
from registry.models import ModelAlias

pytestmark = pytest.mark.django_db


def test_a_governed_alias_is_refused_by_the_service_itself(owner, credit_version):
    with pytest.raises(PermissionDenied, match="governed"):
        services.model_alias_set(
            actor=owner, model=credit_version.model, alias="champion", version=credit_version
        )
    assert not ModelAlias.objects.exists()


def test_governed_aliases_follow_the_setting(settings, owner, credit_version):
    settings.GOVERNED_ALIASES = {"live": "production"}
    services.model_alias_set(
        actor=owner, model=credit_version.model, alias="champion", version=credit_version
    )
    with pytest.raises(PermissionDenied):
        services.model_alias_set(
            actor=owner, model=credit_version.model, alias="live", version=credit_version
        )
    assert selectors.version_by_alias(credit_version.model, "champion") == credit_version
    assert selectors.version_by_alias(credit_version.model, "live") is None


def test_an_alias_cannot_name_another_models_version(owner, credit_version):
    other = services.registered_model_create(actor=owner, name="other")
    with pytest.raises(ValidationError):
        services.model_alias_set(actor=owner, model=other, alias="best", version=credit_version)
    assert not ModelAlias.objects.exists()


def test_only_who_may_change_the_model_sets_aliases(other_scientist, credit_version):
    with pytest.raises(PermissionDenied):
        services.model_alias_set(
            actor=other_scientist,
            model=credit_version.model,
            alias="best",
            version=credit_version,
        )


def test_version_tags_leave_the_content_digest_alone(owner, credit_version):
    digest = credit_version.content_digest
    services.model_version_label_set(actor=owner, version=credit_version, key="qa", value="ok")
    credit_version.refresh_from_db()
    assert credit_version.labels == {"qa": "ok"}
    assert credit_version.content_digest == digest
    event = AuditEvent.objects.get(action="registry.model_version.tagged")
    assert event.changes == {"labels.qa": [None, "ok"]}


def test_setting_a_tag_to_its_current_value_records_nothing(owner, credit_model):
    services.registered_model_label_set(actor=owner, model=credit_model, key="k", value="v")
    services.registered_model_label_set(actor=owner, model=credit_model, key="k", value="v")
    assert AuditEvent.objects.filter(action="registry.registered_model.tagged").count() == 1


def test_an_over_long_tag_value_is_refused_and_nothing_is_written(owner, credit_model):
    with pytest.raises(ValidationError):
        services.registered_model_label_set(
            actor=owner, model=credit_model, key="k", value="x" * 5001
        )
    credit_model.refresh_from_db()
    assert credit_model.labels == {}


def test_a_rename_keeps_the_versions_digests_and_is_audited(owner, credit_version):
    digest = credit_version.content_digest
    services.registered_model_rename(actor=owner, model=credit_version.model, new_name="pd")
    credit_version.refresh_from_db()
    assert credit_version.model.name == "pd" and credit_version.content_digest == digest
    event = AuditEvent.objects.get(action="registry.registered_model.renamed")
    assert event.changes == {"name": ["credit-scoring", "pd"]}


def test_a_rename_to_an_invalid_name_is_refused(owner, credit_model):
    with pytest.raises(ValidationError):
        services.registered_model_rename(actor=owner, model=credit_model, new_name="Bad Name")
    credit_model.refresh_from_db()
    assert credit_model.name == "credit-scoring"
