"""Structured JSON log lines, one object per line, with secrets redacted on the way out.

Use the stdlib ``logging`` API everywhere and pass context as ``extra={...}``; the formatter emits
those fields as JSON keys. The redaction filter is a last line of defence: code must not log secrets
in the first place, but a URL with a password in its query string or an Authorization header that
slips into a message is masked here.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging", "redact"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

_PATTERNS = [
    # HTTP auth schemes.
    re.compile(r"(?i)((?:basic|bearer|oauth|apikey)\s+)([A-Za-z0-9+/=._~-]{8,})"),
    # key=value or "key": "value" pairs whose key names a secret.
    re.compile(
        r"(?i)(\"?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|"
        r"operatorpassword|companypassword|master[_-]?key)\"?\s*[=:]\s*\"?)([^\"&\s,;}]+)"
    ),
    # user:password@host in URLs.
    re.compile(r"(://[^/:@\s]+:)([^@/\s]+)(@)"),
    # Mailchimp API keys: 32 hex + -dc.
    re.compile(r"()\b[0-9a-f]{32}-[a-z]{2,4}\d{1,3}\b()"),
]


def redact(text: str) -> str:
    """Mask anything that looks like a secret."""
    for pattern in _PATTERNS:
        if pattern.groups == 3:
            text = pattern.sub(r"\1***\3", text)
        elif pattern.groups == 2 and pattern.pattern.startswith("()"):
            text = pattern.sub("***", text)
        else:
            text = pattern.sub(r"\1***", text)
    return text


def _default(value: Any) -> Any:
    return str(value)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: ts, level, logger, msg, service, plus ``extra`` fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return redact(orjson.dumps(out, default=_default).decode())


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send every log record to stderr as JSON lines (or readable lines with ``fmt="console"``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(_ConsoleFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter at INFO is noise in a service log; their warnings still come through.
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
