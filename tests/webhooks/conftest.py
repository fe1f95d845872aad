"""A webhook receiver built on the `standardwebhooks` package: it verifies every delivery."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from tests.approvals.conftest import (  # noqa: F401 - fixtures
    _policies_without_card_gate,
    appoint,
    approvers,
    decide,
    file,
    make_version,
    promote,
    training_run,
    validator_2,
    version,
)


class Receiver:
    """Records what arrives; answers `status` (200 unless told otherwise)."""

    def __init__(self):
        self.secret: str | None = None
        self.status = 200
        self.received: list[dict] = []
        self.rejected: list[str] = []

    def handle(self, headers, body: bytes) -> int:
        try:
            payload = Verifier(self.secret).verify(body, dict(headers))
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return 401
        self.received.append({"headers": dict(headers), "payload": payload, "raw": body})
        return self.status


@pytest.fixture(name="receiver")
def receiver_fixture(settings):
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            code = state.handle(self.headers, body)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"ok": code < 300}).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1"]
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
