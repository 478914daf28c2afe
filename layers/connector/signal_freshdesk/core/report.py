"""One log line per event (ids and outcome, never contact data) and its metrics."""

from __future__ import annotations

from typing import Any

from ..observability import count, logger
from .model import Outcome, Result


def report(result: Result, *, message: str, metric_prefix: str = "", attempts: int | None = None) -> None:
    extra: dict[str, Any] = {
        "messageId": result.message_id,
        "outcome": result.outcome.value,
        "status": result.status,
        "reason": result.reason,
    }
    if attempts is not None:
        extra["attempts"] = attempts
    if result.duplicate:
        extra["duplicate"] = True
        count("duplicate")
    if result.dropped_fields:
        logger.warning(
            "Freshdesk refused optional fields; delivered without them",
            extra={**extra, "fields": list(result.dropped_fields)},
        )
        for name in result.dropped_fields:
            count(f"invalid_field_dropped_{name}")
    if result.warning:
        logger.warning(result.warning, extra=extra)
    if result.error:
        extra["error"] = result.error
    logger.info(message, extra=extra)
    count(f"{metric_prefix}{result.outcome.value}")
    if result.outcome is Outcome.DROPPED:
        count(f"dropped_{result.reason}")
    if result.reason == "retries_exhausted":
        count("retries_exhausted")
