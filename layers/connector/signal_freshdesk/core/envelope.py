"""The retry and dead-letter message: one format, written and read only here.

The retry queue and the DLQ hold an envelope: the event (slimmed to what the mapping reads, so a retry
or a replay maps it afresh), how many attempts it has had, when it was first seen, and its last error.
The pipeline, the retry flow, the SQS adapter and the DLQ tools all go through this module.

An SQS message holds at most 256 KiB (body and attributes, in UTF-8). `sqs_message` measures the encoded
envelope and, when it is too large, reduces it step by step rather than letting SendMessage fail: first
Freshdesk's error body, then the event's texts (to 256 characters, which still maps the same), and as a
last resort the event itself (an `incomplete` envelope: ids, outcome, error, attempts, first_seen). The
retry function parks an incomplete envelope as unreadable, with its ids; the DLQ tools list it and
never replay it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .conversions import MAX_TEXT, has_unusable_characters
from .mapping import message_id_of
from .rules import TOP_LEVEL_SOURCES, normalise_event_name

if TYPE_CHECKING:
    from .model import Result

ENVELOPE_VERSION = 1

# The envelope's `outcome`: why the message is in its queue.
QUEUED = "queued"  # in the retry queue, waiting for its next attempt
REJECTED = "rejected"  # parked: Freshdesk refused it
EXHAUSTED = "exhausted"  # parked: retries ran out
UNREADABLE = "unreadable"  # parked: the retry function could not read the message
PARKED_OUTCOMES = frozenset({REJECTED, EXHAUSTED})

# SQS's largest message: the body and every attribute's name, type and value, counted in UTF-8 bytes.
SQS_MAX_MESSAGE_BYTES = 262_144
# The envelope field that marks one reduced to fit that limit without its event (or raw body).
INCOMPLETE = "incomplete"
TOO_LARGE = "message_too_large"
# What a reduced envelope keeps of our own error text and of an unreadable message's raw body.
_KEPT_ERROR_CHARS = 512
_KEPT_RAW_CHARS = 16_384


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


def parse_incomplete(body: Any) -> dict[str, Any] | None:
    """The envelope in an SQS message body that was reduced to fit SQS without its event, else None.

    It still names the event (`messageId`), why it was queued or parked, its attempts and last error,
    but it cannot be delivered or replayed."""
    try:
        envelope = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None
    if not isinstance(envelope, dict) or "event" in envelope or not envelope.get(INCOMPLETE):
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


# The characters SQS refuses in a message: anything outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
# #x10000-#x10FFFF. JSON escapes the C0 controls itself; surrogates, U+FFFE and U+FFFF remain.
_SQS_REFUSED_IN_JSON = re.compile("[\ud800-\udfff\ufffe\uffff]")
_SQS_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def encode(envelope: Mapping[str, Any]) -> str:
    """The SQS message body: compact JSON in UTF-8 (an emoji costs 4 bytes, not the 12 of `\\ud83d\\ude00`),
    with the few characters SQS refuses (lone surrogates, U+FFFE, U+FFFF) written as JSON escapes, so the
    body always reaches SQS and reads back as the same envelope."""
    text = json.dumps(envelope, separators=(",", ":"), default=str, ensure_ascii=False)
    return _SQS_REFUSED_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def message_attributes(envelope: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """SQS message attributes, so a queue can be read (and filtered) without opening the bodies."""
    values = {
        "outcome": envelope.get("outcome") or QUEUED,
        "messageId": envelope.get("messageId") or "-",
        "status": str((envelope.get("last_error") or {}).get("status") or "none"),
    }
    return {
        key: {"DataType": "String", "StringValue": _SQS_REFUSED.sub("?", str(value)[:256])}
        for key, value in values.items()
    }


def message_size(body: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    """What SQS counts against its limit: the body, and each attribute's name, data type and value."""
    size = len(body.encode("utf-8"))
    for name, attribute in attributes.items():
        size += len(name.encode("utf-8")) + sum(len(str(v).encode("utf-8")) for v in attribute.values())
    return size


@dataclass(frozen=True)
class SqsMessage:
    """An envelope as it goes to SQS: the envelope sent (the given one, or reduced to fit), its body
    and attributes, and whether it had to be reduced."""

    envelope: dict[str, Any]
    body: str
    attributes: dict[str, dict[str, str]]
    reduced: bool


def sqs_message(envelope: Mapping[str, Any], *, limit: int = SQS_MAX_MESSAGE_BYTES) -> SqsMessage:
    """The envelope encoded for SQS, reduced step by step until it fits `limit` (see the module's doc)."""
    candidate: dict[str, Any] = dict(envelope)
    for step, candidate in enumerate(_reductions(envelope)):
        body, attributes = encode(candidate), message_attributes(candidate)
        if message_size(body, attributes) <= limit:
            return SqsMessage(candidate, body, attributes, reduced=step > 0)
    # Only an absurd `limit` gets here: the smallest envelope is sent, and SQS says what it thinks of it.
    return SqsMessage(candidate, encode(candidate), message_attributes(candidate), reduced=True)


def is_incomplete(envelope: Mapping[str, Any]) -> bool:
    return bool(envelope.get(INCOMPLETE)) and "event" not in envelope


def _reductions(envelope: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The envelope, then ever smaller versions of it; every one still names the event and its state."""
    full = dict(envelope)
    last_error = _as_mapping(full.get("last_error"))
    short_error = {
        "status": last_error.get("status"),
        "reason": last_error.get("reason"),
        "error": _clip(last_error.get("error"), _KEPT_ERROR_CHARS),
        "body": None,
    }
    without_body = {**full, "last_error": short_error, "trimmed": True}
    trimmed = dict(without_body)
    if isinstance(full.get("event"), Mapping):
        # Still maps exactly like the original: every mapped field is at most MAX_TEXT characters.
        trimmed["event"] = slim_event(full["event"], max_text=MAX_TEXT + 1)
    if "raw" in full:
        trimmed["raw"] = _clip(full["raw"] if isinstance(full["raw"], str) else str(full["raw"]), _KEPT_RAW_CHARS)
    minimal = {
        "v": full.get("v", ENVELOPE_VERSION),
        "messageId": _clip(full.get("messageId"), 256) or "",
        "outcome": _clip(full.get("outcome"), 64) or QUEUED,
        "attempts": full.get("attempts") if isinstance(full.get("attempts"), int) else 0,
        "first_seen": full.get("first_seen") if isinstance(full.get("first_seen"), (int, float)) else None,
        "last_error": {
            **short_error,
            "reason": _clip(short_error["reason"], 256),
            "error": _clip(short_error["error"], 256),
        },
        INCOMPLETE: TOO_LARGE,
    }
    return [full, without_body, trimmed, minimal]


def _clip(value: Any, length: int) -> Any:
    return value[:length] if isinstance(value, str) else value


# What the slim event keeps is what a mapping may read (rules.SOURCE_ROOTS): the event's own fields that
# name and order it, a group's groupId, and everything under `traits`, `context.traits` and `properties` down to KEPT_DEPTH, so a retry maps a
# user's own fields exactly as the first attempt did. Objects deeper down and lists of objects go.
MAX_KEPT_TEXT = 1024
KEPT_DEPTH = 4
# Read by the mapping as given, untrimmed (`timestamp` counts its length, `messageId` is its first 128
# characters): these are cut without trimming.
_UNTRIMMED_KEYS = frozenset({"timestamp", "messageId"})


def slim_event(event: Mapping[str, Any], *, max_text: int = MAX_KEPT_TEXT) -> dict[str, Any]:
    """The part of an event a mapping reads: what the retry queue and the DLQ keep.

    Any mapping's answer is the same for the slim event as for the full one. Texts over `max_text`
    characters (1,024; never less than 256) are cut, which changes nothing: every mapped field is at most
    255 characters after trimming, so a text is trimmed before it is cut (the `timestamp` and `messageId`,
    which the mapping reads untrimmed, are cut as they are), a text too long to use stays too long, and a
    cut text that held a control character still holds one, so it stays unusable. So a retry or a replay
    maps the event afresh (its `timestamp` included, which orders it), and an SQS message stays far under
    its size limit whatever else the event carried.
    """
    max_text = max(max_text, MAX_TEXT + 1)

    def keep(value: Any, *, trim: bool = True) -> Any:
        if isinstance(value, str) and len(value) > max_text:
            cut = (value.strip() if trim else value)[:max_text]
            if has_unusable_characters(value) and not has_unusable_characters(cut):
                cut = cut[:-1] + "\x00"  # the cut must not make an unusable text usable
            return cut
        return value if isinstance(value, (str, int, float, bool)) or value is None else None

    def tree(source: Mapping[str, Any], depth: int) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for key, value in source.items():
            if isinstance(value, Mapping):
                if depth > 1:
                    kept[key] = tree(value, depth - 1)
            elif isinstance(value, list):
                kept[key] = [keep(item) for item in value if not isinstance(item, (Mapping, list))]
            else:
                kept[key] = keep(value)
        return kept

    top = (*TOP_LEVEL_SOURCES, "groupId") if normalise_event_name(event.get("type")) == "group" else TOP_LEVEL_SOURCES
    slim: dict[str, Any] = {k: keep(event[k], trim=k not in _UNTRIMMED_KEYS) for k in top if k in event}
    for key in ("traits", "properties"):
        if isinstance(event.get(key), Mapping):
            slim[key] = tree(event[key], KEPT_DEPTH)
    context = _as_mapping(event.get("context"))
    kept_context: dict[str, Any] = {}
    if isinstance(context.get("traits"), Mapping):
        kept_context["traits"] = tree(context["traits"], KEPT_DEPTH)
    if "groupId" in context and not isinstance(context["groupId"], (Mapping, list)):
        kept_context["groupId"] = keep(context["groupId"])
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
