"""The flow modules (delivery, pipeline, ingest, retry) against in-memory fakes of every port.

No sockets and no moto: each test scripts Freshdesk's answers and reads what reached the queues, the
idempotency store and the secret.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from signal_freshdesk.core import envelope
from signal_freshdesk.core.errors import SecretUnavailable
from signal_freshdesk.core.ingest import handle_webhook
from signal_freshdesk.core.model import Answer, Outcome, Result
from signal_freshdesk.core.ports import DONE, IN_PROGRESS, Claim
from signal_freshdesk.core.retry import handle_retry_batch
from signal_freshdesk.core.settings import Settings
from signal_freshdesk.core.timing import Deadline
from tests.fakes import WEBHOOK_TOKEN, Ports, fake_ports

GRANTED = {"canonical": {"marketing": True}}


def identified(message_id: str = "m-1", **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": f"usr-{message_id}",
        "traits": {"name": "Ada Lovelace", "email": f"{message_id}@example.com", **traits},
        "context": {"consent": GRANTED},
    }


def signed_up(message_id: str = "s-1") -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Signed Up",
        "messageId": message_id,
        "userId": f"usr-{message_id}",
        "properties": {"method": "google"},
        "traits": {"name": "Grace Hopper", "email": f"{message_id}@example.com"},
        "context": {"consent": GRANTED},
    }


def phone_only(message_id: str = "p-1") -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "traits": {"name": "Alan Turing", "phone": "07700 900123"},
        "context": {"consent": GRANTED},
    }


def request(body: Any, token: str = WEBHOOK_TOKEN) -> dict[str, Any]:
    return {
        "headers": {"authorization": f"Bearer {token}", "content-type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def post(ports: Ports, body: Any, *, seconds: float = 25.0, token: str = WEBHOOK_TOKEN) -> tuple[int, dict]:
    answer = handle_webhook(request(body, token), ports.runtime, deadline=ports.deadline(seconds))
    return answer["statusCode"], json.loads(answer["body"])


def conflict_409(*ids: int) -> Answer:
    return Answer(
        409, {"errors": [{"field": "email", "code": "duplicate_value", "additional_info": {"user_id": i}} for i in ids]}
    )


@pytest.fixture
def ports() -> Ports:
    return fake_ports()


# --------------------------------------------------------------------------- the outcome table
def test_a_201_is_delivered_with_one_call(ports):
    status, body = post(ports, signed_up())
    assert (status, body["outcome"], body["contact_id"]) == (201, "delivered", 101)
    assert ports.freshdesk.methods() == ["create"]
    assert ports.queues.retries == [] and ports.queues.parked == []


def test_a_409_on_signed_up_is_a_final_conflict_without_an_update(ports):
    ports.freshdesk.script("create", conflict_409(7))
    status, body = post(ports, signed_up())
    assert (status, body["outcome"]) == (409, "conflict")
    assert ports.freshdesk.methods() == ["create"]


def test_a_409_on_identified_reads_the_tags_and_updates_with_them_merged(ports):
    ports.freshdesk.script("create", conflict_409(7))
    ports.freshdesk.script("get", Answer(200, {"id": 7, "tags": ["vip"]}))
    status, body = post(ports, identified())
    assert (status, body["outcome"], body["contact_id"]) == (200, "updated", 7)
    assert ports.freshdesk.methods() == ["create", "get", "update"]
    update = ports.freshdesk.calls[-1]
    assert update.contact_id == 7 and update.body["tags"] == ["vip", "marketing-consent"]


def test_a_409_naming_two_contacts_is_a_conflict_and_nothing_is_guessed(ports):
    ports.freshdesk.script("create", conflict_409(7, 8))
    status, body = post(ports, identified())
    assert (status, body["outcome"]) == (409, "conflict")
    assert ports.freshdesk.methods() == ["create"]


def test_a_429_is_queued_with_the_delay_freshdesk_asked_for(ports):
    ports.freshdesk.script("create", Answer(429, {}, {"Retry-After": "37"}))
    status, body = post(ports, identified())
    assert (status, body["outcome"], body["retry_in_seconds"]) == (202, "queued", 37)
    [(queued, delay)] = ports.queues.retries
    assert delay == 37 and queued["outcome"] == envelope.QUEUED and queued["attempts"] == 1
    assert queued["last_error"]["status"] == 429


@pytest.mark.parametrize(
    "answer", [Answer(503, "busy"), Answer(None, error="ReadTimeoutError")], ids=["5xx", "timeout"]
)
def test_a_5xx_or_no_answer_is_queued_with_backoff(ports, answer):
    ports.freshdesk.script("create", answer)
    status, body = post(ports, identified())
    assert (status, body["outcome"], body["reason"]) == (202, "queued", "freshdesk_unavailable")
    [(_, delay)] = ports.queues.retries
    assert 5 <= delay <= 10  # the first backoff step: base 10 s, jittered down to half


def test_a_401_re_reads_the_secret_past_the_cache_and_tries_once_more(ports):
    def rotated_meanwhile(call):
        ports.secret.secret["api_key"] = "key-2"  # someone rotated the key in Secrets Manager
        return Answer(401, {"code": "invalid_credentials"})

    ports.freshdesk.script("create", rotated_meanwhile)
    status, body = post(ports, identified())
    assert (status, body["outcome"]) == (201, "delivered")
    assert [c.api_key for c in ports.freshdesk.calls] == ["key-1", "key-2"]
    assert ports.secret.reads == [False, True]  # the re-read is forced past every cache


def test_a_second_401_is_rejected_and_parked(ports):
    ports.freshdesk.script(
        "create", Answer(401, {"code": "invalid_credentials"}), Answer(401, {"code": "invalid_credentials"})
    )
    status, body = post(ports, identified())
    assert (status, body["outcome"]) == (401, "rejected")
    assert len(ports.freshdesk.calls) == 2
    [parked] = ports.queues.parked
    assert parked["outcome"] == envelope.REJECTED and parked["last_error"]["status"] == 401


@pytest.mark.parametrize("status", [400, 403, 404, 405])
def test_a_final_refusal_is_rejected_and_parked_with_freshdesk_s_answer(ports, status):
    refusal = {"description": "Validation failed", "errors": [{"field": "name", "code": "invalid_value"}]}
    ports.freshdesk.script("create", Answer(status, refusal))
    answer_status, body = post(ports, identified())
    assert (answer_status, body["outcome"], body["freshdesk"]) == (status, "rejected", refusal)
    [parked] = ports.queues.parked
    assert parked["last_error"] == {"status": status, "reason": f"freshdesk_{status}", "error": "", "body": refusal}
    assert ports.queues.retries == []


def test_an_invalid_optional_field_is_dropped_and_the_contact_sent_again(ports):
    ports.freshdesk.script("create", Answer(400, {"errors": [{"field": "signup_method", "code": "invalid_field"}]}))
    status, body = post(ports, signed_up())
    assert (status, body["outcome"], body["dropped_fields"]) == (201, "delivered", ["signup_method"])
    first, second = ports.freshdesk.calls
    assert first.body["custom_fields"] == {"signup_method": "google"} and "custom_fields" not in second.body


def test_a_phone_only_contact_is_looked_up_before_it_is_created(ports):
    status, body = post(ports, phone_only())
    assert (status, body["outcome"]) == (201, "delivered")
    assert ports.freshdesk.methods() == ["find", "create"]
    assert ports.freshdesk.calls[0].phone == "+447700900123"


def test_a_phone_only_contact_found_once_is_updated(ports):
    ports.freshdesk.script("find", Answer(200, [{"id": 9}]))
    status, body = post(ports, phone_only())
    assert (status, body["outcome"], body["contact_id"]) == (200, "updated", 9)
    assert ports.freshdesk.methods() == ["find", "get", "update"]


def test_after_a_429_the_next_event_waits_without_calling(ports):
    ports.freshdesk.script("create", Answer(429, {}, {"Retry-After": "20"}))
    post(ports, identified("m-1"))
    status, body = post(ports, identified("m-2"))
    assert (status, body["outcome"], body["reason"]) == (202, "queued", "rate_limited")
    assert len(ports.freshdesk.calls) == 1
    assert ports.queues.retries[-1][1] == 20


def test_a_dropped_event_makes_no_call_and_queues_nothing(ports):
    status, body = post(ports, {"type": "page", "messageId": "pv-1"})
    assert (status, body["outcome"], body["reason"]) == (200, "dropped", "page_view")
    assert ports.freshdesk.calls == [] and ports.queues.retries == [] and ports.queues.parked == []


# --------------------------------------------------------------------------- the webhook
def test_a_wrong_token_is_refused_before_anything_else(ports):
    status, body = post(ports, identified(), token="not-the-token-at-all")
    assert (status, body["outcome"]) == (401, "unauthorized")
    assert ports.freshdesk.calls == [] and ports.store.records == {}


def test_an_unreadable_secret_answers_503(ports):
    ports.secret.fail_with = SecretUnavailable("fake: throttled")
    status, body = post(ports, identified())
    assert (status, body["outcome"]) == (503, "error")


def test_a_batch_answers_one_result_per_event_in_order(ports):
    ports.freshdesk.script("create", Answer(201, {"id": 1}))
    status, body = post(ports, [identified("b-1"), {"type": "page", "messageId": "b-2"}])
    assert status == 200
    assert [(r["messageId"], r["outcome"]) for r in body["results"]] == [("b-1", "delivered"), ("b-2", "dropped")]


def test_events_left_when_the_deadline_nears_are_queued_without_a_call(ports):
    status, body = post(ports, [identified(f"late-{i}") for i in range(5)], seconds=1.0)
    assert status == 202
    assert {r["outcome"] for r in body["results"]} == {"queued"}
    assert {r["reason"] for r in body["results"]} == {"deadline"}
    assert ports.freshdesk.calls == [] and len(ports.queues.retries) == 5


def test_an_event_that_cannot_be_secured_answers_503_and_releases_its_claim(ports):
    ports.freshdesk.script("create", Answer(503, "busy"))
    ports.queues.down = True
    status, body = post(ports, identified("lost-1"))
    assert (status, body["outcome"]) == (503, "failed")
    assert ports.store.released == ["lost-1"] and "lost-1" not in ports.store.records


def test_a_re_sent_event_is_answered_from_its_record_without_a_call(ports):
    first_status, first = post(ports, identified("dup-1"))
    status, body = post(ports, identified("dup-1"))
    assert (status, body["outcome"], body["duplicate"]) == (first_status, "delivered", True)
    assert body["contact_id"] == first["contact_id"]
    assert len(ports.freshdesk.calls) == 1


def test_an_event_another_invocation_holds_answers_503(ports):
    ports.store.records["busy-1"] = Claim(IN_PROGRESS)
    status, body = post(ports, identified("busy-1"))
    assert (status, body["reason"]) == (503, "in_progress_elsewhere")
    assert ports.freshdesk.calls == []


def test_without_a_working_store_events_are_still_delivered(ports):
    ports.store.down = True
    status, body = post(ports, identified("no-store"))
    assert (status, body["outcome"]) == (201, "delivered")


# --------------------------------------------------------------------------- the retry function
def sqs_event(*bodies: Any) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"sqs-{i}",
                "receiptHandle": f"r-{i}",
                "eventSource": "aws:sqs",
                "body": body if isinstance(body, str) else json.dumps(body),
            }
            for i, body in enumerate(bodies)
        ]
    }


def queued(
    event: dict[str, Any], ports: Ports, *, attempts: int = 1, age: float = 60.0, outcome: str = envelope.QUEUED
) -> dict[str, Any]:
    result = Result(event["messageId"], Outcome.QUEUED, 503, reason="freshdesk_unavailable")
    return envelope.make_envelope(
        event, result, attempts=attempts, first_seen=ports.clock.time() - age, outcome=outcome
    )


def retry(ports: Ports, event: dict[str, Any], seconds: float = 55.0) -> dict[str, Any]:
    return handle_retry_batch(event, ports.runtime, deadline=ports.deadline(seconds))


def test_a_retried_event_that_is_delivered_is_deleted_and_recorded(ports):
    answer = retry(ports, sqs_event(queued(identified("r-1"), ports)))
    assert answer == {"batchItemFailures": []}
    assert ports.freshdesk.methods() == ["create"]
    assert ports.store.records["r-1"].state == DONE and ports.store.records["r-1"].summary["outcome"] == "delivered"


def test_a_retried_event_that_fails_again_is_queued_with_one_more_attempt(ports):
    ports.freshdesk.script("create", Answer(502, "bad gateway"))
    assert retry(ports, sqs_event(queued(identified("r-2"), ports, attempts=3))) == {"batchItemFailures": []}
    [(again, delay)] = ports.queues.retries
    assert again["attempts"] == 4 and 40 <= delay <= 80  # the fourth backoff step


def test_retries_end_in_the_dlq_once_the_attempts_are_spent(ports):
    ports.freshdesk.script("create", Answer(500, "down"))
    retry(ports, sqs_event(queued(identified("r-3"), ports, attempts=Settings().max_attempts - 1)))
    assert ports.queues.retries == []
    [parked] = ports.queues.parked
    assert parked["outcome"] == envelope.EXHAUSTED and parked["attempts"] == Settings().max_attempts
    assert parked["last_error"]["status"] == 500


def test_retries_end_in_the_dlq_once_the_event_is_too_old(ports):
    ports.freshdesk.script("create", Answer(500, "down"))
    retry(ports, sqs_event(queued(identified("r-4"), ports, attempts=1, age=Settings().max_retry_age_seconds + 1)))
    assert [p["outcome"] for p in ports.queues.parked] == [envelope.EXHAUSTED]


def test_a_rejection_during_retry_is_parked_once(ports):
    ports.freshdesk.script("create", Answer(400, {"errors": [{"field": "name", "code": "invalid_value"}]}))
    retry(ports, sqs_event(queued(identified("r-5"), ports)))
    assert [p["outcome"] for p in ports.queues.parked] == [envelope.REJECTED]


def test_a_message_sqs_delivers_again_after_it_was_handled_costs_no_call(ports):
    ports.store.records["r-6"] = Claim(DONE, {"outcome": "delivered", "status": 201})
    assert retry(ports, sqs_event(queued(identified("r-6"), ports))) == {"batchItemFailures": []}
    assert ports.freshdesk.calls == []


def test_a_replay_from_the_dlq_is_tried_again_although_it_was_rejected(ports):
    ports.store.records["r-7"] = Claim(DONE, {"outcome": "rejected", "status": 400})
    replay = envelope.replay_envelope(
        queued(identified("r-7"), ports, outcome=envelope.REJECTED), now=ports.clock.time()
    )
    retry(ports, sqs_event(replay))
    assert ports.freshdesk.methods() == ["create"]


def test_an_unreadable_message_is_parked_as_it_came(ports):
    assert retry(ports, sqs_event("not an envelope")) == {"batchItemFailures": []}
    [parked] = ports.queues.parked
    assert parked["outcome"] == envelope.UNREADABLE and parked["raw"] == "not an envelope"


def test_a_record_that_cannot_be_secured_returns_to_the_queue(ports):
    ports.freshdesk.script("create", Answer(503, "busy"), Answer(201, {"id": 3}))
    ports.queues.down = True
    answer = retry(ports, sqs_event(queued(identified("r-8"), ports), queued(identified("r-9"), ports)))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "sqs-0"}]}


def test_records_not_started_before_the_deadline_return_without_a_call(ports):
    answer = retry(ports, sqs_event(queued(identified("r-10"), ports)), seconds=1.0)  # less than the read timeout
    assert answer == {"batchItemFailures": [{"itemIdentifier": "sqs-0"}]}
    assert ports.freshdesk.calls == []


def test_a_spent_rate_budget_requeues_after_a_bounded_wait_without_calling(ports):
    ports.freshdesk.script("create", Answer(201, {"id": 4}, {"X-RateLimit-Remaining": "0", "X-RateLimit-Total": "50"}))
    answer = retry(ports, sqs_event(queued(identified("r-11"), ports), queued(identified("r-12"), ports)))
    assert answer == {"batchItemFailures": []}
    assert ports.freshdesk.methods() == ["create"]  # the second waited, then went back to the queue
    assert ports.clock.slept == [pytest.approx(Settings().retry_pacing_max_wait_seconds)]
    [(requeued, delay)] = ports.queues.retries
    assert requeued["messageId"] == "r-12" and requeued["attempts"] == 1 and delay == 50


def test_an_empty_or_malformed_sqs_event_has_nothing_to_report(ports):
    assert retry(ports, {}) == {"batchItemFailures": []}
    assert retry(ports, {"Records": []}) == {"batchItemFailures": []}


def test_a_deadline_counts_down_on_its_clock(ports):
    deadline = Deadline.after(10, ports.clock.monotonic)
    ports.clock.advance(4)
    assert deadline.remaining() == pytest.approx(6) and deadline.has(6) and not deadline.has(6.1)
