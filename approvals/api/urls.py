from django.urls import path
from rest_framework.routers import SimpleRouter

from approvals.api import views

router = SimpleRouter(trailing_slash=False)
router.register("promotions", views.PromotionViewSet, basename="promotion")

urlpatterns = [
    path(
        "models/<str:model_name>/versions/<int:version>/promotions",
        views.PromotionFileView.as_view(),
        name="promotion-file",
    ),
    path(
        "models/<str:model_name>/stage-history",
        views.StageHistoryView.as_view(),
        name="model-stage-history",
    ),
    path("models/<str:model_name>/stages", views.StagesAsOfView.as_view(), name="model-stages"),
    *router.urls,
]
