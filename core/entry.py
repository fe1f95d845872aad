"""The API's front doors: the root listing every resource, the docs and their schema. A
signed-out person in a browser is sent to the admin sign-in and back; API clients get the
usual 401 body."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions
from rest_framework.routers import APIRootView


def _wants_html(request) -> bool:
    return "text/html" in request.META.get("HTTP_ACCEPT", "")


class SignInRedirectMixin:
    """Signed-out browsers (Accept: text/html) go to the admin sign-in, then come back."""

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.NotAuthenticated) and _wants_html(self.request):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)


class ApiRootView(SignInRedirectMixin, APIRootView):
    """The API's front page: each resource with a link (the routes are named in config/urls)."""

    schema = None  # a list of links, not an operation of the OpenAPI document


class DocsView(SignInRedirectMixin, SpectacularSwaggerSplitView):
    """Swagger UI, served locally; its start-up script is served as a file (no inline script)."""


class SchemaView(SignInRedirectMixin, SpectacularAPIView):
    """The OpenAPI document; a signed-out browser is sent to sign in, as for the docs, and a
    signed-in one asking for HTML gets the document (YAML) instead of a 406."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)
