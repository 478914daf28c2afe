"""Capturing the connector's log records, for the demo, serve and the reliability ledger.

The connector logs through the standard logger named "signal-freshdesk" (Powertools' Logger writes
it to stdout as JSON). A record's message is a fixed text ("event processed", "retry processed", a
warning's text) and its extras carry ids, outcomes and reasons, never contact data.

A `LogCapture` attached to that logger hands each record to a function of the tool's choosing; what
the function returns, unless None, is kept in `records`. `processed_summary` (the demo) and
`record_fields` (the ledger) are two such functions; serve prints a line per record instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import IO, Any, TypeVar

LOGGER_NAME = "signal-freshdesk"
PROCESSED_MESSAGES = ("event processed", "retry processed")

T = TypeVar("T")


def connector_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


class LogCapture[T](logging.Handler):
    """A handler for the connector's logger: `take(record)` for each record at `level` or above.

    With `contain_errors`, an exception raised by `take` is reported by logging (handleError) instead
    of reaching the code that logged: a printing problem must never break a handler.
    """

    def __init__(
        self, take: Callable[[logging.LogRecord], T | None], *, level: int = logging.INFO, contain_errors: bool = False
    ) -> None:
        super().__init__(level=level)
        self.take = take
        self.contain_errors = contain_errors
        self.records: list[T] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.contain_errors:
            try:
                kept = self.take(record)
            except Exception:
                self.handleError(record)
                return
        else:
            kept = self.take(record)
        if kept is not None:
            self.records.append(kept)

    def attach(self) -> LogCapture[T]:
        connector_logger().addHandler(self)
        return self

    def detach(self) -> None:
        connector_logger().removeHandler(self)


def is_processed(record: logging.LogRecord) -> bool:
    """An "event processed" (ingest) or "retry processed" (retry) record: one per event handled."""
    return record.getMessage() in PROCESSED_MESSAGES


def processed_summary(record: logging.LogRecord) -> dict[str, Any] | None:
    """A processed record's messageId, outcome, status and reason (None where absent); None for any other."""
    if not is_processed(record):
        return None
    return {k: getattr(record, k, None) for k in ("messageId", "outcome", "status", "reason")}


RECORD_FIELDS = ("messageId", "outcome", "status", "reason", "duplicate", "attempts", "error", "sqsMessageId")


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Every record: its message and level, and those of RECORD_FIELDS it carries."""
    entry: dict[str, Any] = {"message": record.getMessage(), "level": record.levelname}
    for name in RECORD_FIELDS:
        if hasattr(record, name):
            entry[name] = getattr(record, name)
    return entry


StreamSwap = list[tuple[logging.StreamHandler, Any]]


def redirect_streams(stream: IO[str]) -> StreamSwap:
    """Point the connector's stream handlers (its stdout JSON lines; not file handlers) at `stream`."""
    return [
        (handler, handler.setStream(stream))
        for handler in connector_logger().handlers
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
    ]


def restore_streams(saved: StreamSwap) -> None:
    for handler, stream in saved:
        handler.setStream(stream)
