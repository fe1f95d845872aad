from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path

from core.entry import ApiRootView, DocsView, SchemaView

# The admin is the product's UI: its name, and "View site" leads to the API docs.
admin.site.site_header = "modelgov"
admin.site.site_title = "modelgov"
admin.site.index_title = "Governance and lineage"
admin.site.site_url = "/api/v1/docs/"
# No navigation sidebar: at 1280–1400 px it took a quarter of the width from the lists and
# drawings people came to read (the index and breadcrumbs navigate).
admin.site.enable_nav_sidebar = False

# What /api/v1/ lists: resource → route name.
API_ROOT = {
    "models": "registeredmodel-list",
    "datasets": "dataset-list",
    "features": "feature-list",
    "jobs": "job-list",
    "runs": "run-list",
    "lineage": "lineage",
    "lineage/batch": "lineage-batch",
    "lineage/upstream": "lineage-upstream",
    "lineage/downstream": "lineage-downstream",
    "lineage/impact": "lineage-impact",
    "events/lineage": "lineage-events",
    "promotions": "promotion-list",
    "findings": "finding-list",
    "monitoring-alerts": "monitoring-alert-list",
    "periodic-reviews": "periodic-review-list",
    "model-cards": "modelcard-list",
    "webhooks": "webhook-list",
    "audit/events": "auditevent-list",
    "audit/verify": "audit-verify",
    "health": "health",
    "schema": "schema",
    "docs": "docs",
}

api_v1 = [
    path("", ApiRootView.as_view(api_root_dict=API_ROOT), name="api-root"),
    path("", include("lineage.api.urls")),
    path("", include("registry.api.urls")),
    path("", include("approvals.api.urls")),
    path("", include("oversight.api.urls")),
    path("", include("modelcards.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("webhooks.api.urls")),
    path("schema/", SchemaView.as_view(), name="schema"),
    # Swagger UI's start-up script is a file (the split view), so the page needs no inline
    # script; its template has one inline <style> block, allowed on this page only.
    path(
        "docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(DocsView.as_view(url_name="schema")),
        name="docs",
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/2.0/mlflow/", include("mlflow_api.urls")),
]

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
