from django.urls import path
from rest_framework.routers import SimpleRouter

from oversight.api import views

router = SimpleRouter(trailing_slash=False)
router.register("validation-reports", views.ReportViewSet, basename="validation-report")
router.register("findings", views.FindingViewSet, basename="finding")
router.register("monitoring-alerts", views.AlertViewSet, basename="monitoring-alert")
router.register("periodic-reviews", views.ReviewViewSet, basename="periodic-review")

urlpatterns = [
    path(
        "models/<str:model_name>/versions/<int:version>/validation-reports",
        views.VersionReportsView.as_view(),
        name="version-validation-reports",
    ),
    path(
        "models/<str:model_name>/versions/<int:version>/monitoring",
        views.MonitoringView.as_view(),
        name="version-monitoring",
    ),
    *router.urls,
]
