"""`dlq list` and `dlq replay` on the stack's queues: no contact data shown; replayed events get delivered."""

from __future__ import annotations

import io
import json
import time
import uuid

import boto3

from signal_freshdesk_dev import dlq
from signal_freshdesk_dev.local_aws import REGION
from tests.security.helpers import REFUSAL_400

# Everything in the samples that identifies a person, as sent and as normalised.
PEOPLE = (
    "john.doe@example.com",
    "John.Doe@example.com",
    "John Doe",
    "+447700900123",
    "07700 900123",
    "Head of Growth",
    "priya.shah@example.org",
    "Priya",
    "Shah",
    "+442079460958",
)
UNKNOWN_COMPANY = {
    "type": "identify",
    "userId": "usr_900",
    "messageId": "c0ffee00-0000-4000-8000-000000000900",
    "traits": {"name": "Grace Hopper", "email": "grace@example.com", "company_id": 99},
    "context": {"consent": {"canonical": {"marketing": True}}},
}


def park_forbidden(stack, *samples: str) -> None:
    """Freshdesk answers 403 (the agent's role): each sample is rejected and parked."""
    stack.freshdesk.set_mode("forbidden")
    for sample in samples:
        status, _ = stack.post(sample)
        assert status == 403
    stack.freshdesk.set_mode(None)


def retry_messages(stack) -> list[dict]:
    messages = stack.sqs.receive_message(
        QueueUrl=stack.resources.retry_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    for message in messages:
        stack.sqs.change_message_visibility(
            QueueUrl=stack.resources.retry_queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return messages


def listing(stack) -> tuple[list[dlq.Parked], str]:
    parked = dlq.list_parked(stack.sqs, stack.resources.dlq_url, wait_seconds=0)
    out = io.StringIO()
    dlq.print_parked(out, parked)
    for item in parked:
        out.write(json.dumps(item.summary(time.time())) + "\n")
    return parked, out.getvalue()


def test_list_shows_ids_outcome_status_and_codes_but_no_contact_data(stack):
    park_forbidden(stack, "signed-up", "identified")
    parked, text = listing(stack)
    assert sorted(p.message_id for p in parked) == [
        "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "b2c3d4e5-f6a7-4890-8bcd-ef1234567891",
    ]
    assert all(
        (p.outcome, p.status, p.reason, p.freshdesk, p.attempts)
        == ("rejected", 403, "freshdesk_403", "access_denied", 1)
        for p in parked
    )
    assert "Dead-letter queue: 2 parked" in text and "access_denied" in text
    for value in PEOPLE:
        assert value not in text
    assert "You are not authorized" not in text  # Freshdesk's message text is never shown
    assert len(stack.parked()) == 2  # listing leaves them parked


def test_list_shows_field_names_and_codes_of_a_validation_error(stack):
    # An unknown company alone is dropped and the contact delivered; with a field the contact cannot do
    # without, the whole contact is refused and parked.
    stack.freshdesk.fail_next(400, body=REFUSAL_400)
    status, _ = stack.post(UNKNOWN_COMPANY)
    assert status == 400
    [parked], text = listing(stack)
    assert parked.status == 400 and "company_id:" in parked.freshdesk
    assert "Grace" not in text and "grace@example.com" not in text


def test_replay_moves_parked_events_back_and_the_retry_handler_delivers_them(stack):
    park_forbidden(stack, "signed-up")
    before = time.time()
    report = dlq.replay(stack.sqs, stack.resources.dlq_url, stack.resources.retry_queue_url, wait_seconds=0)
    assert [p.message_id for p in report.replayed] == ["a1b2c3d4-e5f6-7890-abcd-ef1234567890"]
    assert stack.parked() == []
    [message] = retry_messages(stack)
    envelope = json.loads(message["Body"])
    assert envelope["attempts"] == 0 and envelope["first_seen"] >= before
    assert envelope["last_error"]["status"] == 403 and envelope["outcome"] == "rejected"  # as parked
    assert message["MessageAttributes"]["messageId"]["StringValue"] == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    stack.drain()
    [contact] = stack.freshdesk.contacts()
    assert contact["email"] == "john.doe@example.com"
    assert stack.parked() == []


def test_an_exhausted_event_gets_a_fresh_retry_budget_and_is_delivered(stack, configure):
    configure(MAX_ATTEMPTS="1")
    stack.freshdesk.fail_next(503, count=1)
    _, answer = stack.post("identified")  # one attempt allowed: parked at once as exhausted
    assert answer["outcome"] == "rejected" and answer["reason"] == "retries_exhausted"
    [parked] = dlq.list_parked(stack.sqs, stack.resources.dlq_url, wait_seconds=0)
    assert (parked.outcome, parked.status, parked.attempts) == ("exhausted", 503, 1)
    report = dlq.replay(
        stack.sqs, stack.resources.dlq_url, stack.resources.retry_queue_url, outcome="exhausted", wait_seconds=0
    )
    assert len(report.replayed) == 1
    stack.drain()
    [contact] = stack.freshdesk.contacts()
    assert contact["unique_external_id"] == "usr_456"
    assert stack.parked() == []


def test_replay_filters_by_status_outcome_and_message_id(stack):
    park_forbidden(stack, "signed-up", "identified")
    stack.freshdesk.fail_next(400, body=REFUSAL_400)
    stack.post(UNKNOWN_COMPANY)
    urls = (stack.sqs, stack.resources.dlq_url, stack.resources.retry_queue_url)
    report = dlq.replay(*urls, status=400, wait_seconds=0)
    assert [p.message_id for p in report.replayed] == [UNKNOWN_COMPANY["messageId"]]
    assert report.not_matching == 2
    report = dlq.replay(*urls, outcome="exhausted", wait_seconds=0)
    assert report.replayed == [] and report.not_matching == 2
    report = dlq.replay(*urls, message_ids=["b2c3d4e5-f6a7-4890-8bcd-ef1234567891"], dry_run=True, wait_seconds=0)
    assert [p.message_id for p in report.replayed] == ["b2c3d4e5-f6a7-4890-8bcd-ef1234567891"]
    assert len(dlq.list_parked(stack.sqs, stack.resources.dlq_url, wait_seconds=0)) == 2  # a dry run changes nothing
    report = dlq.replay(*urls, message_ids=["b2c3d4e5-f6a7-4890-8bcd-ef1234567891"], wait_seconds=0)
    assert [p.message_id for p in report.replayed] == ["b2c3d4e5-f6a7-4890-8bcd-ef1234567891"]
    assert [e["messageId"] for e in stack.parked()] == ["a1b2c3d4-e5f6-7890-abcd-ef1234567890"]


def test_unreadable_messages_are_listed_but_never_replayed(stack):
    stack.sqs.send_message(QueueUrl=stack.resources.dlq_url, MessageBody="not an envelope: jane@example.com")
    stack.sqs.send_message(
        QueueUrl=stack.resources.dlq_url,
        MessageBody=json.dumps(
            {
                "v": 1,
                "messageId": "",
                "outcome": "unreadable",
                "attempts": 0,
                "first_seen": time.time(),
                "last_error": {"status": None, "reason": "unreadable_message", "error": "", "body": None},
                "raw": '{"traits": {"email": "jane@example.com"}}',
            }
        ),
    )
    parked, text = listing(stack)
    assert [p.outcome for p in parked] == ["unreadable", "unreadable"]
    assert "jane@example.com" not in text and "never replayed" in text
    report = dlq.replay(stack.sqs, stack.resources.dlq_url, stack.resources.retry_queue_url, wait_seconds=0)
    assert report.replayed == [] and len(report.unreadable) == 2
    assert retry_messages(stack) == []
    assert len(dlq.list_parked(stack.sqs, stack.resources.dlq_url, wait_seconds=0)) == 2


def test_a_failed_send_leaves_the_event_parked(stack):
    park_forbidden(stack, "signed-up")
    missing_queue = stack.resources.retry_queue_url + "-gone"
    report = dlq.replay(stack.sqs, stack.resources.dlq_url, missing_queue, wait_seconds=0)
    assert report.replayed == [] and len(report.failed) == 1
    assert [e["messageId"] for e in stack.parked()] == ["a1b2c3d4-e5f6-7890-abcd-ef1234567890"]


def test_freshdesk_texts_that_could_echo_input_are_withheld():
    body = {
        "description": "Validation failed for jane@example.com",
        "errors": [{"field": "email", "message": "jane@example.com is invalid", "code": "invalid_value"}],
    }
    summary = dlq.freshdesk_summary(body)
    assert "jane" not in summary and "email:invalid_value" in summary
    assert dlq.freshdesk_summary("<html>upstream error for jane@example.com</html>") == "(a non-JSON body, not shown)"
    assert dlq.freshdesk_summary(None, "ReadTimeoutError: ReadTimeoutError") == "ReadTimeoutError: ReadTimeoutError"


def test_the_command_finds_a_deployed_stacks_queues_through_its_outputs(stack):
    park_forbidden(stack, "signed-up")
    name = f"dlq-{uuid.uuid4().hex[:8]}"
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name,
        TemplateBody=json.dumps(
            {
                "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {
                    "RetryQueueUrl": {"Value": stack.resources.retry_queue_url},
                    "DeadLetterQueueUrl": {"Value": stack.resources.dlq_url},
                },
            }
        ),
    )
    out = io.StringIO()
    assert dlq.main(["list", "--stack", name, "--region", REGION], out=out) == 0
    assert "Dead-letter queue: 1 parked" in out.getvalue()
    assert "a1b2c3d4-e5f6-7890-abcd-ef1234567890  rejected  403" in out.getvalue()
    out = io.StringIO()
    assert dlq.main(["replay", "--stack", name, "--region", REGION, "--outcome", "rejected"], out=out) == 0
    assert "Replayed 1 message(s)" in out.getvalue()
    stack.drain()
    assert len(stack.freshdesk.contacts()) == 1 and stack.parked() == []
    out = io.StringIO()
    assert dlq.main(["list", "--stack", "no-such-stack", "--region", REGION], out=out) == 1
    assert out.getvalue().startswith("dlq: ")
