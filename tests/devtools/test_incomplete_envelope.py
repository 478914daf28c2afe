"""An envelope reduced to fit SQS without its event is listed with its ids, never replayed,
and explained as such."""

from __future__ import annotations

import json

from signal_freshdesk.core import envelope
from signal_freshdesk.core.model import Outcome, Result
from signal_freshdesk.core.settings import Settings
from signal_freshdesk_dev import dlq
from signal_freshdesk_dev.explain import explain_event, signal_events


def incomplete_body() -> str:
    event = {"type": "identify", "messageId": "msg-big", "userId": "u", "traits": {"name": "N" * 5000}}
    result = Result("msg-big", Outcome.QUEUED, 503, reason="freshdesk_503", error="ReadTimeoutError: x")
    full = envelope.make_envelope(event, result, attempts=4, first_seen=1000.0, outcome=envelope.QUEUED)
    message = envelope.sqs_message(full, limit=450)
    assert envelope.is_incomplete(message.envelope)
    return message.body


def test_dlq_lists_an_envelope_without_its_event_by_its_ids_and_never_replays_it():
    parked = dlq.describe_parked({"MessageId": "sqs-1", "ReceiptHandle": "r", "Body": incomplete_body()})
    assert parked.message_id == "msg-big" and parked.outcome == "unreadable"
    assert parked.reason == "event_not_kept" and parked.status == 503 and parked.attempts == 4
    assert parked.first_seen == 1000.0 and not parked.replayable


def test_explain_says_the_event_was_not_kept():
    sqs_event = {"Records": [{"messageId": "r1", "body": incomplete_body()}]}
    kind, items = signal_events(json.dumps(sqs_event), Settings())
    [(label, event)] = items
    assert "without its event" in label and event is None
    assert explain_event(label, event, Settings(), "acme").reason == "unreadable_message"
    kind, items = signal_events(incomplete_body(), Settings())
    assert "without its event" in kind and items == [("envelope", None)]
