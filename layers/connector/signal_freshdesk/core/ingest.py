"""The webhook flow: authenticate Signal's call, read one event or a batch, deliver, answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..observability import correlate, count, logger
from . import answers
from .errors import ConfigError, SecretUnavailable
from .idempotency import MAX_MESSAGE_ID_LENGTH, IdempotencyGuard, event_digest, first_use, forget_use
from .identity import parse_timestamp, person_identifiers
from .mapping import message_id_of
from .model import Drop, Outcome, PlannedCompany, PlannedContact, Result
from .pipeline import attempt_event, plan_for, queue_or_park
from .ports import Runtime
from .report import report
from .requests import BadRequest, parse_events, read_body, request_headers
from .timing import Deadline
from .webhook_auth import check_bearer_token, missing_bearer_token, verify_signature


def configuration_failed(exc: Exception) -> dict[str, Any]:
    """The answer when the settings or the secret cannot be used: 503, so Signal retries later."""
    logger.error("connector is not configured or its secret is unreadable", extra={"error": str(exc)})
    count("config_error")
    return answers.not_configured()


def handle_webhook(event: Mapping[str, Any], runtime: Runtime, *, deadline: Deadline) -> dict[str, Any]:
    headers = request_headers(event)
    # No bearer token at all: refused before the secret is read (no Secrets Manager call, no 503).
    denial = missing_bearer_token(headers)
    if denial:
        count("unauthorized")
        return answers.unauthorized(denial)
    try:
        creds = runtime.credentials.get()
    except (ConfigError, SecretUnavailable) as exc:
        return configuration_failed(exc)

    settings = runtime.settings
    denial = check_bearer_token(headers, creds.webhook_token)
    if denial:
        count("unauthorized")
        return answers.unauthorized(denial)

    admitted_signature = ""
    try:
        body = read_body(event, settings.max_body_bytes)
        if creds.signing_secret:
            now = runtime.clock.time()
            check = verify_signature(
                headers,
                body,
                creds.signing_secret,
                now=now,
                signature_header=settings.signature_header,
                timestamp_header=settings.timestamp_header,
                tolerance_seconds=settings.signature_tolerance_seconds,
            )
            if check.refusal:
                count("unauthorized")
                return answers.unauthorized(check.refusal)
            if not first_use(runtime.idempotency, check.replay_key, hold_seconds=check.fresh_for, now=now):
                count("unauthorized")
                count("signature_replayed")
                return answers.unauthorized(
                    "this signature was already used: a signed request is admitted once (sign each delivery "
                    "with a fresh timestamp)"
                )
            admitted_signature = check.replay_key
        events, is_batch = parse_events(body, settings.max_batch_events)
    except BadRequest as exc:
        count("bad_request")
        return answers.bad_request(exc.status, exc.message)

    results = process_events(events, runtime, deadline=deadline)
    for result in results:
        report(result, message="event processed")
    answer = answers.batch_answer(results) if is_batch else answers.single_answer(results[0])
    if admitted_signature and answer["statusCode"] >= 500:
        # Signal re-sends what failed, possibly byte for byte: that re-send must not be refused as a replay.
        forget_use(runtime.idempotency, admitted_signature)
    return answer


@dataclass(frozen=True)
class Admission:
    """What is known of one element of the body before it is handled."""

    message_id: str = ""
    digest: str = ""  # event_digest, for events with a messageId
    reused: bool = False  # an earlier, different event of this batch has the same messageId
    repeat_of: int | None = None  # the index of the same event earlier in this batch
    refused: Result | None = None  # not accepted at all: the answer says why, nothing is parked


def admit(events: list[Any]) -> list[Admission]:
    """Refuse what is not an event or has a messageId over 128 characters; tell the same event sent
    twice in one batch (answered once) from different events sharing a messageId (each handled)."""
    admissions: list[Admission] = []
    firsts: dict[str, dict[str, int]] = {}  # messageId -> digest -> index of its first event
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            error = f"each event must be a JSON object, not {type(event).__name__}"
            admissions.append(Admission(refused=Result("", Outcome.REJECTED, 400, reason="not_an_event", error=error)))
            continue
        raw = event.get("messageId")
        if isinstance(raw, (str, int)) and not isinstance(raw, bool) and len(str(raw)) > MAX_MESSAGE_ID_LENGTH:
            error = (
                f"the messageId is {len(str(raw))} characters long; at most {MAX_MESSAGE_ID_LENGTH} are accepted "
                "(a shortened id could match another event's)"
            )
            admissions.append(
                Admission(refused=Result("", Outcome.REJECTED, 400, reason="message_id_too_long", error=error))
            )
            continue
        message_id = message_id_of(event)
        if not message_id:  # cannot be recognised again: always handled
            admissions.append(Admission())
            continue
        digest = event_digest(event)
        seen = firsts.setdefault(message_id, {})
        if digest in seen:
            admissions.append(Admission(message_id, digest, repeat_of=seen[digest]))
            continue
        admissions.append(Admission(message_id, digest, reused=bool(seen)))
        seen[digest] = index
    return admissions


def process_events(events: list[Any], runtime: Runtime, *, deadline: Deadline) -> list[Result]:
    """Every event of a batch, in order of the answer. Events of one person (or company) run one after
    another in timestamp order; different people run concurrently, after the batch's group events. The
    same event twice is handled once, and the repeat answered from the first (marked duplicate)."""
    admissions = admit(events)
    results: list[Result | None] = [admission.refused for admission in admissions]
    handled = [i for i, admission in enumerate(admissions) if admission.refused is None and admission.repeat_of is None]
    if len(handled) == 1:
        results[handled[0]] = process_one(events[handled[0]], runtime, deadline, admissions[handled[0]])
    elif handled:
        from concurrent.futures import ThreadPoolExecutor  # only batches need it: kept off the cold path

        # Planned once: the lanes need each event's person, and delivery the same plan.
        wanted = set(handled)
        plans: list[PlannedContact | PlannedCompany | Drop | None] = [
            plan_for(event, runtime.settings) if i in wanted else None for i, event in enumerate(events)
        ]
        lanes = [lane for lane in person_lanes(plans) if lane]
        # Companies first: a contact naming the group a group event of this batch describes finds it.
        companies = [lane for lane in lanes if isinstance(plans[lane[0]], PlannedCompany)]
        people = [lane for lane in lanes if not isinstance(plans[lane[0]], PlannedCompany)]

        def run_lane(lane: list[int]) -> None:
            for index in lane:
                results[index] = process_one(events[index], runtime, deadline, admissions[index], plans[index])

        workers = max(1, min(runtime.settings.batch_concurrency, len(lanes)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
            for phase in (companies, people):
                list(pool.map(run_lane, phase))
    for index, admission in enumerate(admissions):
        if admission.repeat_of is not None:
            first = results[admission.repeat_of]
            if first is not None:
                results[index] = replace(first, duplicate=True)
    return [result for result in results if result is not None]


def person_lanes(plans: list[PlannedContact | PlannedCompany | Drop | None]) -> list[list[int]]:
    """The indexes of a batch's planned events (None: not handled here) grouped by person, each group in
    the order to apply it.

    Events that share any identifier (user id, email, phone) are one person. Within a person, events
    with a readable timestamp are put in timestamp order in the places they hold; the others keep their
    place (arrival order).
    """
    parent = list(range(len(plans)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    owner: dict[str, int] = {}
    stamps: list[str] = [""] * len(plans)
    for index, plan in enumerate(plans):
        if not isinstance(plan, (PlannedContact, PlannedCompany)):
            continue
        stamps[index] = plan.timestamp
        identifiers = (
            [plan.person]
            if isinstance(plan, PlannedCompany)
            else [
                f"{field}:{plan.contact[field].lower() if field == 'email' else plan.contact[field]}"
                for field in person_identifiers(plan.contact)
            ]
        )
        for identifier in identifiers:
            if identifier in owner:
                parent[root(index)] = root(owner[identifier])
            else:
                owner[identifier] = index
    groups: dict[int, list[int]] = {}
    for index, plan in enumerate(plans):
        if plan is not None:
            groups.setdefault(root(index), []).append(index)
    lanes = []
    for members in groups.values():
        timed = [i for i in members if parse_timestamp(stamps[i]) is not None]
        in_time_order = iter(sorted(timed, key=lambda i: parse_timestamp(stamps[i])))  # type: ignore[arg-type,return-value]
        timed_places = set(timed)
        lanes.append([next(in_time_order) if i in timed_places else i for i in members])
    return lanes


def process_one(
    event: dict[str, Any],
    runtime: Runtime,
    deadline: Deadline,
    admission: Admission,
    plan: PlannedContact | PlannedCompany | Drop | None = None,
) -> Result:
    message_id = admission.message_id
    timing = runtime.settings.timing
    with correlate(message_id):
        guard = IdempotencyGuard(runtime.idempotency)
        ticket = guard.begin(
            message_id,
            digest=admission.digest,
            reused=admission.reused,
            hold_seconds=deadline.remaining() + timing.ingest_reserve_seconds,
        )
        if ticket.earlier is not None:
            return ticket.earlier
        if ticket.reused:
            logger.warning(
                "another event already used this messageId; handled as a new event", extra={"messageId": message_id}
            )
            count("message_id_reused")
        late = "" if deadline.has(timing.min_delivery_window_seconds) else "deadline"
        try:
            result = attempt_event(event, runtime, deadline=deadline, skip_delivery_reason=late, plan=plan)
        except Exception:  # a bug must not lose the event: queue it for the retry function
            logger.exception("unexpected error while delivering; queueing the event", extra={"messageId": message_id})
            result = Result(message_id, Outcome.QUEUED, reason="internal_error")
        if ticket.key and ticket.key != message_id:
            # The envelope names the event by its record key, so the retry function finds its record.
            result = replace(result, message_id=ticket.key)
        result = queue_or_park(event, result, runtime, attempts=int(result.attempted))
        result = replace(result, message_id=message_id)
        guard.finish(ticket, result)
        return result
