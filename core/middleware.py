"""Request id, audit channel and request-size limit for every HTTP request."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core import context
from core.errors import too_large_message
from core.views import error_response

logger = logging.getLogger("modelgov.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _client_address(request: HttpRequest) -> str | None:
    # Only REMOTE_ADDR: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Binds request id, channel, remote address and user agent for logs and audit events."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID.match(given) else None
        channel = "admin" if request.path.startswith("/admin/") else "api"
        with context.bound(
            request_id=request_id,
            channel=channel,
            remote_addr=_client_address(request),
            user_agent=request.headers.get("User-Agent", "")[:255] or None,
        ) as ctx:
            request.request_id = ctx["request_id"]
            response = self.get_response(request)
            response["X-Request-ID"] = ctx["request_id"]
            logger.info(
                "request method=%s path=%s status=%s",
                request.method,
                request.path,
                response.status_code,
            )
            return response


class RequestSizeLimitMiddleware:
    """Refuses bodies over MAX_REQUEST_BYTES with 413 before anything reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.MAX_REQUEST_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "Invalid Content-Length header.", "invalid")
        if length > limit:
            return error_response(413, too_large_message(limit), "too_large")
        # NUL cannot be stored or compared in PostgreSQL text; refuse it at the door.
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return error_response(400, "NUL characters are not allowed.", "invalid")
        return self.get_response(request)
