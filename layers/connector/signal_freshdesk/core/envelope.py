"""The retry and dead-letter message: one format, written and read only here.

The retry queue and the DLQ hold an envelope: the event (slimmed to what the mapping reads, so a retry
or a replay maps it afresh), how many attempts it has had, when it was first seen, and its last error.
The pipeline, the retry flow, the SQS adapter and the DLQ tools all go through this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .mapping import TRAIT_KEYS, has_unusable_characters, message_id_of

if TYPE_CHECKING:
    from .model import Result

ENVELOPE_VERSION = 1

# The envelope's `outcome`: why the message is in its queue.
QUEUED = "queued"  # in the retry queue, waiting for its next attempt
REJECTED = "rejected"  # parked: Freshdesk refused it
EXHAUSTED = "exhausted"  # parked: retries ran out
UNREADABLE = "unreadable"  # parked: the retry function could not read the message
PARKED_OUTCOMES = frozenset({REJECTED, EXHAUSTED})


def make_envelope(
    event: Mapping[str, Any], result: Result, *, attempts: int, first_seen: float, outcome: str
) -> dict[str, Any]:
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


def unreadable_envelope(raw_body: Any, *, now: float) -> dict[str, Any]:
    """What the DLQ keeps of a retry message that is not an envelope: the raw body, as it came."""
    return {
        "v": ENVELOPE_VERSION,
        "messageId": "",
        "outcome": UNREADABLE,
        "attempts": 0,
        "first_seen": now,
        "last_error": {"status": None, "reason": "unreadable_message", "error": "", "body": None},
        "raw": raw_body,
    }


def replay_envelope(envelope: Mapping[str, Any], *, now: float) -> dict[str, Any]:
    """A parked envelope with a fresh retry budget. Its `outcome` and `last_error` are kept: the outcome
    tells the retry function that this is a replay, which it must try again."""
    fresh = dict(envelope)
    fresh.update({"attempts": 0, "first_seen": now})
    return fresh


def parse_envelope(body: Any) -> dict[str, Any] | None:
    """The envelope in an SQS message body, or None when the body is not one."""
    try:
        envelope = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("event"), dict):
        return None
    return envelope


@dataclass(frozen=True)
class RetryState:
    """What the retry flow reads from an envelope."""

    message_id: str
    event: dict[str, Any]
    attempts: int
    first_seen: float
    replay: bool  # parked and sent back on purpose: tried again even if it was handled


def retry_state(envelope: Mapping[str, Any], *, now: float) -> RetryState:
    return RetryState(
        message_id=str(envelope.get("messageId") or ""),
        event=envelope["event"],
        attempts=int(envelope.get("attempts") or 0),
        first_seen=float(envelope.get("first_seen") or now),
        replay=envelope.get("outcome") in PARKED_OUTCOMES,
    )


def encode(envelope: Mapping[str, Any]) -> str:
    """The SQS message body."""
    return json.dumps(envelope, separators=(",", ":"), default=str)


def message_attributes(envelope: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """SQS message attributes, so a queue can be read (and filtered) without opening the bodies."""
    values = {
        "outcome": envelope.get("outcome") or QUEUED,
        "messageId": envelope.get("messageId") or "-",
        "status": str((envelope.get("last_error") or {}).get("status") or "none"),
    }
    return {key: {"DataType": "String", "StringValue": str(value)[:256]} for key, value in values.items()}


# The traits kept are TRAIT_KEYS, the mapping's own list of what it reads (name parts, email, phone, title,
# company_id, user_id): one list, so the slim event cannot fall behind the mapping.
MAX_KEPT_TEXT = 4096


def slim_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an event the mapping reads: what the retry queue and the DLQ keep.

    The mapping's answer is the same for the slim event as for the full one (texts over 4096 characters
    are cut, which changes nothing: every mapped field is at most 255, and a cut text that held a control
    character still holds one, so it stays unusable). So a retry or a replay maps the event afresh (its
    `timestamp` included, which orders it), and an SQS message stays far under its size limit whatever
    else the event carried.
    """

    def keep(value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_KEPT_TEXT:
            cut = value.strip()[:MAX_KEPT_TEXT]
            if has_unusable_characters(value) and not has_unusable_characters(cut):
                cut = cut[:-1] + "\x00"  # the cut must not make an unusable text usable
            return cut
        return value if isinstance(value, (str, int, float, bool)) or value is None else None

    def traits(source: object) -> dict[str, Any]:
        found = _as_mapping(source)
        return {k: keep(found[k]) for k in TRAIT_KEYS if k in found}

    slim: dict[str, Any] = {
        k: keep(event[k]) for k in ("type", "event", "messageId", "userId", "user_id", "timestamp") if k in event
    }
    if isinstance(event.get("traits"), Mapping):
        slim["traits"] = traits(event["traits"])
    if isinstance(_as_mapping(event.get("properties")).get("method"), str):
        slim["properties"] = {"method": keep(event["properties"]["method"])}
    context = _as_mapping(event.get("context"))
    kept_context: dict[str, Any] = {}
    if isinstance(context.get("traits"), Mapping):
        kept_context["traits"] = traits(context["traits"])
    consent = _as_mapping(context.get("consent"))
    if consent:
        canonical = consent.get("canonical")
        kept_context["consent"] = (
            {"canonical": {k: keep(v) for k, v in canonical.items() if k == "marketing"}}
            if isinstance(canonical, Mapping)
            else {k: keep(v) for k, v in consent.items() if k == "marketing"}
        )
    if kept_context:
        slim["context"] = kept_context
    return slim


def _as_mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
