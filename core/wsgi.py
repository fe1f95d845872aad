"""WSGI plumbing that must run before Django builds its request."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

from core.errors import COMPACT, error_body, too_large_message


class ChunkedRequestBody:
    """Give a body sent with `Transfer-Encoding: chunked` (no Content-Length) its length, so
    Django reads it: gunicorn decodes the chunks and marks the input `wsgi.input_terminated`,
    but Django reads only Content-Length bytes — none — and the body looked empty.

    The decoded body is read here, up to MAX_REQUEST_BYTES (413 beyond, as for a declared
    length). Servers that do not mark the input terminated are left alone.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated"):
            limit = settings.MAX_REQUEST_BYTES
            body = environ["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                return _too_large(start_response, limit)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _too_large(start_response: Callable, limit: int) -> list[bytes]:
    body = json.dumps(error_body(too_large_message(limit), "too_large"), **COMPACT).encode()
    start_response(
        "413 Request Entity Too Large",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
