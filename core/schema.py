"""OpenAPI post-processing: every operation documents the shared error body and the error
statuses any endpoint can answer, so clients and schema-driven tests know them."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string", "nullable": True},
                    "message": {"type": "string"},
                    "code": {"type": "string", "nullable": True},
                },
            },
        }
    },
}
COMMON = {
    "400": "Invalid input; `errors` names each field and problem.",
    "401": "Missing, invalid, expired or revoked credentials.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "Not found, or not visible to the caller.",
    "405": "Method not allowed here.",
    "409": "Conflicts with the current state (duplicate, immutable field, state transition).",
    "413": "Request body too large.",
    "415": "Unsupported media type or content encoding.",
    "503": "The database or broker is unavailable; retry later.",
}
WRITE_ONLY = {"409", "413", "415"}
# Answered by gunicorn before the application sees the request, as a small HTML page
# (its limits: a request line of 4094 bytes, header fields of 8190 bytes each).
SERVER_LIMITS = {
    "414": "Request line (URL with query string) too long; answered by the web server.",
    "431": "Request header fields too large; answered by the web server.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular hook: add the error body under every status it may answer."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Errors", ERROR_SCHEMA)
    reference = {"$ref": "#/components/schemas/Errors"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            public_operation = operation.get("security") == [{}] or (
                operation.get("security") is not None and not operation["security"]
            )
            for code, description in COMMON.items():
                if code in WRITE_ONLY and method in ("get", "head"):
                    continue
                if public_operation and code in ("401", "403"):
                    continue
                if code not in responses:
                    responses[code] = {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    }
            for code, description in SERVER_LIMITS.items():
                responses.setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                )
    return result
