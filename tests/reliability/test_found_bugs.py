"""Bugs the ledger (tests/reliability/test_ledger.py) led to, each as a minimal test.

Each docstring says what went wrong and what the connector does instead; each test holds the
connector to it. A new bug found by the ledger goes here as
`@pytest.mark.xfail(strict=True, raises=AssertionError, reason=...)` until it is fixed.
"""

from __future__ import annotations

import json
import time

import pytest

from signal_freshdesk.runtime import get_runtime
from signal_freshdesk_dev.apigw import LambdaContext
from signal_freshdesk_dev.handlers import retry_handler
from tests.security.helpers import REFUSAL_400

CONSENT = {"consent": {"canonical": {"marketing": True}}}


def phone_only_identify(message_id: str) -> dict:
    """An identify whose only identifier is a phone number (no userId, no email)."""
    return {
        "type": "identify",
        "messageId": message_id,
        "anonymousId": "anon_1",
        "traits": {"name": "Phone Only", "phone": "07700 900777"},
        "context": CONSENT,
    }


def freshdesk_calls(stack) -> list[dict]:
    return [r for r in stack.freshdesk.requests() if r["path"].startswith("/api/v2/")]


class Killed(BaseException):
    """The Lambda invocation dies where it stands (a timeout, out of memory): no handler catches it."""


def test_a_short_read_timeout_still_calls_freshdesk(stack, configure):
    """A FRESHDESK_READ_TIMEOUT of 0.5 s or less (Settings accept any positive number) still calls
    Freshdesk: FreshdeskClient._request answers 'no time left before the deadline' only from the time
    left before the deadline, not from min(read_timeout, time to the deadline). Otherwise no event
    would ever reach Freshdesk: each would be queued, retried without a call and parked as exhausted.
    """
    configure(FRESHDESK_READ_TIMEOUT="0.5")
    status, body = stack.post("signed-up")
    assert status == 201, (status, body, freshdesk_calls(stack))


def test_a_create_whose_answer_was_lost_is_not_created_twice(stack, configure):
    """A create whose answer is lost (read timeout) after Freshdesk carried it out is retried. For a
    contact with an email or a unique_external_id the retry meets 409 and updates. Freshdesk does not
    enforce unique phones, so a contact identified only by a phone number is looked up first
    (GET /api/v2/contacts?phone=...) rather than created again: one event, one contact.
    """
    configure(FRESHDESK_READ_TIMEOUT="0.6")
    stack.freshdesk.delay(1.0, count=1)  # Freshdesk creates the contact, but answers after the timeout
    status, body = stack.post(phone_only_identify("phone-only-1"))
    assert (status, body["outcome"]) == (202, "queued")
    stack.drain()
    contacts = [c for c in stack.freshdesk.contacts() if c["phone"] == "+447700900777"]
    assert len(contacts) == 1, f"{len(contacts)} contacts for one event: ids {[c['id'] for c in contacts]}"


def test_a_claim_left_by_a_killed_ingest_invocation_expires_with_the_invocation(stack, monkeypatch):
    """The idempotency claim taken before delivery expires with the invocation that took it (the Lambda
    context's remaining time), not after IdempotencyStore's fixed in_progress_seconds (60 s) while the
    ingest function's timeout is 29 s. When an invocation dies mid-batch (timeout, out of memory) after
    claiming an event, Signal's re-sends of that event must not be refused with 503
    in_progress_elsewhere once it is over: Signal makes 5 attempts with exponential backoff, and if they
    were all spent inside a longer claim the event would be lost.
    """
    store = get_runtime().idempotency

    def killed(*args, **kwargs):
        raise Killed("the invocation died after Freshdesk answered, before the outcome was recorded")

    store.complete = killed  # the outcome is never recorded
    try:
        with pytest.raises(Killed):
            stack.post("signed-up", context=LambdaContext(function_name="ingest", timeout_seconds=29))
    finally:
        del store.complete
    # Signal re-sends once the dead invocation's 29 s are over (its own request timed out at 30 s).
    real_clock = store.clock
    store.clock = lambda: real_clock() + 31
    status, body = stack.post("signed-up")
    assert body.get("reason") != "in_progress_elsewhere", (status, body)


def test_a_redelivered_retry_message_of_a_rejected_event_is_not_parked_twice(stack):
    """A retry message of an event Freshdesk rejected is parked once. If SQS delivers that message
    again (the retry invocation failed after its work, or its batch was returned), it is recognised as
    handled and dropped as a duplicate: Freshdesk is not called again and no second copy is parked.
    (`rejected` is left out of HANDLED_OUTCOMES so that DLQ replays are tried again; a re-delivered
    retry message, whose envelope says `queued`, is told from a replay, whose envelope says `rejected`.)
    Under the ledger's faults this re-delivery meets about 1 in 8 parked events.
    """
    event = {
        "type": "identify",
        "messageId": "bad-company-1",
        "userId": "usr_bad_1",
        "traits": {"name": "Bad Company", "email": "bad.company@example.test", "company_id": 999},
        "context": CONSENT,
    }
    stack.freshdesk.fail_next(503, count=1)
    status, _ = stack.post(event)
    assert status == 202
    stack.freshdesk.fail_next(400, count=1, body=REFUSAL_400)  # the retry meets a refusal: parked
    envelope = None
    ends = time.monotonic() + 10
    while envelope is None and time.monotonic() < ends:
        messages = stack.sqs.receive_message(QueueUrl=stack.resources.retry_queue_url, MaxNumberOfMessages=1).get(
            "Messages", []
        )
        envelope = json.loads(messages[0]["Body"]) if messages else None
        time.sleep(0.1)
    record = {"messageId": "sqs-1", "body": json.dumps(envelope), "attributes": {"ApproximateReceiveCount": "1"}}
    assert retry_handler()({"Records": [record]}, LambdaContext(timeout_seconds=60)) == {"batchItemFailures": []}
    # The same SQS message again, as after a retry invocation that crashed once its work was done.
    again = dict(record, attributes={"ApproximateReceiveCount": "2"})
    assert retry_handler()({"Records": [again]}, LambdaContext(timeout_seconds=60)) == {"batchItemFailures": []}
    parked = [p for p in stack.parked() if p["messageId"] == "bad-company-1"]
    assert len(parked) == 1, f"parked {len(parked)} times; Freshdesk called {len(freshdesk_calls(stack))} times"
