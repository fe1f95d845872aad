from django.urls import path

from lineage.api import views

# No trailing slashes: OpenLineage clients post to exactly /api/v1/lineage, and a redirect
# would turn their POST into a GET and lose the event.
urlpatterns = [
    path("lineage", views.LineageView.as_view(), name="lineage"),
    path("lineage/batch", views.BatchView.as_view(), name="lineage-batch"),
    path("lineage/upstream", views.UpstreamView.as_view(), name="lineage-upstream"),
    path("lineage/downstream", views.DownstreamView.as_view(), name="lineage-downstream"),
    path("lineage/impact", views.ImpactView.as_view(), name="lineage-impact"),
    path("events/lineage", views.EventsView.as_view(), name="lineage-events"),
    path("events/lineage/remap", views.RemapView.as_view(), name="lineage-events-remap"),
]
