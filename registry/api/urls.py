from django.urls import path
from rest_framework.routers import SimpleRouter

from registry.api import views

router = SimpleRouter(trailing_slash=True)
router.register("models", views.RegisteredModelViewSet, basename="registeredmodel")
router.register(
    r"models/(?P<model_name>[^/]+)/versions", views.ModelVersionViewSet, basename="modelversion"
)
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register(
    r"datasets/(?P<dataset_pk>[0-9]{1,18})/versions",
    views.DatasetVersionViewSet,
    basename="datasetversion",
)
router.register("features", views.FeatureViewSet, basename="feature")
router.register("jobs", views.JobViewSet, basename="job")
router.register("runs", views.RunViewSet, basename="run")

urlpatterns = [path("health", views.health, name="health"), *router.urls]
