"""The webhook flow: authenticate Signal's call, read one event or a batch, deliver, answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..observability import correlate, count, logger
from . import answers
from .errors import ConfigError, SecretUnavailable
from .idempotency import IdempotencyGuard
from .identity import IDENTIFIER_FIELDS, parse_timestamp
from .mapping import message_id_of, plan_event
from .model import Outcome, PlannedContact, Result
from .pipeline import attempt_event, queue_or_park
from .ports import Runtime
from .report import report
from .requests import BadRequest, parse_events, read_body, request_headers
from .settings import Settings
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
    """Every event of a batch, in order of the answer. Events of one person run one after another in
    timestamp order; different people run concurrently."""
    if len(events) == 1:
        return [process_one(events[0], runtime, deadline)]
    from concurrent.futures import ThreadPoolExecutor  # only batches need it: kept off the cold path

    lanes = person_lanes(events, runtime.settings)
    results: list[Result | None] = [None] * len(events)

    def run_lane(lane: list[int]) -> None:
        for index in lane:
            results[index] = process_one(events[index], runtime, deadline)

    workers = max(1, min(runtime.settings.batch_concurrency, len(lanes)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
        list(pool.map(run_lane, lanes))
    return [result for result in results if result is not None]


def person_lanes(events: list[Any], settings: Settings) -> list[list[int]]:
    """The batch's event indexes grouped by person, each group in the order to apply it.

    Events that share any identifier (user id, email, phone) are one person. Within a person, events
    with a readable timestamp are put in timestamp order in the places they hold; the others keep their
    place (arrival order).
    """
    parent = list(range(len(events)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    owner: dict[str, int] = {}
    stamps: list[str] = [""] * len(events)
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            continue
        plan = plan_event(
            event, region=settings.default_phone_region, consent_mode=settings.consent_mode, allow_withdrawal=True
        )
        if not isinstance(plan, PlannedContact):
            continue
        stamps[index] = plan.timestamp
        for field in IDENTIFIER_FIELDS:
            value = plan.contact.get(field)
            if not isinstance(value, str) or not value:
                continue
            identifier = f"{field}:{value.lower() if field == 'email' else value}"
            if identifier in owner:
                parent[root(index)] = root(owner[identifier])
            else:
                owner[identifier] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(events)):
        groups.setdefault(root(index), []).append(index)
    lanes = []
    for members in groups.values():
        timed = [i for i in members if parse_timestamp(stamps[i]) is not None]
        in_time_order = iter(sorted(timed, key=lambda i: parse_timestamp(stamps[i])))  # type: ignore[arg-type,return-value]
        timed_places = set(timed)
        lanes.append([next(in_time_order) if i in timed_places else i for i in members])
    return lanes


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
