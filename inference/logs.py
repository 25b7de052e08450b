"""Structured logs: one JSON object a line (or plain text), extra fields passed as `extra={...}`.

Every line goes through `redact`: a query parameter that may carry a secret (`token`,
`access_token`, `key`, ...) keeps its name and loses its value, wherever it appears (uvicorn's
access log, its WebSocket lines, a traceback); so does an Authorization header (the WebSocket
library logs handshake headers at debug level).
"""

from __future__ import annotations

import json
import logging
import re
import time
from urllib.parse import unquote

STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
SECRET_PARAMETERS = frozenset({"token", "access_token", "key", "api_key", "apikey", "auth", "password", "secret"})
QUERY = re.compile(r"\?[^\s\"'\\]+")
PARAMETER = re.compile(r"([^&;=]*)=([^&;]*)")
HEADER = re.compile(r"(?i)((?:proxy-)?authorization|cookie|x-api-key)([\"']?\s*[:=]\s*[\"']?)([a-z]+\s+)?[^\s\"'\\,]+")
REDACTED = "***"


def redact(text: str) -> str:
    """`text` with the values of secret-carrying query parameters and headers replaced by ***."""
    text = HEADER.sub(lambda match: f"{match.group(1)}{match.group(2)}{match.group(3) or ''}{REDACTED}", text)
    if "=" not in text:
        return text

    def query(match: re.Match[str]) -> str:
        return PARAMETER.sub(parameter, match.group(0))

    def parameter(match: re.Match[str]) -> str:
        name = match.group(1)
        secret = unquote(name.lstrip("?")).strip().lower() in SECRET_PARAMETERS
        return f"{name}={REDACTED}" if secret else match.group(0)

    return QUERY.sub(query, text)


class Redacting(logging.Formatter):
    """Format with `inner`, then `redact` the whole line."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


class JsonFormatter(logging.Formatter):
    """Format a record as JSON with time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in STANDARD_ATTRIBUTES})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "info", fmt: str = "json") -> None:
    """Route the server's and uvicorn's loggers to stderr in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(Redacting(JsonFormatter() if fmt == "json" else
                                   logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")))
    for name in ("inference", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
