"""core.auth.ModelBackend answers exactly as Django's ModelBackend, with one statement."""

import pytest
from django.contrib.auth import backends, get_user_model
from django.contrib.auth.models import Group, Permission

from core.auth import ModelBackend

pytestmark = pytest.mark.django_db


def _fresh(user):
    return get_user_model().objects.get(pk=user.pk)


def test_permissions_are_django_s_own_and_their_groups_in_one_query(
    django_assert_num_queries,
):
    user = get_user_model().objects.create_user("perm-user")
    group = Group.objects.create(name="perm-group")
    user.user_permissions.add(Permission.objects.get(codename="view_dataset"))
    group.permissions.add(*Permission.objects.filter(codename__in=["add_job", "view_dataset"]))
    user.groups.add(group)
    expected = backends.ModelBackend().get_all_permissions(_fresh(user))
    assert expected == {"registry.view_dataset", "registry.add_job"}
    fresh = _fresh(user)
    with django_assert_num_queries(1):
        assert ModelBackend().get_all_permissions(fresh) == expected
        assert fresh.has_perm("registry.add_job") and not fresh.has_perm("registry.add_run")


def test_inactive_anonymous_superuser_and_object_checks_are_django_s(db):
    from django.contrib.auth.models import AnonymousUser

    backend = ModelBackend()
    user = get_user_model().objects.create_user("inactive", is_active=False)
    user.user_permissions.add(Permission.objects.get(codename="view_dataset"))
    assert backend.get_all_permissions(_fresh(user)) == set()
    assert backend.get_all_permissions(AnonymousUser()) == set()
    active = get_user_model().objects.create_user("active")
    assert backend.get_all_permissions(active, obj=object()) == set()
    root = get_user_model().objects.create_superuser("root-perm")
    assert backend.get_all_permissions(_fresh(root)) == backends.ModelBackend().get_all_permissions(
        _fresh(root)
    )
    assert len(backend.get_all_permissions(_fresh(root))) == Permission.objects.count()


def test_the_permissions_column_reads_what_the_backend_reads(django_assert_num_queries):
    from django.db import connection

    from core.auth import permissions_column, remember_permissions

    user = get_user_model().objects.create_user("column-user")
    group = Group.objects.create(name="column-group")
    user.user_permissions.add(Permission.objects.get(codename="view_dataset"))
    group.permissions.add(*Permission.objects.filter(codename__in=["add_job", "change_run"]))
    user.groups.add(group)
    nobody = get_user_model().objects.create_user("no-perms")
    for who in (user, nobody):
        expected = backends.ModelBackend().get_all_permissions(_fresh(who))
        fresh = _fresh(who)
        table = get_user_model()._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {permissions_column('u.id')} FROM {table} u WHERE u.id = %s", [who.pk]
            )
            remember_permissions(fresh, cursor.fetchone()[0])
        with django_assert_num_queries(0):
            assert ModelBackend().get_all_permissions(fresh) == expected
