"""The retry side: re-deliver queued events, re-queue with backoff, park what cannot be delivered."""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from typing import Any, Mapping

from .observability import count, logger
from .outcomes import Outcome
from .delivery import Result
from .idempotency import DONE, HANDLED_OUTCOMES, StoreUnavailable
from .pipeline import attempt_event, idempotency_summary, report, secure
from .runtime import Runtime, get_runtime
from .sqs import QueueError

# Keep this much of the function's time in hand; records not started by then go back to the queue.
TIME_RESERVE_SECONDS = 5.0


def handle_retry_batch(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    runtime = get_runtime()
    records = event.get("Records") or []
    failures: list[dict[str, str]] = []
    deadline = _deadline(context, runtime)
    start_by = deadline - runtime.settings.read_timeout
    # Pacing waits of this invocation end by then: in-flight messages are not held for long.
    wait_until = min(start_by, time.monotonic() + runtime.settings.retry_pacing_max_wait_seconds)
    for record in records:
        sqs_message_id = str(record.get("messageId", ""))
        # Too late to deliver: back to the queue by visibility timeout, unless pacing holds the call
        # anyway; then paced_attempt re-queues the event at once, delayed, without calling.
        if time.monotonic() >= start_by and not runtime.freshdesk.pacing_delay(runtime.settings.retry_rate_reserve):
            failures.append({"itemIdentifier": sqs_message_id})
            continue
        try:
            ok = retry_record(record, runtime, deadline=deadline, wait_until=wait_until)
        except Exception:
            logger.exception("unexpected error in the retry function; the record returns to the queue",
                             extra={"sqsMessageId": sqs_message_id})
            ok = False
        if not ok:
            failures.append({"itemIdentifier": sqs_message_id})
    return {"batchItemFailures": failures}


def retry_record(record: Mapping[str, Any], runtime: Runtime, *, deadline: float,
                 wait_until: float | None = None) -> bool:
    """Handle one SQS record. True when the record may be deleted (its event is final or secured again)."""
    envelope = parse_envelope(record.get("body"))
    if envelope is None:
        return park_unreadable(record, runtime)
    event = envelope["event"]
    attempts = int(envelope.get("attempts") or 0)
    first_seen = float(envelope.get("first_seen") or time.time())
    message_id = str(envelope.get("messageId") or "")
    if already_handled(runtime, message_id, envelope):
        # SQS delivered this message again after it was handled: no second Freshdesk call.
        report(Result(message_id, Outcome.DROPPED, reason="already_handled", duplicate=True),
               message="retry processed", metric_prefix="retry_", attempts=attempts)
        return True
    result = paced_attempt(event, runtime, deadline=deadline, wait_until=wait_until)
    made = attempts + int(result.attempted)
    secured = secure(event, result, runtime, attempts=made, first_seen=first_seen)
    if secured.outcome is not Outcome.FAILED and runtime.idempotency is not None and message_id:
        try:
            runtime.idempotency.complete(message_id, idempotency_summary(secured))
        except StoreUnavailable as exc:
            logger.warning("idempotency record not written", extra={"messageId": message_id, "error": str(exc)})
    report(secured, message="retry processed", metric_prefix="retry_", attempts=made)
    return secured.outcome is not Outcome.FAILED


def paced_attempt(event: Mapping[str, Any], runtime: Runtime, *, deadline: float,
                  wait_until: float | None = None) -> Result:
    """attempt_event, once Freshdesk's rate budget allows a call (FreshdeskClient.pacing_delay).

    While the budget of the current window is spent, the function waits until `wait_until` at most
    (RETRY_PACING_MAX_WAIT_SECONDS into the invocation, and never past the time to start a call): a
    waiting invocation also keeps the event source from taking more of the backlog. What cannot wait
    that long goes back to the retry queue, delayed by the wait, without calling Freshdesk (not an
    attempt). Calling anyway would only buy a 429 and waste a call of the account's budget.
    After a 429 (the rate gate is closed), attempt_event re-queues by Retry-After as before.
    """
    wait = runtime.freshdesk.pacing_delay(runtime.settings.retry_rate_reserve)
    if wait > 0 and runtime.freshdesk.rate_limited_for() <= 0:
        if wait_until is None:
            wait_until = deadline - runtime.settings.read_timeout
        time.sleep(max(0.0, min(wait, wait_until - time.monotonic())))
        wait = runtime.freshdesk.pacing_delay(runtime.settings.retry_rate_reserve)
        if wait > 0:
            result = attempt_event(event, runtime, deadline=deadline, skip_delivery_reason="rate_limited")
            return replace(result, retry_after=math.ceil(wait)) if result.outcome is Outcome.QUEUED else result
    return attempt_event(event, runtime, deadline=deadline)


def already_handled(runtime: Runtime, message_id: str, envelope: Mapping[str, Any]) -> bool:
    """Whether SQS is delivering again a message whose event was already taken to a final state.

    A rejection counts only for a message that was queued for retry: an envelope that says `rejected`
    or `exhausted` was parked and comes back from the DLQ on purpose (a replay), so it is tried again.
    """
    if runtime.idempotency is None or not message_id:
        return False
    try:
        claim = runtime.idempotency.read(message_id)
    except StoreUnavailable:
        return False
    if not claim or claim.state != DONE:
        return False
    outcome = (claim.summary or {}).get("outcome")
    replay = envelope.get("outcome") in ("rejected", "exhausted")
    return outcome in HANDLED_OUTCOMES or (outcome == "rejected" and not replay)


def parse_envelope(body: Any) -> dict[str, Any] | None:
    try:
        envelope = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("event"), dict):
        return None
    return envelope


def park_unreadable(record: Mapping[str, Any], runtime: Runtime) -> bool:
    logger.error("retry message is not an envelope; parking it", extra={"sqsMessageId": record.get("messageId")})
    envelope = {"v": 1, "messageId": "", "outcome": "unreadable", "attempts": 0, "first_seen": time.time(),
                "last_error": {"status": None, "reason": "unreadable_message", "error": "", "body": None},
                "raw": record.get("body")}
    try:
        runtime.queues.park(envelope)
    except QueueError:
        return False
    count("unreadable_message")
    return True


def _deadline(context: Any, runtime: Runtime) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = remaining() / 1000 if callable(remaining) else 60.0
    return time.monotonic() + max(0.0, budget - TIME_RESERVE_SECONDS)

