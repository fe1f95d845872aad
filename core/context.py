"""Per-request (or per-task) context that reaches the audit log without being passed around.

Middleware, the token authenticator, management commands and the task wrapper set it; the
audit recorder reads it. The actor is never taken from here: services receive it explicitly.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from typing import Any

CHANNELS = ("api", "admin", "task", "cli", "auth", "mlflow", "system")

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "modelgov_request_context", default=None
)


def current() -> dict[str, Any]:
    """The active context (a copy); channel "system" when nothing set one."""
    ctx = _context.get()
    return dict(ctx) if ctx else {"channel": "system"}


def update(**values: Any) -> None:
    """Add values (e.g. the token id once authentication ran) to the active context."""
    ctx = _context.get()
    if ctx is None:
        ctx = {"channel": "system"}
        _context.set(ctx)
    ctx.update({k: v for k, v in values.items() if v is not None})


@contextlib.contextmanager
def bound(**values: Any) -> Iterator[dict[str, Any]]:
    """Bind a fresh context for the duration of a block (a request, a task, a command)."""
    ctx = {"request_id": values.pop("request_id", None) or uuid.uuid4().hex, **values}
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)
