"""The webhook's HTTP answers: Freshdesk's own status for one event, per-event results for a batch."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .model import Outcome, Result

JSON_HEADERS = {"Content-Type": "application/json"}

# What of Freshdesk's error body an answer may carry: codes, field names and contact ids, each only when
# it has the shape of one. Freshdesk's `message` texts can quote what it was sent (an email, a name, a
# phone), and an answer is seen in Signal's Event Debugger: they stay out. The DLQ envelope keeps the
# whole body for the operator.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.\[\]-]{1,64}$")
_PHRASE = re.compile(r"^[A-Za-z][A-Za-z .,'()-]{0,79}$")


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
    if result.company_id is not None:
        summary["company_id"] = result.company_id
    if result.reason:
        summary["reason"] = result.reason
    if result.outcome is Outcome.QUEUED and result.retry_after is not None:
        summary["retry_in_seconds"] = result.retry_after
    if result.freshdesk_body is not None and result.outcome in (Outcome.REJECTED, Outcome.CONFLICT):
        freshdesk = freshdesk_error(result.freshdesk_body)
        if freshdesk:
            summary["freshdesk"] = freshdesk
    if result.dropped_fields:
        summary["dropped_fields"] = list(result.dropped_fields)
    if result.duplicate:
        summary["duplicate"] = True
    if result.error and result.outcome in (Outcome.REJECTED, Outcome.FAILED):
        summary["error"] = result.error
    return summary


def freshdesk_error(body: Any) -> dict[str, Any]:
    """Freshdesk's error body reduced to what an answer may show: `description`, `code`, and per error
    its `field`, `code` and the contact id of a 409 (`additional_info.user_id`). Never a message text."""
    if isinstance(body, list):
        body = {"errors": body}
    if not isinstance(body, Mapping):
        return {}
    reduced: dict[str, Any] = {}
    description = _shaped(body.get("description"), _PHRASE)
    if description:
        reduced["description"] = description
    code = _shaped(body.get("code"), _IDENTIFIER)
    if code:
        reduced["code"] = code
    errors = body.get("errors")
    if isinstance(errors, list):
        kept = [item for item in (_error_item(e) for e in errors if isinstance(e, Mapping)) if item]
        if kept:
            reduced["errors"] = kept
    return reduced


def _error_item(error: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key in ("field", "code"):
        value = _shaped(error.get(key), _IDENTIFIER)
        if value:
            item[key] = value
    info = error.get("additional_info")
    user_id = info.get("user_id") if isinstance(info, Mapping) else None
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        item["additional_info"] = {"user_id": user_id}
    return item


def _shaped(value: Any, pattern: re.Pattern[str]) -> str:
    return value if isinstance(value, str) and pattern.fullmatch(value) else ""


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
