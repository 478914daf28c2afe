"""The ingest side: authenticate Signal's webhook call, read one event or a batch, answer per SPEC."""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any, Mapping

from .config import ConfigError
from .credentials import SecretUnavailable
from .delivery import Result
from .observability import count, logger
from .outcomes import Outcome
from .idempotency import DONE, IN_PROGRESS, StoreUnavailable
from .pipeline import attempt_event, idempotency_summary, report, result_from_summary, secure
from .preset import message_id_of
from .runtime import Runtime, get_runtime
from .webhook_auth import check_bearer_token, check_signature

JSON_HEADERS = {"Content-Type": "application/json"}
# Below this much time to the deadline an event is queued instead of sent to Freshdesk.
MIN_DELIVERY_WINDOW = 1.5


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def http_answer(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": dict(JSON_HEADERS),
            "body": json.dumps(body, separators=(",", ":"), default=str)}


def handle_webhook(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    started = time.monotonic()
    try:
        runtime = get_runtime()
        creds = runtime.credentials.get()
    except (ConfigError, SecretUnavailable) as exc:
        logger.error("connector is not configured or its secret is unreadable", extra={"error": str(exc)})
        count("config_error")
        return http_answer(503, {"outcome": "error",
                                 "message": "the connector cannot read its configuration; see the ingest function's logs"})

    settings = runtime.settings
    headers = _headers(event)
    denial = check_bearer_token(headers, creds.webhook_token)
    if denial:
        count("unauthorized")
        return http_answer(401, {"outcome": "unauthorized", "message": denial})

    try:
        body = read_body(event, settings.max_body_bytes)
        if creds.signing_secret:
            denial = check_signature(headers, body, creds.signing_secret, now=time.time(),
                                     signature_header=settings.signature_header,
                                     timestamp_header=settings.timestamp_header,
                                     tolerance_seconds=settings.signature_tolerance_seconds)
            if denial:
                count("unauthorized")
                return http_answer(401, {"outcome": "unauthorized", "message": denial})
        events, is_batch = parse_events(body, settings.max_batch_events)
    except BadRequest as exc:
        count("bad_request")
        return http_answer(exc.status, {"outcome": "bad_request", "message": exc.message})

    deadline = started + _time_budget(context, runtime)
    results = process_events(events, runtime, deadline=deadline)
    for result in results:
        report(result, message="event processed")
    if is_batch:
        return batch_answer(results)
    return single_answer(results[0])


def read_body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The raw request body as API Gateway received it (base64 undone), bounded in size."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest(400, "the request has no body: send one Signal event or a batch as JSON")
    if not isinstance(raw, str):
        raise BadRequest(400, "the request body must be text")
    if len(raw) > max_bytes * 4 // 3 + 4:
        raise BadRequest(413, f"the body is larger than {max_bytes} bytes")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(400, "the body is marked base64 but is not valid base64") from None
    else:
        data = raw.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise BadRequest(413, f"the body is larger than {max_bytes} bytes")
    return data


def parse_events(data: bytes, max_events: int) -> tuple[list[Any], bool]:
    """One event or a batch from the body. Returns (events, is_batch)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "the body is not UTF-8 text") from None
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise BadRequest(400, "the body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts
        raise BadRequest(400, f"the body's JSON holds a value that cannot be read ({exc})"[:300]) from None
    if isinstance(parsed, dict) and "batch" in parsed:
        parsed = parsed["batch"]
        if not isinstance(parsed, list):
            raise BadRequest(400, "'batch' must be an array of events")
    if isinstance(parsed, list):
        if not parsed:
            raise BadRequest(400, "the batch holds no events")
        if len(parsed) > max_events:
            raise BadRequest(413, f"the batch holds {len(parsed)} events; at most {max_events} are accepted per request")
        return parsed, True
    if isinstance(parsed, dict):
        return [parsed], False
    raise BadRequest(400, f"the body must be a JSON object (one event) or an array (a batch), not {type(parsed).__name__}")


def process_events(events: list[Any], runtime: Runtime, *, deadline: float) -> list[Result]:
    if len(events) == 1:
        return [process_one(events[0], runtime, deadline)]
    from concurrent.futures import ThreadPoolExecutor  # only batches need it: kept off the cold path

    workers = max(1, min(runtime.settings.batch_concurrency, len(events)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
        return list(pool.map(lambda item: process_one(item, runtime, deadline), events))


def process_one(event: Any, runtime: Runtime, deadline: float) -> Result:
    if not isinstance(event, dict):
        # Refused, not accepted: the answer says so and nothing is parked.
        return Result("", Outcome.REJECTED, 400, reason="not_an_event",
                      error=f"each event must be a JSON object, not {type(event).__name__}")
    message_id = message_id_of(event)
    store = runtime.idempotency if message_id else None
    if store is not None:
        try:
            claim = store.claim(message_id, hold_seconds=deadline - time.monotonic()
                                + runtime.settings.deadline_margin_seconds)
        except StoreUnavailable as exc:
            logger.warning("idempotency store unavailable; processing without it",
                           extra={"messageId": message_id, "error": str(exc)})
            count("idempotency_unavailable")
            store, claim = None, None
        if claim is not None and claim.state == DONE:
            return result_from_summary(message_id, claim.summary or {})
        if claim is not None and claim.state == IN_PROGRESS:
            # Another invocation holds this event; Signal retries the 503 once that one has finished.
            return Result(message_id, Outcome.FAILED, reason="in_progress_elsewhere", duplicate=True)
    late = "deadline" if deadline - time.monotonic() < MIN_DELIVERY_WINDOW else ""
    try:
        result = attempt_event(event, runtime, deadline=deadline, skip_delivery_reason=late)
    except Exception:  # a bug must not lose the event: queue it for the retry function
        logger.exception("unexpected error while delivering; queueing the event", extra={"messageId": message_id})
        result = Result(message_id, Outcome.QUEUED, reason="internal_error")
    result = secure(event, result, runtime, attempts=int(result.attempted))
    if store is not None:
        try:
            if result.outcome is Outcome.FAILED:
                store.release(message_id)
            else:
                store.complete(message_id, idempotency_summary(result))
        except StoreUnavailable as exc:
            logger.warning("idempotency record not written", extra={"messageId": message_id, "error": str(exc)})
            count("idempotency_unavailable")
    return result


def result_summary(result: Result) -> dict[str, Any]:
    summary: dict[str, Any] = {"messageId": result.message_id, "outcome": result.outcome.value,
                               "status": answer_status(result)}
    if result.contact_id is not None:
        summary["contact_id"] = result.contact_id
    if result.reason:
        summary["reason"] = result.reason
    if result.outcome is Outcome.QUEUED and result.retry_after is not None:
        summary["retry_in_seconds"] = result.retry_after
    if result.freshdesk_body is not None and result.outcome in (Outcome.REJECTED, Outcome.CONFLICT):
        summary["freshdesk"] = result.freshdesk_body
    if result.dropped_fields:
        summary["dropped_fields"] = list(result.dropped_fields)
    if result.duplicate:
        summary["duplicate"] = True
    if result.error and result.outcome in (Outcome.REJECTED, Outcome.FAILED):
        summary["error"] = result.error
    return summary


def answer_status(result: Result) -> int:
    match result.outcome:
        case Outcome.DELIVERED:
            return 201
        case Outcome.UPDATED:
            return 200
        case Outcome.CONFLICT:
            return 409
        case Outcome.QUEUED:
            return 202
        case Outcome.DROPPED:
            return 200
        case Outcome.FAILED:
            return 503
        case _:
            status = result.status
            return status if isinstance(status, int) and 400 <= status < 500 else 502


def single_answer(result: Result) -> dict[str, Any]:
    return http_answer(answer_status(result), result_summary(result))


def batch_answer(results: list[Result]) -> dict[str, Any]:
    if any(r.outcome is Outcome.FAILED for r in results):
        status = 503
    elif any(r.outcome is Outcome.QUEUED for r in results):
        status = 202
    else:
        status = 200
    return http_answer(status, {"results": [result_summary(r) for r in results]})


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    headers = event.get("headers") or {}
    return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {}


def _time_budget(context: Any, runtime: Runtime) -> float:
    budget = runtime.settings.webhook_deadline_seconds
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        budget = min(budget, remaining() / 1000)
    return max(0.0, budget - runtime.settings.deadline_margin_seconds)
