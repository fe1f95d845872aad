"""Structured key=value log lines carrying the request id of the request that wrote them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from core import context


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = context.current()
        record.request_id = ctx.get("request_id", "-")
        record.channel = ctx.get("channel", "-")
        return True


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        parts = [
            f"ts={stamp}",
            f"level={record.levelname}",
            f"logger={record.name}",
            f"request_id={getattr(record, 'request_id', '-')}",
            f"channel={getattr(record, 'channel', '-')}",
            f"msg={_quote(record.getMessage())}",
        ]
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)
