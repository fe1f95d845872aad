"""MLflow Model Registry REST API 2.0 routes, named `mlflow-<resource>-<verb>`."""

from django.urls import path, re_path

from mlflow_api import views as v

M = "registered-models"
V = "model-versions"

urlpatterns = [
    path(f"{M}/create", v.endpoint(post=v.create_registered_model), name="mlflow-model-create"),
    path(f"{M}/get", v.endpoint(get=v.get_registered_model), name="mlflow-model-get"),
    path(f"{M}/rename", v.endpoint(post=v.rename_registered_model), name="mlflow-model-rename"),
    path(f"{M}/update", v.endpoint(patch=v.update_registered_model), name="mlflow-model-update"),
    path(f"{M}/delete", v.endpoint(delete=v.delete_registered_model), name="mlflow-model-delete"),
    path(f"{M}/search", v.endpoint(get=v.search_registered_models), name="mlflow-model-search"),
    path(
        f"{M}/get-latest-versions",
        v.endpoint(post=v.get_latest_versions, get=v.get_latest_versions),
        name="mlflow-model-latest-versions",
    ),
    path(f"{M}/set-tag", v.endpoint(post=v.set_registered_model_tag), name="mlflow-model-set-tag"),
    path(
        f"{M}/delete-tag",
        v.endpoint(delete=v.delete_registered_model_tag),
        name="mlflow-model-delete-tag",
    ),
    path(
        f"{M}/alias",
        v.endpoint(post=v.set_alias, delete=v.delete_alias, get=v.get_version_by_alias),
        name="mlflow-model-alias",
    ),
    path(f"{V}/create", v.endpoint(post=v.create_model_version), name="mlflow-version-create"),
    path(f"{V}/get", v.endpoint(get=v.get_model_version), name="mlflow-version-get"),
    path(f"{V}/update", v.endpoint(patch=v.update_model_version), name="mlflow-version-update"),
    path(f"{V}/delete", v.endpoint(delete=v.delete_model_version), name="mlflow-version-delete"),
    path(f"{V}/search", v.endpoint(get=v.search_model_versions), name="mlflow-version-search"),
    path(
        f"{V}/get-download-uri",
        v.endpoint(get=v.get_download_uri),
        name="mlflow-version-download-uri",
    ),
    path(
        f"{V}/transition-stage",
        v.endpoint(post=v.transition_stage),
        name="mlflow-version-transition-stage",
    ),
    path(f"{V}/set-tag", v.endpoint(post=v.set_model_version_tag), name="mlflow-version-set-tag"),
    path(
        f"{V}/delete-tag",
        v.endpoint(delete=v.delete_model_version_tag),
        name="mlflow-version-delete-tag",
    ),
    re_path(r"^.*$", v.unknown_endpoint, name="mlflow-unknown-endpoint"),
]
