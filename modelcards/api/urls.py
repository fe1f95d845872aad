from django.urls import path
from rest_framework.routers import SimpleRouter

from modelcards.api import views

router = SimpleRouter(trailing_slash=False)
router.register("model-cards", views.ModelCardViewSet, basename="modelcard")

urlpatterns = [
    path(
        "models/<str:model_name>/versions/<int:version>/model-cards",
        views.ModelCardRequestView.as_view(),
        name="modelcard-request",
    ),
    *router.urls,
]
