"""Error pages: API paths get the shared JSON error body, everything else Django's pages."""

from django.http import JsonResponse
from django.views import defaults


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse(
        {"errors": [{"field": None, "message": message, "code": code}]}, status=status
    )


def page_not_found(request, exception):
    if _is_api(request):
        return _error(404, "Not found.", "not_found")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return _error(
            500, "Internal error; it has been logged with this request's id.", "server_error"
        )
    return defaults.server_error(request)


def bad_request(request, exception):
    if _is_api(request):
        return _error(400, "Bad request.", "bad_request")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _is_api(request):
        return _error(
            403, "You do not have permission to perform this action.", "permission_denied"
        )
    return defaults.permission_denied(request, exception)
