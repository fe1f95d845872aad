"""Error pages: API paths get the shared JSON error body, everything else Django's pages."""

from django.http import JsonResponse
from django.views import defaults

from core.errors import COMPACT, error_body


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str, code: str, field: str | None = None) -> JsonResponse:
    """An error answered outside DRF (middleware, error pages), in the API's shape and
    rendering, so that a client sees the same bytes whichever layer refused it."""
    return JsonResponse(error_body(message, code, field), status=status, json_dumps_params=COMPACT)


def page_not_found(request, exception):
    if _is_api(request):
        return error_response(404, "Not found.", "not_found")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return error_response(
            500, "Internal error; it has been logged with this request's id.", "server_error"
        )
    return defaults.server_error(request)


def bad_request(request, exception):
    if _is_api(request):
        return error_response(400, "Bad request.", "bad_request")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _is_api(request):
        return error_response(
            403, "You do not have permission to perform this action.", "permission_denied"
        )
    return defaults.permission_denied(request, exception)
