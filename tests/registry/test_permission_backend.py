"""Global permissions: the user's own and their groups' read in one statement, per request."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def _fresh(user):
    """The user as a new request loads it: nothing cached on the instance."""
    return get_user_model().objects.get(pk=user.pk)


def test_own_and_group_permissions_are_read_together_in_one_statement(pipeline):
    own = Permission.objects.get(codename="delete_registeredmodel")
    pipeline.user_permissions.add(own)
    user = _fresh(pipeline)
    with CaptureQueriesContext(connection) as captured:
        perms = user.get_all_permissions()
        assert user.has_perm("registry.delete_registeredmodel")
        assert user.has_perm("lineage.add_lineageevent")  # the pipeline role's
        assert not user.has_perm("registry.delete_modelversion")
    assert len(captured.captured_queries) == 1
    # the same set as Django's own backend reads with two statements
    assert perms == ModelBackend().get_all_permissions(_fresh(pipeline))
    assert "registry.delete_registeredmodel" in perms and "lineage.add_lineageevent" in perms


def test_a_permission_taken_from_a_group_counts_on_the_next_request(pipeline):
    assert _fresh(pipeline).has_perm("lineage.add_lineageevent")
    Group.objects.get(name="pipeline").permissions.remove(
        Permission.objects.get(codename="add_lineageevent")
    )
    assert not _fresh(pipeline).has_perm("lineage.add_lineageevent")


def test_leaving_a_group_counts_on_the_next_request(pipeline):
    pipeline.groups.clear()
    assert not _fresh(pipeline).has_perm("lineage.add_lineageevent")


def test_inactive_users_have_no_permissions_and_superusers_all(pipeline, superuser):
    pipeline.is_active = False
    pipeline.save()
    assert _fresh(pipeline).get_all_permissions() == set()
    assert len(_fresh(superuser).get_all_permissions()) == Permission.objects.count()


def test_the_set_is_modelbackends_for_own_group_and_overlapping_grants(pipeline, outsider):
    """Permissions held twice (own and through two groups) count once; each user's set is
    exactly what Django's own backend reads."""
    add_event = Permission.objects.get(codename="add_lineageevent")
    extra = Group.objects.create(name="second-pipeline")
    extra.permissions.add(add_event, Permission.objects.get(codename="view_registeredmodel"))
    pipeline.groups.add(extra)
    pipeline.user_permissions.add(add_event)
    for user in (pipeline, outsider):
        assert _fresh(user).get_all_permissions() == ModelBackend().get_all_permissions(
            _fresh(user)
        )
    assert "registry.view_registeredmodel" in _fresh(pipeline).get_all_permissions()
