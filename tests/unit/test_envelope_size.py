"""A retry or DLQ envelope always fits one SQS message, and reads back the same.

SQS takes at most 256 KiB (body and attributes, in UTF-8) and refuses some characters. A 361 KB body full
of emoji used to make a 590 KB envelope (texts of 4,096 characters, 12 bytes per emoji with ensure_ascii):
SQS refused it, the event failed (503) and each re-send by Signal cost another Freshdesk call.
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signal_freshdesk.core import envelope
from signal_freshdesk.core.mapping import NAME_KEYS, TRAIT_KEYS, plan_event
from signal_freshdesk.core.model import Outcome, Result
from signal_freshdesk.core.pipeline import queue_or_park
from signal_freshdesk.core.retry import retry_record
from tests.fakes import SizedQueues, fake_ports

EMOJI = "\U0001f600"
SQS_ALLOWED = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
GRANTED = {"canonical": {"marketing": True}}


def emoji_event(count: int = 9000) -> dict:
    """The shape of the 361 KB body: long emoji texts in every name field, top-level and in the context."""
    texts = {key: EMOJI * count for key in (*NAME_KEYS, "title")}
    return {
        "type": "identify",
        "messageId": "msg-emoji",
        "userId": "usr_emoji",
        "timestamp": "2026-02-25T14:30:00Z",
        "traits": {**texts, "email": "emoji@example.com"},
        "context": {"traits": dict(texts), "consent": GRANTED},
    }


def queued(message_id: str = "msg-emoji", **fields) -> Result:
    return Result(message_id, Outcome.QUEUED, 503, reason="freshdesk_503", attempted=True, **fields)


# --------------------------------------------------------------------------- encoding


def test_an_emoji_heavy_event_is_queued_within_the_sqs_limit_and_maps_the_same():
    ports = fake_ports()
    ports.runtime.queues = queues = SizedQueues()
    event = emoji_event()
    assert len(json.dumps(event, ensure_ascii=False).encode()) > 361_000
    secured = queue_or_park(event, queued(), ports.runtime, attempts=1)
    assert secured.outcome is Outcome.QUEUED
    [(sent, _)] = queues.retries
    assert "trimmed" not in sent and queues.sizes[-1] < 100_000  # UTF-8: 4 bytes an emoji, not 12
    assert plan_event(sent["event"]) == plan_event(event)


def test_the_body_is_utf8_with_only_the_characters_sqs_accepts_and_reads_back_the_same():
    texts = [EMOJI, "\ud800", "a\udfffb", "\ufffe", "\uffff", "\x00\x1f\x7f\x85", "\u2028", "é", '"\\']
    event = {"type": "identify", "messageId": "m\ud800", "userId": "u", "traits": {"name": "".join(texts)}}
    sent = envelope.make_envelope(event, queued("m\ud800"), attempts=1, first_seen=1.0, outcome=envelope.QUEUED)
    body = envelope.encode(sent)
    assert SQS_ALLOWED.match(body)
    assert EMOJI in body and "\\ud83d" not in body  # kept as UTF-8, not escaped
    assert json.loads(body) == sent
    body.encode("utf-8")  # no lone surrogate left to refuse
    for attribute in envelope.message_attributes(sent).values():
        assert SQS_ALLOWED.match(attribute["StringValue"])
    assert envelope.sqs_message(sent).envelope == sent


def test_the_size_counts_the_utf8_body_and_every_attribute():
    sent = envelope.make_envelope({"messageId": "é"}, queued("é"), attempts=1, first_seen=1.0, outcome=envelope.QUEUED)
    body, attributes = envelope.encode(sent), envelope.message_attributes(sent)
    expected = len(body.encode()) + sum(
        len(name) + len(a["DataType"]) + len(a["StringValue"].encode()) for name, a in attributes.items()
    )
    assert envelope.message_size(body, attributes) == expected


# --------------------------------------------------------------------------- reducing what does not fit


def test_a_huge_freshdesk_error_body_is_dropped_before_anything_of_the_event():
    ports = fake_ports()
    ports.runtime.queues = queues = SizedQueues()
    event = emoji_event(100)
    rejected = Result("msg-emoji", Outcome.REJECTED, 400, reason="freshdesk_400", freshdesk_body={"x": "y" * 400_000})
    secured = queue_or_park(event, rejected, ports.runtime, attempts=1)
    assert secured.outcome is Outcome.REJECTED  # parked, not failed
    [parked] = queues.parked
    assert parked["trimmed"] is True and parked["last_error"]["body"] is None
    assert parked["last_error"]["status"] == 400 and parked["last_error"]["reason"] == "freshdesk_400"
    assert parked["event"] == envelope.slim_event(event)


def test_then_the_event_is_cut_further_and_still_maps_the_same():
    event = emoji_event(2000)
    sent = envelope.make_envelope(event, queued(), attempts=2, first_seen=5.0, outcome=envelope.QUEUED)
    message = envelope.sqs_message(sent, limit=40_000)
    assert message.reduced and envelope.message_size(message.body, message.attributes) <= 40_000
    assert plan_event(message.envelope["event"]) == plan_event(event)
    assert envelope.parse_envelope(message.body) == message.envelope


def test_as_a_last_resort_the_envelope_keeps_only_ids_outcome_error_and_attempts():
    event = emoji_event(2000)
    sent = envelope.make_envelope(event, queued(error="x" * 5000), attempts=3, first_seen=5.0, outcome="queued")
    message = envelope.sqs_message(sent, limit=1_000)
    minimal = message.envelope
    assert envelope.message_size(message.body, message.attributes) <= 1_000
    assert "event" not in minimal and envelope.is_incomplete(minimal)
    assert minimal["messageId"] == "msg-emoji" and minimal["outcome"] == "queued"
    assert minimal["attempts"] == 3 and minimal["first_seen"] == 5.0
    assert minimal["last_error"]["status"] == 503 and minimal["last_error"]["reason"] == "freshdesk_503"
    assert envelope.parse_envelope(message.body) is None
    assert envelope.parse_incomplete(message.body) == minimal


def test_the_retry_function_parks_an_envelope_without_its_event_with_its_ids():
    ports = fake_ports()
    sent = envelope.make_envelope(emoji_event(10), queued(), attempts=3, first_seen=5.0, outcome="queued")
    minimal = envelope.sqs_message(sent, limit=1_000).envelope
    done = retry_record(
        {"messageId": "sqs-1", "body": envelope.encode(minimal)}, ports.runtime, deadline=ports.deadline()
    )
    assert done is True
    assert ports.freshdesk.calls == []
    [parked] = ports.queues.parked
    assert parked["outcome"] == envelope.UNREADABLE and parked[envelope.INCOMPLETE] == envelope.TOO_LARGE
    assert parked["messageId"] == "msg-emoji" and parked["attempts"] == 3
    assert parked["last_error"]["reason"] == "freshdesk_503"


def test_an_unreadable_message_too_large_to_park_whole_keeps_the_start_of_its_body():
    ports = fake_ports()
    ports.runtime.queues = queues = SizedQueues()
    raw = "\x01" * 250_000  # 6 bytes each once escaped in JSON
    assert retry_record({"messageId": "sqs-2", "body": raw}, ports.runtime, deadline=ports.deadline()) is True
    [parked] = queues.parked
    assert parked["outcome"] == envelope.UNREADABLE and parked["raw"] == raw[:16_384]


# --------------------------------------------------------------------------- the slim event, at both cuts

_long = st.builds(
    lambda lead, body, char, place, tail: lead + ((char + body) if place else (body + char)) + tail,
    st.sampled_from(["", " ", " " * 300, " " * 1100, "\t" * 1030]),
    st.builds(lambda n, c: c * n, st.integers(200, 1300), st.sampled_from(["N", EMOJI, "7", "a"])),
    st.sampled_from(["", "\x00", "\u202e", "\n", "\x1f", "\ud800"]),
    st.booleans(),
    st.sampled_from(["", " ", "x", " " * 900]),
)
_values = st.one_of(_long, st.none(), st.just("usr_1"), st.just("a@b.co"), st.integers(1, 10**6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    traits=st.dictionaries(st.sampled_from(TRAIT_KEYS), _values, max_size=5),
    context_traits=st.dictionaries(st.sampled_from(TRAIT_KEYS), _values, max_size=5),
    user_id=_values,
    timestamp=st.one_of(_long, st.just("2026-02-25T14:30:00Z"), st.just(" " * 1100 + "2026-02-25T14:30:00Z")),
    message_id=st.one_of(_long, st.just("msg-1"), st.just(" " * 1100 + "msg-1")),
    method=_values,
)
def test_slim_events_cut_at_1024_or_256_characters_map_exactly_like_the_full_event(
    traits, context_traits, user_id, timestamp, message_id, method
):
    event = {
        "type": "identify",
        "event": "Identified",
        "messageId": message_id,
        "userId": user_id,
        "timestamp": timestamp,
        "traits": traits,
        "properties": {"method": method},
        "context": {"traits": context_traits, "consent": GRANTED},
    }
    for mode in ("require", "off"):
        full = plan_event(event, consent_mode=mode, allow_withdrawal=True)
        slim = envelope.slim_event(event)
        assert plan_event(slim, consent_mode=mode, allow_withdrawal=True) == full
        assert plan_event(envelope.slim_event(slim, max_text=256), consent_mode=mode, allow_withdrawal=True) == full


def test_untrimmed_fields_are_cut_as_they_are():
    event = {"type": "identify", "userId": "usr_1", "timestamp": " " * 5000 + "2026-02-25T14:30:00Z"}
    event["messageId"] = " " * 5000 + "msg-1"
    event["context"] = {"consent": GRANTED}
    assert plan_event(envelope.slim_event(event)) == plan_event(event)


def test_a_failed_send_is_still_reported_as_failed():
    ports = fake_ports()
    ports.queues.down = True
    assert queue_or_park(emoji_event(5), queued(), ports.runtime, attempts=1).outcome is Outcome.FAILED
