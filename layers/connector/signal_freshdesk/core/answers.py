"""The webhook's HTTP answers: Freshdesk's own status for one event, per-event results for a batch."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .model import Outcome, Result

JSON_HEADERS = {"Content-Type": "application/json"}


def http_answer(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": dict(JSON_HEADERS),
        "body": json.dumps(body, separators=(",", ":"), default=str),
    }


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
        case (
            Outcome.DROPPED
            | Outcome.UNCHANGED
            | Outcome.STALE
            | Outcome.CONSENT_WITHDRAWN
            | Outcome.DELETED_IN_FRESHDESK
            | Outcome.IDENTITY_MISMATCH
        ):
            return 200
        case Outcome.FAILED:
            return 503
        case _:
            status = result.status
            return status if isinstance(status, int) and 400 <= status < 500 else 502


def result_summary(result: Result) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "messageId": result.message_id,
        "outcome": result.outcome.value,
        "status": answer_status(result),
    }
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


def unauthorized(message: str) -> dict[str, Any]:
    return http_answer(401, {"outcome": "unauthorized", "message": message})


def bad_request(status: int, message: str) -> dict[str, Any]:
    return http_answer(status, {"outcome": "bad_request", "message": message})


def not_configured() -> dict[str, Any]:
    return http_answer(
        503,
        {"outcome": "error", "message": "the connector cannot read its configuration; see the ingest function's logs"},
    )
