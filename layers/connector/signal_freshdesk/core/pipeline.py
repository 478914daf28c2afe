"""One event end to end: plan it, deliver it, and queue or park what is not final."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..observability import count, logger
from . import envelope
from .backoff import backoff_delay
from .companies import deliver_company
from .delivery import deliver_contact
from .errors import ConfigError, QueueError, SecretUnavailable
from .mapping import plan_event
from .model import Drop, Outcome, PlannedCompany, PlannedContact, Result
from .ports import Runtime
from .settings import Settings
from .timing import Deadline


def plan_for(event: Mapping[str, Any], settings: Settings) -> PlannedContact | PlannedCompany | Drop:
    """The mapping's decision for an event under these settings."""
    return plan_event(
        event,
        region=settings.default_phone_region,
        consent_mode=settings.consent_mode,
        allow_withdrawal=True,
        mapping=settings.mapping,
    )


def attempt_event(
    event: Mapping[str, Any],
    runtime: Runtime,
    *,
    deadline: Deadline | None,
    skip_delivery_reason: str = "",
    plan: PlannedContact | PlannedCompany | Drop | None = None,
) -> Result:
    """Plan (unless `plan` is given) and deliver one event. Nothing here touches SQS.

    With `skip_delivery_reason` the event is planned (a drop is still final) but not sent: it is queued
    with that reason.
    """
    settings = runtime.settings
    if plan is None:
        plan = plan_for(event, settings)
    if isinstance(plan, Drop):
        return Result(plan.message_id, Outcome.DROPPED, reason=plan.reason.value)
    if skip_delivery_reason:
        return Result(plan.message_id, Outcome.QUEUED, reason=skip_delivery_reason)
    try:
        if isinstance(plan, PlannedCompany):
            return deliver_company(plan, runtime, deadline=deadline)
        return deliver_contact(
            plan,
            freshdesk=runtime.freshdesk,
            credentials=runtime.credentials,
            rate=runtime.rate,
            deadline=deadline,
            identity_map=runtime.identity_map,
            create_when_withdrawn=settings.consent_mode == "tag_only",
        )
    except (ConfigError, SecretUnavailable) as exc:
        logger.error("credentials unavailable; event queued", extra={"messageId": plan.message_id, "error": str(exc)})
        return Result(plan.message_id, Outcome.QUEUED, reason="secret_unavailable", error=str(exc))


def queue_or_park(
    event: Mapping[str, Any], result: Result, runtime: Runtime, *, attempts: int, first_seen: float | None = None
) -> Result:
    """Send a queued result to the retry queue (or park it once retries are exhausted); park a rejection.

    Returns the result unchanged when it is final, or with outcome FAILED when SQS refused it.
    `attempts` counts the delivery attempts made so far, this one included.
    """
    now = runtime.clock.time()
    first_seen = now if first_seen is None else first_seen
    settings = runtime.settings
    try:
        if result.outcome is Outcome.QUEUED:
            exhausted = attempts >= settings.max_attempts or now - first_seen >= settings.max_retry_age_seconds
            if exhausted:
                runtime.queues.park(
                    fitted(
                        envelope.make_envelope(
                            event, result, attempts=attempts, first_seen=first_seen, outcome=envelope.EXHAUSTED
                        )
                    )
                )
                return replace(result, outcome=Outcome.REJECTED, reason="retries_exhausted")
            delay = backoff_delay(attempts, result.retry_after, base=settings.retry_base_seconds)
            runtime.queues.send_retry(
                fitted(
                    envelope.make_envelope(
                        event, result, attempts=attempts, first_seen=first_seen, outcome=envelope.QUEUED
                    )
                ),
                delay,
            )
            return replace(result, retry_after=delay)
        if result.outcome is Outcome.REJECTED:
            runtime.queues.park(
                fitted(
                    envelope.make_envelope(
                        event, result, attempts=attempts, first_seen=first_seen, outcome=envelope.REJECTED
                    )
                )
            )
    except QueueError as exc:
        logger.error("event could not be secured", extra={"messageId": result.message_id, "error": str(exc)})
        return replace(result, outcome=Outcome.FAILED, error=str(exc))
    return result


def fitted(message: dict[str, Any]) -> dict[str, Any]:
    """The envelope reduced to fit one SQS message, if it must be (envelope.sqs_message): secured smaller
    rather than refused by SQS, which would fail the event and have Signal send it again and again."""
    sent = envelope.sqs_message(message)
    if sent.reduced:
        kept = not envelope.is_incomplete(sent.envelope)
        logger.warning(
            "envelope too large for SQS; reduced" + ("" if kept else ", without the event"),
            extra={"messageId": message.get("messageId"), "event_kept": kept},
        )
        count("envelope_reduced")
    return sent.envelope
