"""Monitoring alerts and periodic reviews keep one set of admin permissions: never added or
deleted there, seen with their model, changed (closed) only while open by whoever may close
them, the closing comment read-only once closed."""

import pytest
from django.contrib.admin import site

from oversight.admin._common import OpenItemMixin
from oversight.admin.monitoring import MonitoringAlertAdmin
from oversight.admin.reviews import PeriodicReviewAdmin
from oversight.models import AlertStatus, MonitoringAlert, PeriodicReview, ReviewStatus

pytestmark = pytest.mark.django_db
PERMISSIONS = {
    "get_readonly_fields",
    "has_add_permission",
    "has_delete_permission",
    "has_view_permission",
    "has_change_permission",
    "has_module_permission",
}


@pytest.mark.parametrize(
    ("admin_class", "model", "closed"),
    [
        (MonitoringAlertAdmin, MonitoringAlert, AlertStatus.RESOLVED),
        (PeriodicReviewAdmin, PeriodicReview, ReviewStatus.COMPLETED),
    ],
)
def test_open_items_share_one_set_of_admin_permissions(
    admin_class, model, closed, rf, superuser, outsider, credit_version, monkeypatch
):
    assert issubclass(admin_class, OpenItemMixin)
    assert PERMISSIONS & set(vars(admin_class)) == set()  # nothing of its own to drift
    admin = admin_class(model, site)
    request = rf.get("/")
    request.user = superuser
    item = model(version=credit_version, status=closed)

    assert admin.has_module_permission(request) and admin.has_view_permission(request)
    assert not admin.has_add_permission(request)
    assert not admin.has_delete_permission(request, item)
    assert admin.has_view_permission(request, item)
    assert not admin.has_change_permission(request, item)
    assert admin.closing_field in admin.get_readonly_fields(request, item)

    item.status = admin.open_status
    assert admin.closing_field not in admin.get_readonly_fields(request, item)
    for may in (True, False):
        monkeypatch.setattr(admin, "may_close", lambda user, version, may=may: may)
        assert admin.has_change_permission(request, item) is may

    request.user = outsider  # staff, but the model is not theirs to see
    assert not admin.has_view_permission(request, item)
