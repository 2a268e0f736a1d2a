"""JSON logs: one event per line on stdout, for journald and the audit trail."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object; structured fields come from ``extra={"fields": …}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update(getattr(record, _FIELDS, {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Route every logger (uvicorn's too) through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def log_event(
    logger: logging.Logger, event: str, level: int = logging.INFO, /, **fields: Any
) -> None:
    """Emit one structured event; ``fields`` become top-level JSON keys."""
    logger.log(level, event, extra={_FIELDS: fields})


def log_exception(logger: logging.Logger, event: str, /, **fields: Any) -> None:
    """Like ``log_event`` at ERROR, with the current exception's traceback (for the logs only)."""
    logger.exception(event, extra={_FIELDS: fields})
