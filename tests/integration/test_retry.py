"""The retry handler: re-delivery, backoff, exhaustion and parking, driven like Lambda's SQS trigger."""

from __future__ import annotations

import json
import time

from signal_freshdesk.core.envelope import slim_event
from signal_freshdesk_dev.apigw import LambdaContext
from signal_freshdesk_dev.handlers import load_event, retry_handler, signal_events_of


def queue_body(stack):
    """Receive the one message in the retry queue (waiting out any delay) and make it visible again."""
    ends = time.monotonic() + 10
    while time.monotonic() < ends:
        messages = stack.sqs.receive_message(
            QueueUrl=stack.resources.retry_queue_url, MaxNumberOfMessages=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if messages:
            stack.sqs.change_message_visibility(
                QueueUrl=stack.resources.retry_queue_url,
                ReceiptHandle=messages[0]["ReceiptHandle"],
                VisibilityTimeout=0,
            )
            return json.loads(messages[0]["Body"]), messages[0]["MessageAttributes"]
        time.sleep(0.1)
    raise AssertionError("nothing arrived in the retry queue")


def test_sample_sqs_retry_event_is_delivered_by_the_retry_handler(stack):
    answer = retry_handler()(load_event("sqs-retry"), LambdaContext(timeout_seconds=60))
    assert answer == {"batchItemFailures": []}
    [contact] = stack.freshdesk.contacts()
    assert contact["unique_external_id"] == "usr_456"


def test_queued_message_carries_the_event_the_attempt_count_and_the_last_error(stack):
    stack.freshdesk.fail_next(503, count=1)
    stack.post("identified")
    envelope, attributes = queue_body(stack)
    assert envelope["event"] == slim_event(signal_events_of(load_event("identified"))[0])
    assert envelope["attempts"] == 1
    assert envelope["last_error"]["status"] == 503
    assert attributes["messageId"]["StringValue"] == envelope["messageId"]


def test_each_failed_retry_is_requeued_with_one_more_attempt(stack):
    stack.freshdesk.fail_next(503, count=2)
    stack.post("identified")
    source = stack.event_source()
    envelope, _ = queue_body(stack)
    source.poll_once()
    envelope, _ = queue_body(stack)
    assert envelope["attempts"] == 2
    stack.drain()
    assert len(stack.freshdesk.contacts()) == 1
    assert stack.parked() == []


def test_exhausted_retries_are_parked_with_the_last_error_and_attempt_count(stack, configure):
    configure(MAX_ATTEMPTS="3")
    stack.freshdesk.fail_next(502, count=None)
    stack.post("identified")
    stats = stack.drain()
    assert stats.failures == 0
    [parked] = stack.parked()
    assert parked["outcome"] == "exhausted"
    assert parked["attempts"] == 3
    assert parked["last_error"]["status"] == 502
    assert parked["event"]["messageId"] == slim_event(signal_events_of(load_event("identified"))[0])["messageId"]
    assert [r["status"] for r in stack.freshdesk.requests()] == [502, 502, 502]


def test_events_older_than_the_retry_age_are_parked(stack, configure):
    configure(MAX_RETRY_AGE_SECONDS="60")
    stack.freshdesk.fail_next(503, count=None)
    stack.post("identified")
    envelope, _ = queue_body(stack)
    envelope["first_seen"] -= 3600
    record = {"messageId": "old-1", "body": json.dumps(envelope)}
    assert retry_handler()({"Records": [record]}, LambdaContext(timeout_seconds=60)) == {"batchItemFailures": []}
    parked = stack.parked()
    assert [p["outcome"] for p in parked] == ["exhausted"]


def test_a_rejection_during_retry_is_parked(stack):
    stack.freshdesk.fail_next(503, count=1)
    stack.post("signed-up")
    stack.freshdesk.set_mode("forbidden")
    stack.drain()
    [parked] = stack.parked()
    assert parked["outcome"] == "rejected" and parked["last_error"]["status"] == 403
    assert parked["attempts"] == 2


def test_a_409_on_retry_of_signed_up_is_final(stack):
    stack.freshdesk.fail_next(503, count=1)
    stack.post("signed-up")
    stack.post(
        {
            "type": "identify",
            "userId": "usr_123",
            "messageId": "x",
            "traits": {"name": "J", "email": "john.doe@example.com"},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
    )
    stack.drain()
    assert stack.parked() == [] and len(stack.freshdesk.contacts()) == 1


def test_429_during_retry_requeues_with_retry_after_without_spending_an_attempt_on_the_rest(stack):
    stack.freshdesk.fail_next(503, count=2)
    stack.post({"batch": [signal_events_of(load_event("identified"))[0], signal_events_of(load_event("signed-up"))[0]]})
    time.sleep(1.2)  # both delayed by backoff; wait for them to be visible
    stack.freshdesk.fail_next(429, count=1, retry_after=2)
    before = len(stack.freshdesk.requests())
    source = stack.event_source()
    deadline = time.monotonic() + 10
    while source.poll_once() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    calls = stack.freshdesk.requests()[before:]
    # the first record met the 429; records after it in the batch waited without calling
    assert calls[0]["status"] == 429
    assert len(calls) <= 2
    stack.drain()
    assert len(stack.freshdesk.contacts()) == 2
    assert [r["status"] for r in stack.freshdesk.requests()].count(429) == 1


def test_unreadable_message_is_parked_not_retried_forever(stack):
    answer = retry_handler()(
        {"Records": [{"messageId": "junk-1", "body": "not an envelope"}]}, LambdaContext(timeout_seconds=60)
    )
    assert answer == {"batchItemFailures": []}
    [parked] = stack.parked()
    assert parked["outcome"] == "unreadable" and parked["raw"] == "not an envelope"


def test_records_are_reported_as_failures_when_they_cannot_be_secured(stack, configure):
    stack.freshdesk.fail_next(503, count=None)
    stack.post("identified")
    envelope, _ = queue_body(stack)
    configure(RETRY_QUEUE_URL=stack.resources.retry_queue_url + "-missing")
    answer = retry_handler()(
        {"Records": [{"messageId": "r-1", "body": json.dumps(envelope)}]}, LambdaContext(timeout_seconds=60)
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "r-1"}]}


def test_records_left_when_time_runs_out_go_back_to_the_queue_untouched(stack):
    envelope = json.loads(load_event("sqs-retry")["Records"][0]["body"])
    records = [{"messageId": f"r-{n}", "body": json.dumps(envelope)} for n in range(3)]
    answer = retry_handler()({"Records": records}, LambdaContext(timeout_seconds=5))
    assert answer == {"batchItemFailures": [{"itemIdentifier": f"r-{n}"} for n in range(3)]}
    assert stack.freshdesk.requests() == []
