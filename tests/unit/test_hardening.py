"""Hardening of request handling, each finding pinned against the in-memory port fakes.

1. an escaped lone surrogate in the body is a 400, not a 503 or a poisoned Freshdesk call;
2. the duplicate check knows the event, not only its messageId (digest in the record; ids over 128
   characters refused);
3. the same messageId twice in one batch: the repeat answered from the first, not a 503;
4. no bearer token: 401 before the secret is read; a configuration error is remembered for 30 s;
5. a signature at most 60 s ahead of the clock, and admitted once (a replay cache);
6. Retry-After as an HTTP-date and in fractions (tests/unit/test_outcomes.py; the flow here);
7. answers carry Freshdesk's codes and field names, never its message texts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any

import pytest

from signal_freshdesk.core import envelope, idempotency, ingest
from signal_freshdesk.core.credentials import CONFIG_ERROR_TTL_SECONDS, CredentialStore
from signal_freshdesk.core.errors import ConfigError, SecretUnavailable
from signal_freshdesk.core.ingest import handle_webhook
from signal_freshdesk.core.model import Answer
from signal_freshdesk.core.ports import DONE, Claim
from signal_freshdesk.core.requests import BadRequest, parse_events
from signal_freshdesk.core.retry import handle_retry_batch
from signal_freshdesk.core.webhook_auth import verify_signature
from tests.fakes import SECRET, WEBHOOK_TOKEN, FakeSecretSource, Ports, fake_ports

GRANTED = {"canonical": {"marketing": True}}
SIGNING_KEY = "whsec_hardening_0123456789abcdef"  # the log privacy plugin collects *SECRET*-named constants


def person(message_id: Any, n: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": f"usr-{n}",
        "traits": {"name": f"Person Number{n}", "email": f"person{n}@example.com"},
        "context": {"consent": GRANTED},
    }


def raw_request(text: str, *, headers: dict[str, str] | None = None, token: str | None = WEBHOOK_TOKEN) -> dict:
    all_headers = {"content-type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    return {"headers": all_headers, "body": text, "isBase64Encoded": False}


def send(ports: Ports, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = handle_webhook(request, ports.runtime, deadline=ports.deadline())
    return answer["statusCode"], json.loads(answer["body"])


def post(ports: Ports, body: Any) -> tuple[int, dict[str, Any]]:
    return send(ports, raw_request(json.dumps(body)))


@pytest.fixture
def ports() -> Ports:
    return fake_ports()


@pytest.fixture
def metrics(monkeypatch) -> list[str]:
    counted: list[str] = []
    for module in (ingest, idempotency):
        monkeypatch.setattr(module, "count", lambda name, value=1: counted.append(name))
    return counted


# --------------------------------------------------------------------------- 1. lone surrogates
@pytest.mark.parametrize(
    "text",
    [
        '{"type":"identify","messageId":"\\ud800","userId":"u1","traits":{"name":"Ada","email":"a@example.com"}}',
        '{"type":"identify","messageId":"m-s2","userId":"u1","traits":{"name":"Ada \\udfff","email":"a@example.com"}}',
        '{"type":"identify","messageId":"m-s3","traits":{"\\udc80":"x"}}',
        '[{"type":"page","messageId":"ok"},{"deep":[[{"a":["\\ud83d"]}]]}]',
        '{"batch":[{"type":"page","messageId":"m-s5","properties":{"k\\ud800ey":1}}]}',
    ],
    ids=["in-message-id", "in-a-name", "in-a-key", "deep-in-a-batch", "in-a-nested-key"],
)
def test_a_body_with_an_escaped_lone_surrogate_is_a_400_saying_so(ports, text):
    status, body = send(ports, raw_request(text))
    assert (status, body["outcome"]) == (400, "bad_request")
    assert "Unicode" in body["message"] and "surrogate" in body["message"]
    assert ports.freshdesk.calls == [] and ports.queues.retries == [] and ports.store.records == {}


def test_a_surrogate_pair_is_unicode_and_accepted():
    events, _ = parse_events(b'{"type":"page","messageId":"m","x":"\\ud83d\\ude00"}', 100)
    assert events[0]["x"] == "\U0001f600"
    with pytest.raises(BadRequest):
        parse_events(b'{"type":"page","messageId":"m","x":"\\ude00\\ud83d"}', 100)  # reversed: two lone halves


# --------------------------------------------------------------------------- 2. the event, not only its id
def test_a_batch_of_different_people_sharing_one_message_id_is_delivered_in_full(ports, metrics):
    status, body = post(ports, [person("shared", n) for n in range(5)])
    assert status == 200
    assert [(r["outcome"], r.get("duplicate", False)) for r in body["results"]] == [("delivered", False)] * 5
    assert {r["messageId"] for r in body["results"]} == {"shared"}
    assert len(ports.freshdesk.calls) == 5
    assert metrics.count("message_id_reused") == 4


def test_a_re_sent_batch_sharing_one_message_id_is_answered_from_the_records(ports):
    batch = [person("shared", n) for n in range(3)]
    post(ports, batch)
    status, body = post(ports, batch)
    assert status == 200 and all(r["duplicate"] for r in body["results"])
    assert len(ports.freshdesk.calls) == 3
    # and one of them again on its own
    status, body = post(ports, batch[2])
    assert (status, body["outcome"], body["duplicate"]) == (201, "delivered", True)
    assert len(ports.freshdesk.calls) == 3


def test_the_number_77_and_the_text_77_are_different_events(ports, metrics):
    first_status, _ = post(ports, person(77, 1))
    status, body = post(ports, person("77", 2))
    assert (first_status, status, body["outcome"], body.get("duplicate")) == (201, 201, "delivered", None)
    assert len(ports.freshdesk.calls) == 2
    assert metrics.count("message_id_reused") == 1


def test_the_idempotency_record_keeps_a_digest_and_no_contact_data(ports):
    post(ports, person("rec-1", 1))
    record = ports.store.records["rec-1"]
    assert record.state == DONE and set(record.summary) == {"outcome", "status", "contact_id", "reason", "digest"}
    assert len(record.summary["digest"]) == 64 and "person1" not in json.dumps(record.summary)


def test_a_record_without_a_digest_still_answers_its_message_id(ports):
    # written before digests were kept: the same messageId counts as the same event, as before
    ports.store.records["old-1"] = Claim(DONE, {"outcome": "delivered", "status": 201, "contact_id": 9})
    status, body = post(ports, person("old-1", 1))
    assert (status, body["duplicate"], body["contact_id"]) == (201, True, 9)
    assert ports.freshdesk.calls == []


@pytest.mark.parametrize("message_id", ["x" * 129, "é" * 200, int("9" * 129)], ids=["129", "200-accented", "int"])
def test_a_message_id_over_128_characters_is_refused_not_cut(ports, message_id):
    status, body = post(ports, person(message_id, 1))
    assert (status, body["outcome"], body["reason"]) == (400, "rejected", "message_id_too_long")
    assert "128" in body["error"] and body["messageId"] == ""
    assert ports.freshdesk.calls == [] and ports.queues.parked == [] and ports.store.records == {}


def test_a_message_id_of_128_characters_is_kept_whole(ports):
    status, body = post(ports, [person("y" * 128, 1), person("y" * 129, 2)])
    assert status == 200
    assert [(r["outcome"], r["status"]) for r in body["results"]] == [("delivered", 201), ("rejected", 400)]
    assert body["results"][0]["messageId"] == "y" * 128 and list(ports.store.records) == ["y" * 128]


def sqs_event(*bodies: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"sqs-{i}", "receiptHandle": f"r-{i}", "eventSource": "aws:sqs", "body": json.dumps(b)}
            for i, b in enumerate(bodies)
        ]
    }


def test_a_queued_event_under_a_reused_id_is_retried_under_its_own_record(ports):
    """The retry function looks records up by the envelope's messageId: for the second event under a used
    id that is its own record key, so the first event's record neither skips nor is overwritten by it."""
    ports.freshdesk.script("create", Answer(201, {"id": 1}), Answer(503, "busy"))
    post(ports, person("shared", 1))
    status, body = post(ports, person("shared", 2))
    assert (status, body["outcome"], body["messageId"]) == (202, "queued", "shared")
    [(queued, _)] = ports.queues.retries
    digest = idempotency.event_digest(person("shared", 2))
    assert queued["messageId"] == f"shared#{digest}" and queued["event"]["messageId"] == "shared"

    answer = handle_retry_batch(sqs_event(queued), ports.runtime, deadline=ports.deadline(55))
    assert answer == {"batchItemFailures": []}
    assert ports.freshdesk.methods() == ["create", "create", "create"]  # retried, not skipped as handled
    assert ports.store.records[f"shared#{digest}"].summary["outcome"] == "delivered"
    assert ports.store.records[f"shared#{digest}"].summary["digest"] == digest
    assert ports.store.records["shared"].summary["contact_id"] == 1  # the first event's record is intact


def test_a_retry_keeps_the_digest_of_the_record_it_completes(ports):
    ports.freshdesk.script("create", Answer(503, "busy"))
    post(ports, person("kept", 1))
    [(queued, _)] = ports.queues.retries
    handle_retry_batch(sqs_event(queued), ports.runtime, deadline=ports.deadline(55))
    record = ports.store.records["kept"]
    assert record.summary["outcome"] == "delivered"
    assert record.summary["digest"] == idempotency.event_digest(person("kept", 1))
    # so another event under that id is still told apart afterwards
    status, body = post(ports, person("kept", 2))
    assert (status, body.get("duplicate")) == (201, None)


# --------------------------------------------------------------------------- 3. one id twice in a batch
@pytest.mark.parametrize("store", [True, False], ids=["with-store", "without-store"])
def test_the_same_event_twice_in_a_batch_is_handled_once_and_the_repeat_answered_from_it(store):
    ports = fake_ports(idempotency=store)
    twice = person("twice", 1)
    status, body = post(ports, [twice, person("other", 2), dict(twice)])
    assert status == 200
    first, _, repeat = body["results"]
    assert first["outcome"] == "delivered" and "duplicate" not in first
    assert repeat == {**first, "duplicate": True}
    assert len(ports.freshdesk.calls) == 2


def test_the_same_dropped_event_twice_lands_in_two_lanes_and_is_still_answered_once(ports, monkeypatch):
    # Dropped events carry no identifier: each is a lane of its own, so the copies run concurrently.
    claimed: list[str] = []
    claim = ports.store.claim
    monkeypatch.setattr(ports.store, "claim", lambda key, hold_seconds=None: claimed.append(key) or claim(key))
    page = {"type": "page", "messageId": "pv-twice"}
    status, body = post(ports, [page, dict(page), dict(page)])
    assert status == 200
    assert [(r["outcome"], r.get("duplicate", False)) for r in body["results"]] == [
        ("dropped", False),
        ("dropped", True),
        ("dropped", True),
    ]
    assert claimed == ["pv-twice"]  # the repeats never race the first for its record


def test_a_repeat_is_answered_from_the_first_even_while_its_record_is_still_in_progress(ports, monkeypatch):
    # Before: the repeat found the first copy's claim in progress and the whole batch was answered 503.
    monkeypatch.setattr(ports.store, "complete", lambda key, summary: None)  # the claim stays in progress
    twice = person("in-flight", 1)
    status, body = post(ports, [twice, person("other", 2), dict(twice)])
    assert status == 200
    assert [(r["outcome"], r.get("duplicate", False)) for r in body["results"]] == [
        ("delivered", False),
        ("delivered", False),
        ("delivered", True),
    ]


def test_a_repeat_of_an_event_that_could_not_be_secured_fails_with_it(ports):
    ports.freshdesk.script("create", Answer(503, "busy"))
    ports.queues.down = True
    status, body = post(ports, [person("lost", 1), person("lost", 1)])
    assert status == 503 and [r["outcome"] for r in body["results"]] == ["failed", "failed"]
    assert len(ports.freshdesk.calls) == 1


# --------------------------------------------------------------------------- 4. the secret, after the token
@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": ""}, {"authorization": "Basic YTpi"}, {"authorization": "Bearer "}],
    ids=["none", "empty", "basic", "bearer-without-token"],
)
def test_a_request_without_a_bearer_token_is_a_401_without_reading_the_secret(ports, headers):
    ports.secret.secret["domain"] = "REPLACE_WITH_YOUR_SUBDOMAIN"  # a fresh deploy: a 503 if it were read
    status, body = send(ports, raw_request(json.dumps(person("anon", 1)), headers=headers, token=None))
    assert (status, body["outcome"]) == (401, "unauthorized")
    assert ports.secret.reads == []


def test_a_placeholder_secret_is_read_once_per_30_seconds(ports):
    ports.secret.secret["domain"] = "REPLACE_WITH_YOUR_SUBDOMAIN"
    statuses = [post(ports, person(f"c-{n}", n))[0] for n in range(20)]
    assert statuses == [503] * 20 and len(ports.secret.reads) == 1
    ports.secret.secret = dict(SECRET)  # fixed
    ports.clock.advance(CONFIG_ERROR_TTL_SECONDS)
    assert post(ports, person("c-fixed", 1))[0] == 201
    assert len(ports.secret.reads) == 2


def test_an_unreadable_secret_is_read_again_by_the_next_request(ports):
    ports.secret.fail_with = SecretUnavailable("fake: throttled")
    assert [post(ports, person(f"u-{n}", n))[0] for n in range(3)] == [503] * 3
    assert len(ports.secret.reads) == 3
    ports.secret.fail_with = None
    assert post(ports, person("u-ok", 1))[0] == 201


def test_the_credential_store_remembers_a_config_error_until_its_ttl_and_a_good_read_clears_it():
    now = [0.0]
    source = FakeSecretSource({**SECRET, "api_key": "REPLACE_WITH_YOUR_API_KEY"})
    store = CredentialStore(source, clock=lambda: now[0], error_ttl=30.0)
    for _ in range(3):
        with pytest.raises(ConfigError, match="placeholder"):
            store.get()
    assert len(source.reads) == 1
    now[0] = 29.9
    with pytest.raises(ConfigError):
        store.get()
    assert len(source.reads) == 1
    source.secret = dict(SECRET)
    now[0] = 30.0
    assert store.get().api_key == "key-1" and len(source.reads) == 2


# --------------------------------------------------------------------------- 5. the signature window, replays
def signed_request(ports: Ports, body: dict[str, Any], *, ahead: float = 0.0) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    stamp = str(int(ports.clock.time() + ahead))
    digest = hmac.new(SIGNING_KEY.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    request = raw_request(raw.decode(), headers={"x-signal-signature": digest, "x-signal-timestamp": stamp})
    return request


def signing(ports: Ports) -> Ports:
    ports.secret.secret["signing_secret"] = SIGNING_KEY
    return ports


@pytest.mark.parametrize(("ahead", "admitted"), [(59, True), (60, True), (61, False), (299, False)])
def test_a_signature_timestamp_may_be_ahead_of_the_clock_by_60_seconds_only(ahead, admitted):
    ports = signing(fake_ports())
    status, body = send(ports, signed_request(ports, person(f"ahead-{ahead}", 1), ahead=ahead))
    if admitted:
        assert status == 201
    else:
        assert status == 401 and "ahead" in body["message"]


def test_the_window_behind_the_clock_stays_the_setting():
    check = verify_signature(
        {"x-signal-signature": "0" * 64, "x-signal-timestamp": "1000"},
        b"{}",
        SIGNING_KEY,
        now=1300.0,
        signature_header="X-Signal-Signature",
        timestamp_header="X-Signal-Timestamp",
        tolerance_seconds=300,
    )
    assert check.refusal == "the body signature does not match"  # 300 s old: inside, then the signature


@pytest.mark.parametrize("store", [True, False], ids=["idempotency-table", "in-memory"])
def test_a_signed_request_replayed_inside_the_window_is_refused(store):
    ports = signing(fake_ports(idempotency=store))
    request = signed_request(ports, person(f"replayed-{store}", 1))
    assert send(ports, request)[0] == 201
    status, body = send(ports, json.loads(json.dumps(request)))
    assert (status, body["outcome"]) == (401, "unauthorized") and "already used" in body["message"]
    assert len(ports.freshdesk.calls) == 1


def test_a_replay_to_another_container_is_refused_through_the_idempotency_table():
    first, second = signing(fake_ports()), signing(fake_ports())
    second.runtime = replace(second.runtime, idempotency=first.store)  # two containers, one table
    request = signed_request(first, person("two-containers", 1))
    assert send(first, request)[0] == 201
    assert send(second, json.loads(json.dumps(request)))[0] == 401


def test_the_replay_mark_in_the_table_holds_until_the_timestamp_leaves_the_window(ports, monkeypatch):
    holds: list[float] = []
    claim = ports.store.claim
    monkeypatch.setattr(ports.store, "claim", lambda key, hold_seconds=None: holds.append(hold_seconds) or claim(key))
    signing(ports)
    send(ports, signed_request(ports, {"type": "page", "messageId": "pv-hold"}, ahead=-100))
    assert holds[0] == pytest.approx(200)  # 300 s window, stamped 100 s ago
    assert [k for k in ports.store.records if k.startswith("signed-request#")] != []


def test_a_signed_request_answered_503_may_be_sent_again_byte_for_byte(ports):
    signing(ports)
    ports.freshdesk.script("create", Answer(503, "busy"))
    ports.queues.down = True
    request = signed_request(ports, person("resend", 1))
    assert send(ports, request)[0] == 503
    ports.queues.down = False
    status, body = send(ports, json.loads(json.dumps(request)))
    assert (status, body["outcome"]) == (201, "delivered")


def test_without_a_working_table_replays_are_refused_from_memory(ports):
    signing(ports)
    request = signed_request(ports, {"type": "page", "messageId": "pv-down"})
    ports.store.down = True
    assert send(ports, request)[0] == 200
    assert send(ports, json.loads(json.dumps(request)))[0] == 401


# --------------------------------------------------------------------------- 6. Retry-After as a date
def test_a_429_with_an_http_date_queues_the_event_for_that_long(ports):
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:29:00 GMT", "Date": "Wed, 21 Oct 2015 07:27:25 GMT"}
    ports.freshdesk.script("create", Answer(429, {}, headers))
    status, body = post(ports, person("ra-1", 1))
    [(_, delay)] = ports.queues.retries
    assert (status, delay, body["retry_in_seconds"]) == (202, 95, 95)


def test_a_429_with_fractional_seconds_waits_the_whole_second_up(ports):
    ports.freshdesk.script("create", Answer(429, {}, {"Retry-After": "34.9"}))
    post(ports, person("ra-2", 1))
    assert ports.queues.retries[0][1] == 35


# --------------------------------------------------------------------------- 7. answers without message texts
ECHOING = {
    "description": "Validation failed",
    "errors": [
        {"field": "email", "code": "invalid_value", "message": "person1@example.com is not a valid email"},
        {"field": "name", "code": "invalid_value", "message": "Person Number1 is invalid", "extra": "Person"},
    ],
}


def test_a_rejected_answer_carries_codes_and_field_names_but_the_dlq_keeps_the_whole_body(ports):
    ports.freshdesk.script("create", Answer(400, ECHOING))
    status, body = post(ports, person("rej-1", 1))
    assert (status, body["outcome"]) == (400, "rejected")
    assert body["freshdesk"] == {
        "description": "Validation failed",
        "errors": [{"field": "email", "code": "invalid_value"}, {"field": "name", "code": "invalid_value"}],
    }
    assert "person1" not in json.dumps(body).lower() and "Number1" not in json.dumps(body)
    [parked] = ports.queues.parked
    assert parked["outcome"] == envelope.REJECTED and parked["last_error"]["body"] == ECHOING


def test_a_conflict_answer_keeps_the_contact_ids_freshdesk_named(ports):
    conflict = {
        "description": "Validation failed",
        "errors": [
            {
                "field": "email",
                "code": "duplicate_value",
                "message": "It should be a unique value: person1@example.com",
                "additional_info": {"user_id": 42, "email": "person1@example.com"},
            }
        ],
    }
    ports.freshdesk.script("create", Answer(409, conflict))
    status, body = post(ports, {**person("conf-1", 1), "type": "track", "event": "Signed Up"})
    assert (status, body["outcome"]) == (409, "conflict")
    assert body["freshdesk"] == {
        "description": "Validation failed",
        "errors": [{"field": "email", "code": "duplicate_value", "additional_info": {"user_id": 42}}],
    }


@pytest.mark.parametrize(
    ("freshdesk_body", "shown"),
    [
        (
            {"code": "invalid_credentials", "message": "You have to be logged in as person1@example.com"},
            {"code": "invalid_credentials"},
        ),
        ("<html>person1@example.com not found</html>", None),
        ({"description": "person1@example.com", "errors": [{"field": "a b@c", "code": 7}]}, None),
        (
            [{"field": "phone", "code": "invalid_value", "message": "+447700900123"}],
            {"errors": [{"field": "phone", "code": "invalid_value"}]},
        ),
    ],
    ids=["message-only", "text-body", "odd-shapes", "bare-list"],
)
def test_only_code_and_field_shaped_values_reach_an_answer(ports, freshdesk_body, shown):
    ports.freshdesk.script("create", Answer(403, freshdesk_body))
    _, body = post(ports, person("shape-1", 1))
    assert body.get("freshdesk") == shown
    assert "person1" not in json.dumps(body) and "7700" not in json.dumps(body)


def test_an_answer_body_is_never_larger_for_a_huge_freshdesk_error(ports):
    huge = {"description": "Validation failed", "errors": [{"field": "name", "code": "x", "message": "y" * 10**5}]}
    ports.freshdesk.script("create", Answer(400, huge))
    answer = handle_webhook(raw_request(json.dumps(person("huge-1", 1))), ports.runtime, deadline=ports.deadline())
    assert len(answer["body"]) < 500
