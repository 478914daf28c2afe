"""A repeated messageId within the horizon costs no second Freshdesk call (DynamoDB store on moto)."""

from __future__ import annotations

import json
import time

from signal_freshdesk_dev.apigw import LambdaContext
from signal_freshdesk_dev.handlers import load_event, retry_handler, signal_events_of


def freshdesk_calls(stack):
    return [r for r in stack.freshdesk.requests() if r["path"].startswith("/api/v2/")]


def test_a_resent_event_is_answered_from_the_record_without_calling_freshdesk(stack):
    first_status, first = stack.post("signed-up")
    again_status, again = stack.post("signed-up")
    assert (first_status, again_status) == (201, 201)
    assert again["duplicate"] is True and again["contact_id"] == first["contact_id"]
    assert len(freshdesk_calls(stack)) == 1


def test_a_resent_batch_is_answered_event_by_event_from_the_record(stack):
    stack.post("batch")
    calls = len(freshdesk_calls(stack))
    status, body = stack.post("batch")
    assert status == 200
    assert all(r["duplicate"] for r in body["results"])
    assert len(freshdesk_calls(stack)) == calls


def test_a_resent_rejection_repeats_freshdesks_status_without_a_second_call(stack):
    stack.freshdesk.set_mode("forbidden")
    stack.post("signed-up")
    status, body = stack.post("signed-up")
    assert status == 403 and body["outcome"] == "rejected" and body["duplicate"] is True
    assert len(freshdesk_calls(stack)) == 1
    assert len(stack.parked()) == 1


def test_an_event_still_in_progress_elsewhere_gets_503_so_signal_retries_later(stack):
    message_id = signal_events_of(load_event("signed-up"))[0]["messageId"]
    now = int(time.time())
    stack.dynamodb.put_item(
        TableName=stack.resources.idempotency_table,
        Item={
            "id": {"S": message_id},
            "status": {"S": "in_progress"},
            "expiration": {"N": str(now + 3600)},
            "in_progress_until": {"N": str(now + 60)},
        },
    )
    status, body = stack.post("signed-up")
    assert status == 503 and body["reason"] == "in_progress_elsewhere"
    assert freshdesk_calls(stack) == []


def test_an_abandoned_claim_expires_and_the_event_is_processed(stack):
    message_id = signal_events_of(load_event("signed-up"))[0]["messageId"]
    now = int(time.time())
    stack.dynamodb.put_item(
        TableName=stack.resources.idempotency_table,
        Item={
            "id": {"S": message_id},
            "status": {"S": "in_progress"},
            "expiration": {"N": str(now + 3600)},
            "in_progress_until": {"N": str(now - 1)},
        },
    )
    status, _ = stack.post("signed-up")
    assert status == 201


def test_an_event_that_could_not_be_secured_is_processed_again_when_resent(stack, configure):
    good_queue = stack.resources.retry_queue_url
    configure(RETRY_QUEUE_URL=good_queue + "-missing")
    stack.freshdesk.fail_next(503, count=1)
    status, _ = stack.post("signed-up")
    assert status == 503
    configure(RETRY_QUEUE_URL=good_queue)
    status, body = stack.post("signed-up")
    assert status == 201 and "duplicate" not in body


def test_without_the_store_the_connector_still_delivers(stack, configure, caplog):
    configure(IDEMPOTENCY_TABLE=stack.resources.idempotency_table + "-missing")
    status, _ = stack.post("signed-up")
    assert status == 201
    assert any(r.getMessage() == "idempotency store unavailable; processing without it" for r in caplog.records)


def test_idempotency_switched_off_calls_freshdesk_for_every_copy(stack, configure):
    configure(IDEMPOTENCY_TABLE="", IDENTITY_MAP_TABLE="")  # the identity map would absorb the copy too
    stack.post("signed-up")
    status, _ = stack.post("signed-up")
    assert status == 409
    assert len(freshdesk_calls(stack)) == 2


def test_a_retry_message_delivered_twice_by_sqs_calls_freshdesk_once(stack):
    record = load_event("sqs-retry")
    assert retry_handler()(record, LambdaContext(timeout_seconds=60)) == {"batchItemFailures": []}
    assert retry_handler()(record, LambdaContext(timeout_seconds=60)) == {"batchItemFailures": []}
    assert len(freshdesk_calls(stack)) == 1


def test_a_replayed_rejection_is_tried_again(stack):
    stack.freshdesk.set_mode("forbidden")
    stack.post("signed-up")
    [parked] = stack.parked()
    stack.freshdesk.set_mode(None)
    record = {"messageId": "replay-1", "body": json.dumps(dict(parked, attempts=0))}
    assert retry_handler()({"Records": [record]}, LambdaContext(timeout_seconds=60)) == {"batchItemFailures": []}
    assert len(stack.freshdesk.contacts()) == 1
