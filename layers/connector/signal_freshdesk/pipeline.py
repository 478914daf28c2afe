"""One event end to end: plan, deliver, and secure what is not final (retry queue or DLQ)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Mapping

from .config import ConfigError
from .credentials import SecretUnavailable
from .delivery import Result, deliver_contact
from .observability import count, logger
from .outcomes import Outcome, backoff_delay
from .preset import Drop, message_id_of, plan_event, slim_event
from .runtime import Runtime
from .sqs import QueueError

ENVELOPE_VERSION = 1


def attempt_event(event: Mapping[str, Any], runtime: Runtime, *, deadline: float | None,
                  skip_delivery_reason: str = "") -> Result:
    """Plan and deliver one event. Nothing here touches SQS."""
    settings = runtime.settings
    plan = plan_event(event, region=settings.default_phone_region, consent_mode=settings.consent_mode)
    if isinstance(plan, Drop):
        return Result(plan.message_id, Outcome.DROPPED, reason=plan.reason.value)
    if skip_delivery_reason:
        return Result(plan.message_id, Outcome.QUEUED, reason=skip_delivery_reason)
    try:
        return deliver_contact(plan, client=runtime.freshdesk, credentials=runtime.credentials, deadline=deadline)
    except (ConfigError, SecretUnavailable) as exc:
        logger.error("credentials unavailable; event queued", extra={"messageId": plan.message_id, "error": str(exc)})
        return Result(plan.message_id, Outcome.QUEUED, reason="secret_unavailable", error=str(exc))


def make_envelope(event: Mapping[str, Any], result: Result, *, attempts: int, first_seen: float,
                  outcome: str) -> dict[str, Any]:
    """What the retry queue and the DLQ hold: the original event, so a replay maps it afresh."""
    return {
        "v": ENVELOPE_VERSION,
        "messageId": result.message_id or message_id_of(event),
        "outcome": outcome,
        "attempts": attempts,
        "first_seen": first_seen,
        "last_error": {
            "status": result.status,
            "reason": result.reason,
            "error": result.error,
            "body": result.freshdesk_body,
        },
        "event": slim_event(event),
    }


def secure(event: Mapping[str, Any], result: Result, runtime: Runtime, *, attempts: int,
           first_seen: float | None = None, now: float | None = None) -> Result:
    """Queue a retryable result (or park it once retries are exhausted); park a rejection.

    Returns the result unchanged when it is final, or with outcome FAILED when SQS refused it.
    `attempts` counts the delivery attempts made so far, this one included.
    """
    now = time.time() if now is None else now
    first_seen = now if first_seen is None else first_seen
    settings = runtime.settings
    try:
        if result.outcome is Outcome.QUEUED:
            exhausted = attempts >= settings.max_attempts or now - first_seen >= settings.max_retry_age_seconds
            if exhausted:
                runtime.queues.park(make_envelope(event, result, attempts=attempts, first_seen=first_seen,
                                                  outcome="exhausted"))
                return replace(result, outcome=Outcome.REJECTED, reason="retries_exhausted")
            delay = backoff_delay(attempts, result.retry_after, base=settings.retry_base_seconds)
            runtime.queues.send_retry(make_envelope(event, result, attempts=attempts, first_seen=first_seen,
                                                    outcome="queued"), delay)
            return replace(result, retry_after=delay)
        if result.outcome is Outcome.REJECTED:
            runtime.queues.park(make_envelope(event, result, attempts=attempts, first_seen=first_seen,
                                              outcome="rejected"))
    except QueueError as exc:
        logger.error("event could not be secured", extra={"messageId": result.message_id, "error": str(exc)})
        return replace(result, outcome=Outcome.FAILED, error=str(exc))
    return result


def idempotency_summary(result: Result) -> dict[str, Any]:
    """What the idempotency record keeps of an outcome: ids and statuses, never contact data."""
    return {"outcome": result.outcome.value, "status": result.status, "contact_id": result.contact_id,
            "reason": result.reason}


def result_from_summary(message_id: str, summary: dict[str, Any]) -> Result:
    try:
        outcome = Outcome(summary.get("outcome"))
    except ValueError:
        outcome = Outcome.QUEUED
    status = summary.get("status")
    contact_id = summary.get("contact_id")
    return Result(message_id, outcome, status if isinstance(status, int) else None,
                  reason=str(summary.get("reason") or ""),
                  contact_id=contact_id if isinstance(contact_id, int) else None, duplicate=True)


def report(result: Result, *, message: str, metric_prefix: str = "", attempts: int | None = None) -> None:
    """One log line per event (ids and outcome, never contact data) and its metrics."""
    extra: dict[str, Any] = {"messageId": result.message_id, "outcome": result.outcome.value,
                             "status": result.status, "reason": result.reason}
    if attempts is not None:
        extra["attempts"] = attempts
    if result.duplicate:
        extra["duplicate"] = True
        count("duplicate")
    if result.dropped_fields:
        logger.warning("Freshdesk refused optional fields; delivered without them",
                       extra={**extra, "fields": list(result.dropped_fields)})
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
