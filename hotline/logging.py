"""Structured logging: one JSON object per line (or key=value for a console).

Log calls pass an event name as the message and context as ``extra``; personal data
(caller numbers, names, notes) must never be passed, only masked forms and ids.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

# Database errors quote the statement's values (SQLAlchemy's "[parameters: …]", PostgreSQL's
# "Key (column)=(value)"), which may be a caller's number or a note: never let them into a log.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
_PG_KEY_VALUE = re.compile(r"(Key \([^)]*\))=\((?:[^()]|\([^)]*\))*\)")


def redact(text: str) -> str:
    return _PG_KEY_VALUE.sub(r"\1=(hidden)", _SQL_PARAMETERS.sub("[parameters: hidden]", text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                data[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v!r}" for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")
        )
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += f" {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "httpx", "httpcore", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel("WARNING")
