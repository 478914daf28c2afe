"""Pacing under Freshdesk's per-window rate limit: the budget bookkeeping and the retry handler's use of it.

Windows are scaled down to about a second (FRESHDESK_RATE_WINDOW_SECONDS); nothing here asserts a timing
beyond "it waited" or "it did not call".
"""

from __future__ import annotations

import json
import time

from signal_freshdesk.adapters.freshdesk import FreshdeskClient
from signal_freshdesk.core.credentials import Credentials
from signal_freshdesk.core.pacing import RateBudget
from signal_freshdesk_dev.apigw import LambdaContext
from signal_freshdesk_dev.handlers import retry_handler

KEY = "sandbox-api-key"


class PacedClient:
    """The HTTP client with a RateBudget fed by its answers, as the core's delivery feeds it."""

    def __init__(self, base_url: str, *, rate_window: float = 60.0) -> None:
        self.client = FreshdeskClient(base_url_override=base_url)
        self.rate = RateBudget(window=rate_window)

    def create_contact(self, creds, body):
        answer = self.client.create_contact(creds, body)
        self.rate.observe(answer)
        return answer

    def get_contact(self, creds, contact_id):
        answer = self.client.get_contact(creds, contact_id)
        self.rate.observe(answer)
        return answer

    def pacing_delay(self, reserve: int = 1) -> float:
        return self.rate.pacing_delay(reserve)

    def budget(self) -> tuple[int | None, int | None]:
        return self.rate.remaining, self.rate.total


def contact(i: int) -> dict:
    return {"name": f"Pace {i}", "email": f"pace.{i}@example.com"}


def signed_up(i: int) -> dict:
    return {
        "type": "track",
        "event": "Signed Up",
        "messageId": f"pace-{i}",
        "userId": f"usr_pace_{i}",
        "context": {
            "traits": {"name": f"Pace {i}", "email": f"pace.{i}@example.com"},
            "consent": {"canonical": {"marketing": True}},
        },
    }


def receive_records(stack) -> tuple[list[dict], list[dict]]:
    """Take up to 10 messages from the retry queue, and the SQS records the retry handler would get."""
    messages = stack.sqs.receive_message(
        QueueUrl=stack.resources.retry_queue_url,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )["Messages"]
    return messages, [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]


def queue_backlog(stack, count: int) -> None:
    for start in range(0, count, 10):
        stack.sqs.send_message_batch(
            QueueUrl=stack.resources.retry_queue_url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(
                        {
                            "v": 1,
                            "messageId": f"pace-{i}",
                            "outcome": "queued",
                            "attempts": 1,
                            "first_seen": time.time(),
                            "last_error": {"status": 429, "reason": "rate_limited", "error": "", "body": None},
                            "event": signed_up(i),
                        }
                    ),
                }
                for i in range(start, min(start + 10, count))
            ],
        )


def test_the_client_holds_back_once_the_budget_is_down_to_the_reserve(freshdesk):
    freshdesk.set_rate_limit(4, 1.0)
    client = PacedClient(freshdesk.base_url, rate_window=1.0)
    creds = Credentials("sandbox", KEY, "t" * 16)
    assert client.pacing_delay(reserve=1) == 0  # nothing known yet
    for i in range(3):
        assert client.create_contact(creds, contact(i)).status == 201
    assert client.budget() == (1, 4)
    assert 0 < client.pacing_delay(reserve=1) <= 1.0
    assert client.pacing_delay(reserve=0) == 0
    time.sleep(client.pacing_delay(reserve=1) + 0.05)
    assert client.pacing_delay(reserve=1) == 0  # that window must be over
    assert client.create_contact(creds, contact(3)).status == 201
    assert client.budget() == (3, 4)  # a new window, seen as such
    assert client.pacing_delay(reserve=1) == 0


def test_a_missing_or_unreadable_budget_header_changes_nothing(freshdesk):
    client = PacedClient(freshdesk.base_url)
    assert client.get_contact(Credentials("sandbox", KEY, "t" * 16), 999).status == 404
    assert client.budget() == (399, 400)
    assert client.pacing_delay() == 0


def test_the_retry_function_drains_a_backlog_without_a_429(stack, configure):
    configure(FRESHDESK_RATE_WINDOW_SECONDS="1", RETRY_RATE_RESERVE="0")
    stack.freshdesk.set_rate_limit(4, 1.0)
    queue_backlog(stack, 10)
    stats = stack.drain(timeout=30)
    statuses = [r["status"] for r in stack.freshdesk.requests()]
    assert statuses.count(201) == 10 and 429 not in statuses
    assert len(stack.freshdesk.contacts()) == 10 and stack.parked() == []
    assert stats.failures == 0


def test_when_the_wait_outlasts_the_function_the_rest_is_requeued_without_calling(stack, configure):
    configure(FRESHDESK_RATE_WINDOW_SECONDS="60", RETRY_RATE_RESERVE="0")
    stack.freshdesk.set_rate_limit(1, 60)
    queue_backlog(stack, 3)
    # Read timeout 2 s and 5 s kept in hand: records may start for about 0.5 s of this invocation.
    messages, records = receive_records(stack)
    started = time.monotonic()
    answer = retry_handler()({"Records": records}, LambdaContext(timeout_seconds=7.5))
    assert time.monotonic() - started < 5
    assert answer == {"batchItemFailures": []}  # every record is secured: none waits out a visibility timeout
    assert [r["status"] for r in stack.freshdesk.requests()] == [201]  # one call, then the budget was spent
    for m in messages:
        stack.sqs.delete_message(QueueUrl=stack.resources.retry_queue_url, ReceiptHandle=m["ReceiptHandle"])
    depth = stack.queue_depth()
    assert depth["Delayed"] == len(records) - 1


def test_an_invocation_waits_at_most_the_configured_time_then_requeues(stack, configure):
    configure(FRESHDESK_RATE_WINDOW_SECONDS="60", RETRY_RATE_RESERVE="0", RETRY_PACING_MAX_WAIT_SECONDS="0.3")
    stack.freshdesk.set_rate_limit(1, 60)
    queue_backlog(stack, 3)
    messages, records = receive_records(stack)
    started = time.monotonic()
    answer = retry_handler()({"Records": records}, LambdaContext(timeout_seconds=60))
    assert time.monotonic() - started < 5  # not the minute the window has left
    assert answer == {"batchItemFailures": []}
    assert [r["status"] for r in stack.freshdesk.requests()] == [201]
    for m in messages:
        stack.sqs.delete_message(QueueUrl=stack.resources.retry_queue_url, ReceiptHandle=m["ReceiptHandle"])
    requeued = stack.queue_depth()["Delayed"]
    assert requeued == len(records) - 1
