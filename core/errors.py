"""Domain exceptions that every door (API, admin, CLI, tasks) maps the same way."""

from rest_framework import status
from rest_framework.exceptions import APIException


class Conflict(APIException):
    """The request is well-formed but clashes with the current state (answered 409)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"

    def __init__(self, detail=None, code=None, field: str | None = None):
        super().__init__(detail, code)
        self.field = field
