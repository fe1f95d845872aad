from django.urls import path
from rest_framework.routers import SimpleRouter

from audit.api import views

router = SimpleRouter(trailing_slash=False)
router.register("audit/events", views.AuditEventViewSet, basename="auditevent")

urlpatterns = [
    path("audit/verify", views.VerifyView.as_view(), name="audit-verify"),
    *router.urls,
]
