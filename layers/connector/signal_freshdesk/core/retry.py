"""The retry flow: re-deliver queued events, re-queue with backoff, park what cannot be delivered.

Partial batch answers go through Powertools' BatchProcessor: a record whose handling raises is reported
in `batchItemFailures` and comes back from SQS after its visibility timeout; the others are deleted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..observability import correlate, count, logger
from . import envelope
from .errors import QueueError
from .idempotency import IdempotencyGuard
from .model import Outcome, Result
from .pipeline import attempt_event, fitted, queue_or_park
from .ports import Runtime
from .report import report
from .timing import Deadline


class RecordReturned(Exception):
    """This record goes back to the queue (SQS re-delivers it after its visibility timeout)."""


def handle_retry_batch(
    event: Mapping[str, Any], runtime: Runtime, *, deadline: Deadline, context: Any = None
) -> dict[str, Any]:
    if not event.get("Records"):
        return {"batchItemFailures": []}
    settings = runtime.settings
    clock = runtime.clock
    # Past this point a record is not started: a Freshdesk call might not finish in time.
    start_by = deadline.earlier_by(settings.read_timeout)
    # Pacing waits of this invocation end by then: in-flight messages are not held for long.
    wait_until = Deadline(min(start_by.at, clock.monotonic() + settings.retry_pacing_max_wait_seconds), clock.monotonic)

    def handle_record(record: SQSRecord) -> None:
        # Too late to deliver: back to the queue by visibility timeout, unless pacing holds the call
        # anyway; then paced_attempt re-queues the event at once, delayed, without calling.
        if start_by.remaining() <= 0 and not runtime.rate.pacing_delay(settings.retry_rate_reserve):
            raise RecordReturned("no time left in this invocation")
        try:
            done = retry_record(record.raw_event, runtime, deadline=deadline, wait_until=wait_until)
        except Exception:
            logger.exception(
                "unexpected error in the retry function; the record returns to the queue",
                extra={"sqsMessageId": record.raw_event.get("messageId")},
            )
            raise
        if not done:
            raise RecordReturned("the event could not be secured")

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=dict(event), record_handler=handle_record, processor=processor, context=context)
    )


def retry_record(
    record: Mapping[str, Any], runtime: Runtime, *, deadline: Deadline, wait_until: Deadline | None = None
) -> bool:
    """Handle one SQS record. True when the record may be deleted (its event is final or secured again)."""
    parsed = envelope.parse_envelope(record.get("body"))
    if parsed is None:
        incomplete = envelope.parse_incomplete(record.get("body"))
        if incomplete is not None:
            return park_incomplete(incomplete, record, runtime)
        return park_unreadable(record, runtime)
    state = envelope.retry_state(parsed, now=runtime.clock.time())
    with correlate(state.message_id):
        guard = IdempotencyGuard(runtime.idempotency)
        if guard.handled_before(state.message_id, replay=state.replay):
            # SQS delivered this message again after it was handled: no second Freshdesk call.
            report(
                Result(state.message_id, Outcome.DROPPED, reason="already_handled", duplicate=True),
                message="retry processed",
                metric_prefix="retry_",
                attempts=state.attempts,
            )
            return True
        result = paced_attempt(state.event, runtime, deadline=deadline, wait_until=wait_until)
        made = state.attempts + int(result.attempted)
        secured = queue_or_park(state.event, result, runtime, attempts=made, first_seen=state.first_seen)
        guard.remember(state.message_id, secured)
        report(secured, message="retry processed", metric_prefix="retry_", attempts=made)
        return secured.outcome is not Outcome.FAILED


def paced_attempt(
    event: Mapping[str, Any], runtime: Runtime, *, deadline: Deadline, wait_until: Deadline | None = None
) -> Result:
    """attempt_event, once Freshdesk is up (or this event is the outage probe) and its rate budget allows
    a call.

    While Freshdesk is down (the last answers were 5xx, timeouts, connection errors: `OutageGate`), one
    event at a time probes it with its call; the others go back to the retry queue, delayed until the
    next probe may go, without calling Freshdesk (not an attempt). Once a probe is answered, delivery
    resumes for the events after it.

    While the budget of the current window is spent (RateBudget.pacing_delay), the function waits until
    `wait_until` at most (RETRY_PACING_MAX_WAIT_SECONDS into the invocation, and never past the time to
    start a call): a waiting invocation also keeps the event source from taking more of the backlog. What
    cannot wait that long goes back to the retry queue, delayed by the wait, without calling Freshdesk
    (not an attempt). Calling anyway would only buy a 429 and waste a call of the account's budget.
    After a 429 (the rate gate is closed), attempt_event re-queues by Retry-After as before.
    """
    outage = runtime.rate.outage
    hold = outage.admit(runtime.settings.retry_base_seconds)
    if hold > 0:
        return held_for_outage(event, runtime, deadline=deadline, hold=hold)
    result = _paced_by_budget(event, runtime, deadline=deadline, wait_until=wait_until)
    if not result.attempted:
        outage.release_probe()
    return result


def held_for_outage(event: Mapping[str, Any], runtime: Runtime, *, deadline: Deadline, hold: float) -> Result:
    """The event back to the queue without a call while another probes a Freshdesk that is down."""
    result = attempt_event(event, runtime, deadline=deadline, skip_delivery_reason="freshdesk_unavailable")
    if result.outcome is not Outcome.QUEUED:
        return result
    return replace(
        result,
        status=runtime.rate.outage.last_status,
        retry_after=math.ceil(hold),
        error="not sent: Freshdesk is down and another event probes it",
    )


def _paced_by_budget(
    event: Mapping[str, Any], runtime: Runtime, *, deadline: Deadline, wait_until: Deadline | None
) -> Result:
    reserve = runtime.settings.retry_rate_reserve
    wait = runtime.rate.pacing_delay(reserve)
    if wait > 0 and runtime.rate.rate_limited_for() <= 0:
        if wait_until is None:
            wait_until = deadline.earlier_by(runtime.settings.read_timeout)
        runtime.clock.sleep(max(0.0, min(wait, wait_until.remaining())))
        wait = runtime.rate.pacing_delay(reserve)
        if wait > 0:
            result = attempt_event(event, runtime, deadline=deadline, skip_delivery_reason="rate_limited")
            return replace(result, retry_after=math.ceil(wait)) if result.outcome is Outcome.QUEUED else result
    return attempt_event(event, runtime, deadline=deadline)


def park_unreadable(record: Mapping[str, Any], runtime: Runtime) -> bool:
    logger.error("retry message is not an envelope; parking it", extra={"sqsMessageId": record.get("messageId")})
    try:
        runtime.queues.park(fitted(envelope.unreadable_envelope(record.get("body"), now=runtime.clock.time())))
    except QueueError:
        return False
    count("unreadable_message")
    return True


def park_incomplete(parked: dict[str, Any], record: Mapping[str, Any], runtime: Runtime) -> bool:
    """An envelope that was too large for SQS and kept no event: nothing to deliver. Parked as unreadable,
    with its ids, attempts and last error, so the DLQ still says which event was lost and why."""
    message_id = str(parked.get("messageId") or "")
    with correlate(message_id):
        logger.error(
            "retry message kept no event (too large for SQS); parking it",
            extra={"messageId": message_id, "sqsMessageId": record.get("messageId")},
        )
        try:
            runtime.queues.park({**parked, "outcome": envelope.UNREADABLE})
        except QueueError:
            return False
        count("unreadable_message")
        return True
