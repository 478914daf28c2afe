"""The webhook flow: authenticate Signal's call, read one event or a batch, deliver, answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..observability import correlate, count, logger
from . import answers
from .errors import ConfigError, SecretUnavailable
from .idempotency import IdempotencyGuard
from .mapping import message_id_of
from .model import Outcome, Result
from .pipeline import attempt_event, queue_or_park
from .ports import Runtime
from .report import report
from .requests import BadRequest, parse_events, read_body, request_headers
from .timing import Deadline
from .webhook_auth import check_bearer_token, check_signature


def configuration_failed(exc: Exception) -> dict[str, Any]:
    """The answer when the settings or the secret cannot be used: 503, so Signal retries later."""
    logger.error("connector is not configured or its secret is unreadable", extra={"error": str(exc)})
    count("config_error")
    return answers.not_configured()


def handle_webhook(event: Mapping[str, Any], runtime: Runtime, *, deadline: Deadline) -> dict[str, Any]:
    try:
        creds = runtime.credentials.get()
    except (ConfigError, SecretUnavailable) as exc:
        return configuration_failed(exc)

    settings = runtime.settings
    headers = request_headers(event)
    denial = check_bearer_token(headers, creds.webhook_token)
    if denial:
        count("unauthorized")
        return answers.unauthorized(denial)

    try:
        body = read_body(event, settings.max_body_bytes)
        if creds.signing_secret:
            denial = check_signature(
                headers,
                body,
                creds.signing_secret,
                now=runtime.clock.time(),
                signature_header=settings.signature_header,
                timestamp_header=settings.timestamp_header,
                tolerance_seconds=settings.signature_tolerance_seconds,
            )
            if denial:
                count("unauthorized")
                return answers.unauthorized(denial)
        events, is_batch = parse_events(body, settings.max_batch_events)
    except BadRequest as exc:
        count("bad_request")
        return answers.bad_request(exc.status, exc.message)

    results = process_events(events, runtime, deadline=deadline)
    for result in results:
        report(result, message="event processed")
    return answers.batch_answer(results) if is_batch else answers.single_answer(results[0])


def process_events(events: list[Any], runtime: Runtime, *, deadline: Deadline) -> list[Result]:
    if len(events) == 1:
        return [process_one(events[0], runtime, deadline)]
    from concurrent.futures import ThreadPoolExecutor  # only batches need it: kept off the cold path

    workers = max(1, min(runtime.settings.batch_concurrency, len(events)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
        return list(pool.map(lambda item: process_one(item, runtime, deadline), events))


def process_one(event: Any, runtime: Runtime, deadline: Deadline) -> Result:
    if not isinstance(event, dict):
        # Refused, not accepted: the answer says so and nothing is parked.
        return Result(
            "",
            Outcome.REJECTED,
            400,
            reason="not_an_event",
            error=f"each event must be a JSON object, not {type(event).__name__}",
        )
    message_id = message_id_of(event)
    timing = runtime.settings.timing
    with correlate(message_id):
        guard = IdempotencyGuard(runtime.idempotency)
        ticket = guard.begin(message_id, hold_seconds=deadline.remaining() + timing.ingest_reserve_seconds)
        if ticket.earlier is not None:
            return ticket.earlier
        late = "" if deadline.has(timing.min_delivery_window_seconds) else "deadline"
        try:
            result = attempt_event(event, runtime, deadline=deadline, skip_delivery_reason=late)
        except Exception:  # a bug must not lose the event: queue it for the retry function
            logger.exception("unexpected error while delivering; queueing the event", extra={"messageId": message_id})
            result = Result(message_id, Outcome.QUEUED, reason="internal_error")
        result = queue_or_park(event, result, runtime, attempts=int(result.attempted))
        guard.finish(ticket, result)
        return result
