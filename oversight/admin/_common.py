"""What the oversight admin pages share."""

from __future__ import annotations

from registry.selectors import models_visible_to


def _staff(request) -> bool:
    return request.user.is_active and request.user.is_staff


class VisibleMixin:
    """Rows of the models the signed-in user may see; others are 404, as everywhere."""

    version_path = "version"

    def _visible(self, request, qs):
        return qs.filter(
            **{f"{self.version_path}__model__in": models_visible_to(request.user).values("pk")}
        )

    def get_queryset(self, request):
        return self._visible(request, super().get_queryset(request))
