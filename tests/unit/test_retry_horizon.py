"""Outages and the retry horizon: the age bound ends retries by default, one probe while Freshdesk is
down, and pacing that waits what a 429's Retry-After asks, not the rest of a guessed window.

Flow tests against the in-memory fakes of tests/fakes.py, on a fake clock.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from signal_freshdesk.core import envelope
from signal_freshdesk.core.ingest import handle_webhook
from signal_freshdesk.core.model import Answer, Outcome, Result
from signal_freshdesk.core.pacing import RateBudget
from signal_freshdesk.core.retry import handle_retry_batch
from signal_freshdesk.core.settings import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RETRY_AGE_SECONDS,
    Settings,
    attempts_to_outlast,
)
from tests.fakes import WEBHOOK_TOKEN, FakeClock, Ports, fake_ports

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400


def identified(message_id: str, *, consent: bool = True) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": f"usr-{message_id}",
        "traits": {"name": "Ada Lovelace", "email": f"{message_id}@example.com"},
        "context": {"consent": {"canonical": {"marketing": True}}} if consent else {},
    }


def queued(event: dict[str, Any], ports: Ports, *, attempts: int = 1, age: float = 60.0) -> dict[str, Any]:
    result = Result(event["messageId"], Outcome.QUEUED, 503, reason="freshdesk_unavailable", attempted=True)
    return envelope.make_envelope(
        event, result, attempts=attempts, first_seen=ports.clock.time() - age, outcome=envelope.QUEUED
    )


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"sqs-{i}", "receiptHandle": f"r-{i}", "eventSource": "aws:sqs", "body": json.dumps(b)}
            for i, b in enumerate(bodies)
        ]
    }


def retry(ports: Ports, *bodies: dict[str, Any]) -> dict[str, Any]:
    return handle_retry_batch(sqs_event(*bodies), ports.runtime, deadline=ports.deadline(55.0))


def take_retries(ports: Ports) -> list[tuple[dict[str, Any], int]]:
    taken = list(ports.queues.retries)
    ports.queues.retries.clear()
    return taken


def ports_with(**settings: Any) -> Ports:
    return fake_ports(Settings(retry_queue_url="fake-retry", dlq_url="fake-dlq", **settings))


def down(status: int | None = 503) -> Answer:
    return Answer(status, "down" if status else None, error="" if status else "read timed out")


# --------------------------------------------------------------------------- the retry horizon


def test_the_default_attempt_bound_is_more_than_backoff_can_spend_in_the_default_age():
    assert DEFAULT_MAX_RETRY_AGE_SECONDS == DAY
    assert Settings().max_attempts == Settings.from_env({}).max_attempts == DEFAULT_MAX_ATTEMPTS == 202
    assert Settings().max_retry_age_seconds == DAY
    # Whatever RETRY_BASE_SECONDS is, failing every time cannot spend the default bound within 24 h.
    assert max(attempts_to_outlast(DAY, base) for base in (1, 2, 3, 5, 10, 30, 60, 300, 900)) == 202
    assert attempts_to_outlast(DAY, 10) == 199  # the default base: 635 s to the cap, then 450 s a step
    assert Settings.from_env({"MAX_ATTEMPTS": "8"}).max_attempts == 8  # still an explicit bound


def test_the_template_defaults_match_the_settings():
    template = (ROOT / "template.yaml").read_text()
    for parameter, value in (("MaxAttempts", DEFAULT_MAX_ATTEMPTS), ("MaxRetryAgeSeconds", DAY)):
        found = re.search(rf"^  {parameter}:\n    Type: Number\n    Default: (\d+)$", template, re.MULTILINE)
        assert found is not None and int(found.group(1)) == value


def run_outage(ports: Ports, *, limit: int = 2_000) -> tuple[dict[str, Any], list[float]]:
    """One event that fails every time, retried as soon as each delay ends. Returns what was parked and
    the event's age at each re-queue."""
    ports.freshdesk.script("create", *[down(503 if i % 3 else None) for i in range(limit)])
    body = queued(identified("h-1"), ports, attempts=1, age=0.0)
    first_seen = body["first_seen"]
    ages: list[float] = []
    for _ in range(limit):
        assert retry(ports, body) == {"batchItemFailures": []}
        if ports.queues.parked:
            [parked] = ports.queues.parked
            return parked, ages
        [(body, delay)] = take_retries(ports)
        ages.append(ports.clock.time() - first_seen)
        ports.clock.advance(delay)
    raise AssertionError("never parked")


def test_a_freshdesk_outage_of_24_hours_parks_nothing_by_default(monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda a, b: a)  # the shortest delays backoff can draw
    ports = fake_ports()
    parked, ages = run_outage(ports)
    assert all(age < DAY for age in ages)  # re-queued all day long
    assert parked["outcome"] == envelope.EXHAUSTED
    assert ports.clock.time() - parked["first_seen"] >= DAY  # the age bound ended it...
    assert parked["attempts"] < Settings().max_attempts  # ...not the attempt count
    assert parked["attempts"] == len(ports.freshdesk.calls) + 1  # only calls count (the first was ingest's)


def test_an_explicit_attempt_bound_still_ends_retries_by_count(monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda a, b: b)  # the longest delays
    ports = ports_with(max_attempts=8)
    parked, _ = run_outage(ports)
    assert parked["outcome"] == envelope.EXHAUSTED and parked["attempts"] == 8
    assert ports.clock.time() - parked["first_seen"] < 25 * 60  # the old default: parked within minutes


# --------------------------------------------------------------------------- the outage probe


def test_while_freshdesk_is_down_one_event_probes_and_the_rest_wait_without_a_call():
    ports = fake_ports()
    ports.freshdesk.script("create", *[down() for _ in range(10)])
    bodies = [queued(identified(f"o-{i}"), ports, attempts=2) for i in range(5)]
    assert retry(ports, *bodies) == {"batchItemFailures": []}
    # o-0 fails, o-1 probes (a one-off error or an outage?) and fails: the other three wait.
    assert ports.freshdesk.methods() == ["create", "create"]
    requeued = take_retries(ports)
    assert [(b["messageId"], b["attempts"]) for b, _ in requeued] == [
        ("o-0", 3),
        ("o-1", 3),
        ("o-2", 2),
        ("o-3", 2),
        ("o-4", 2),
    ]
    held = requeued[2:]
    assert {delay for _, delay in held} == {Settings().retry_base_seconds}  # until the next probe may go
    assert {(b["last_error"]["status"], b["last_error"]["reason"]) for b, _ in held} == {(503, "freshdesk_unavailable")}
    assert ports.queues.parked == []

    # The container stays warm: the next invocation, before the probe is due, makes no call at all.
    assert retry(ports, *(b for b, _ in held)) == {"batchItemFailures": []}
    assert len(ports.freshdesk.calls) == 2
    assert [b["attempts"] for b, _ in take_retries(ports)] == [2, 2, 2]

    # Once it is due, one event probes; it fails again and the next probe waits twice as long.
    ports.clock.advance(Settings().retry_base_seconds)
    assert retry(ports, *(b for b, _ in held)) == {"batchItemFailures": []}
    assert len(ports.freshdesk.calls) == 3
    again = take_retries(ports)
    assert [(b["attempts"], d) for b, d in again[1:]] == [(2, 20), (2, 20)]


def test_a_probe_that_is_answered_ends_the_outage_and_the_rest_are_delivered():
    ports = fake_ports()
    ports.freshdesk.script("create", down(None), down(None))  # timeouts count as an outage too
    bodies = [queued(identified(f"u-{i}"), ports) for i in range(4)]
    retry(ports, *bodies)
    held = [b for b, _ in take_retries(ports)][2:]
    assert len(ports.freshdesk.calls) == 2 and len(held) == 2
    ports.clock.advance(Settings().retry_base_seconds)
    assert retry(ports, *held) == {"batchItemFailures": []}
    assert ports.freshdesk.methods() == ["create"] * 4  # the probe got a 201: normal delivery resumed
    assert ports.queues.retries == [] and not ports.runtime.rate.outage.down


def test_a_probe_that_makes_no_call_hands_the_probe_to_the_next_event():
    ports = fake_ports()
    ports.freshdesk.script("create", down(), down())
    retry(ports, queued(identified("n-0"), ports), queued(identified("n-1"), ports))
    take_retries(ports)
    ports.clock.advance(Settings().retry_base_seconds)
    # The first event is dropped by the mapping (no consent): no call, so the next one probes.
    retry(ports, queued(identified("n-2", consent=False), ports), queued(identified("n-3"), ports))
    assert len(ports.freshdesk.calls) == 3 and ports.freshdesk.calls[-1].body["email"] == "n-3@example.com"


def test_held_events_still_end_by_age():
    ports = fake_ports()
    ports.freshdesk.script("create", down(), down())
    retry(ports, queued(identified("a-0"), ports), queued(identified("a-1"), ports))
    take_retries(ports)
    old = queued(identified("a-2"), ports, age=DAY + 1)
    retry(ports, old)
    assert len(ports.freshdesk.calls) == 2  # held, no call
    [parked] = ports.queues.parked
    assert parked["outcome"] == envelope.EXHAUSTED and parked["attempts"] == 1


def test_ingest_keeps_calling_while_the_retry_function_holds():
    # The ingest function does not hold events back: each live event's first attempt is the call that
    # sees a recovery soonest, and it is an attempt the event would make later anyway.
    ports = fake_ports()
    ports.freshdesk.script("create", down(), down())
    retry(ports, queued(identified("i-0"), ports), queued(identified("i-1"), ports))
    assert ports.runtime.rate.outage.down
    request = {
        "headers": {"authorization": f"Bearer {WEBHOOK_TOKEN}", "content-type": "application/json"},
        "body": json.dumps(identified("i-2")),
        "isBase64Encoded": False,
    }
    answer = handle_webhook(request, ports.runtime, deadline=ports.deadline(25.0))
    assert answer["statusCode"] == 201 and len(ports.freshdesk.calls) == 3
    assert not ports.runtime.rate.outage.down


@pytest.mark.parametrize("status", [200, 201, 404, 409, 429])
def test_any_answer_below_500_means_freshdesk_is_up(status):
    clock = FakeClock()
    budget = RateBudget(clock=clock.monotonic)
    budget.observe(down())
    assert budget.outage.admit(10) == 0  # the probe
    budget.observe(down(None))  # which fails too
    assert budget.outage.down and budget.outage.admit(10) == 10
    budget.observe(Answer(status, {}))
    assert not budget.outage.down and budget.outage.admit(10) == 0


def test_only_one_probe_at_a_time():
    clock = FakeClock()
    gate = RateBudget(clock=clock.monotonic).outage
    gate.observe(down())
    assert gate.admit(10) == 0  # the probe
    assert gate.admit(10) > 0  # while its answer is awaited
    gate.release_probe()
    assert gate.admit(10) == 0


# --------------------------------------------------------------------------- pacing after a 429


def rate_limited(retry_after: str = "1") -> Answer:
    headers = {"Retry-After": retry_after, "X-RateLimit-Remaining": "0", "X-RateLimit-Total": "50"}
    return Answer(429, {"message": "rate limited"}, headers)


def test_after_a_429_with_retry_after_1_the_budget_holds_nothing_past_1_second():
    clock = FakeClock()
    budget = RateBudget(clock=clock.monotonic)
    budget.observe(rate_limited("1"))
    assert budget.rate_limited_for() == pytest.approx(1)
    assert budget.pacing_delay(1) <= 1
    clock.advance(1)
    assert budget.pacing_delay(1) == 0 and budget.rate_limited_for() == 0


def test_a_spent_budget_without_a_429_still_waits_for_the_window():
    clock = FakeClock()
    budget = RateBudget(clock=clock.monotonic)
    budget.observe(Answer(201, {}, {"X-RateLimit-Remaining": "0", "X-RateLimit-Total": "50"}))
    clock.advance(1)
    assert budget.pacing_delay(1) == pytest.approx(59)


def test_events_queued_by_a_429_with_retry_after_1_are_delivered_a_second_later():
    ports = fake_ports()
    ports.freshdesk.script("create", rate_limited("1"))
    bodies = [queued(identified(f"q-{i}"), ports) for i in range(4)]
    assert retry(ports, *bodies) == {"batchItemFailures": []}
    assert len(ports.freshdesk.calls) == 1  # the others saw the closed gate
    requeued = take_retries(ports)
    assert [delay for _, delay in requeued] == [1, 1, 1, 1]
    ports.clock.advance(1)  # SQS hands them back after their delay
    assert retry(ports, *(b for b, _ in requeued)) == {"batchItemFailures": []}
    assert ports.clock.slept == []  # not held back for the rest of a guessed 60 s window
    assert ports.queues.retries == [] and len(ports.freshdesk.calls) == 5
    assert all(ports.store.records[f"q-{i}"].summary["outcome"] == "delivered" for i in range(4))


def test_failures_of_calls_already_in_flight_count_once_not_each():
    from signal_freshdesk.core.pacing import OutageGate

    clock = FakeClockForGate()
    gate = OutageGate(clock)
    for _ in range(30):  # a batch's concurrent calls all failing in the same second
        gate.observe(Answer(503, "down"))
    assert gate.failures == 1
    assert gate.admit(base=10) == 0  # the next call probes at once
    gate.observe(Answer(503, "down"))  # the probe fails
    assert gate.failures == 2 and gate.admit(base=10) == pytest.approx(10)


class FakeClockForGate:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now
