"""The ingest handler against the Freshdesk sandbox over real HTTP, with SQS and Secrets Manager in moto."""

from __future__ import annotations

import base64
import json
import time

import pytest
import urllib3

from signal_freshdesk.core.envelope import slim_event
from signal_freshdesk_dev.apigw import LambdaContext, http_api_event
from signal_freshdesk_dev.handlers import ingest_handler, load_event, signal_events_of
from tests.samples import GUIDE_SIGNED_UP_BODY
from tests.security.helpers import REFUSAL_400

GUIDE_BODY = GUIDE_SIGNED_UP_BODY


def contact_posts(freshdesk):
    return [r for r in freshdesk.requests() if r["method"] == "POST"]


def test_signed_up_creates_the_guides_contact_and_answers_201(stack):
    status, body = stack.post("signed-up")
    assert status == 201
    assert body["outcome"] == "delivered" and body["status"] == 201
    [contact] = stack.freshdesk.contacts()
    assert body["contact_id"] == contact["id"]
    for field, value in GUIDE_BODY.items():
        if field == "custom_fields":
            assert contact["custom_fields"]["signup_method"] == "email"
        else:
            assert contact[field] == value
    assert stack.queue_depth() == {"Visible": 0, "Delayed": 0, "NotVisible": 0}


def test_signed_up_409_is_final_conflict_without_update_or_retry(stack, configure):
    configure(IDENTITY_MAP_TABLE="")  # Freshdesk's 409 itself (with the map, a known person costs no call)
    stack.post("signed-up")
    again = dict(signal_events_of(load_event("signed-up"))[0], messageId="another-sign-up-of-john")
    status, body = stack.post(again)
    assert status == 409
    assert body["outcome"] == "conflict"
    assert body["freshdesk"]["errors"][0]["code"] == "duplicate_value"
    assert [r["method"] for r in stack.freshdesk.requests()] == ["POST", "POST"]
    assert stack.queue_depth()["Visible"] == 0 and stack.parked() == []


def seed_contact(freshdesk, **fields):
    answer = urllib3.request(
        "POST",
        freshdesk.base_url + "/api/v2/contacts",
        json=fields,
        headers=urllib3.make_headers(basic_auth=f"{freshdesk.api_key}:X"),
    )
    assert answer.status == 201
    return answer.json()


def test_identified_409_updates_the_contact_and_merges_tags(stack):
    seeded = seed_contact(stack.freshdesk, name="Priya", email="priya.shah@example.org", tags=["vip"])
    status, body = stack.post("identified")
    assert status == 200
    assert body["outcome"] == "updated" and body["contact_id"] == seeded["id"]
    [contact] = stack.freshdesk.contacts()
    assert contact["tags"] == ["vip", "marketing-consent"]
    assert contact["unique_external_id"] == "usr_456"
    assert contact["name"] == "Priya Shah"
    assert [r["method"] for r in stack.freshdesk.requests()][-3:] == ["POST", "GET", "PUT"]


def test_identified_409_naming_two_contacts_is_a_conflict_and_updates_neither(stack, configure):
    configure(IDENTITY_MAP_TABLE="")  # the 409 itself: with the map, the known user id is updated and refused
    stack.post(
        {
            "type": "identify",
            "userId": "usr_A",
            "messageId": "m1",
            "traits": {"name": "A", "email": "a@example.com"},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
    )
    stack.post(
        {
            "type": "identify",
            "userId": "usr_B",
            "messageId": "m2",
            "traits": {"name": "B", "email": "b@example.com"},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
    )
    before = stack.freshdesk.contacts()
    status, body = stack.post(
        {
            "type": "identify",
            "userId": "usr_B",
            "messageId": "m3",
            "traits": {"name": "A or B", "email": "a@example.com"},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
    )
    assert status == 409 and body["outcome"] == "conflict"
    assert stack.freshdesk.contacts() == before
    assert "PUT" not in [r["method"] for r in stack.freshdesk.requests()]


def test_429_queues_the_event_delayed_by_retry_after_then_the_retry_handler_delivers_it(stack):
    stack.freshdesk.fail_next(429, count=1, retry_after=2)
    status, body = stack.post("signed-up")
    assert status == 202
    assert body["outcome"] == "queued" and body["reason"] == "rate_limited"
    assert body["retry_in_seconds"] == 2
    assert stack.queue_depth()["Delayed"] == 1
    assert stack.freshdesk.contacts() == []
    started = time.monotonic()
    stats = stack.drain()
    assert time.monotonic() - started >= 1.5  # nothing was taken before Retry-After elapsed
    assert stats.records == 1 and stats.failures == 0
    [contact] = stack.freshdesk.contacts()
    assert contact["email"] == "john.doe@example.com"
    assert stack.parked() == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_freshdesk_5xx_queues_the_event_and_a_retry_delivers_it(stack, status):
    stack.freshdesk.fail_next(status, count=1)
    answer, body = stack.post("identified")
    assert answer == 202 and body["outcome"] == "queued" and body["reason"] == "freshdesk_unavailable"
    stack.drain()
    assert [c["unique_external_id"] for c in stack.freshdesk.contacts()] == ["usr_456"]


def test_a_read_timeout_queues_the_event(stack, configure):
    configure(FRESHDESK_READ_TIMEOUT="0.6")
    stack.freshdesk.delay(1.5, count=1)
    started = time.monotonic()
    status, body = stack.post("identified")
    assert time.monotonic() - started < 1.4
    assert status == 202 and body["outcome"] == "queued"
    stack.drain()
    # the slow create may have landed after all: the retry then meets 409 and updates it
    assert [c["unique_external_id"] for c in stack.freshdesk.contacts()] == ["usr_456"]


def test_a_dropped_connection_queues_the_event(stack):
    stack.freshdesk.drop_next(count=1)
    status, body = stack.post("signed-up")
    assert status == 202 and body["outcome"] == "queued"
    stack.drain()
    assert len(stack.freshdesk.contacts()) == 1


def test_unknown_custom_field_is_dropped_and_the_contact_still_delivered(stack, caplog):
    stack.freshdesk.custom_fields = ()
    status, body = stack.post("signed-up")
    assert status == 201
    assert body["outcome"] == "delivered" and body["dropped_fields"] == ["signup_method"]
    [contact] = stack.freshdesk.contacts()
    assert contact["email"] == "john.doe@example.com"
    assert len(contact_posts(stack.freshdesk)) == 2


def test_unique_external_id_refused_by_the_account_is_dropped_and_the_contact_delivered(stack):
    stack.freshdesk.unique_external_id_enabled = False
    status, body = stack.post("identified")
    assert status == 201 and body["dropped_fields"] == ["unique_external_id"]
    [contact] = stack.freshdesk.contacts()
    assert contact["unique_external_id"] is None


def test_401_rereads_a_rotated_secret_once_and_delivers(stack):
    stack.post("page-view")  # warms the cache with the current key
    stack.freshdesk.api_key = "rotated-key"
    stack.set_secret(api_key="rotated-key")
    status, body = stack.post("signed-up")
    assert status == 201 and body["outcome"] == "delivered"
    assert [r["status"] for r in stack.freshdesk.requests()] == [401, 201]


def test_401_with_a_wrong_key_is_rejected_and_parked_with_freshdesks_answer(stack):
    stack.freshdesk.api_key = "a-key-nobody-has"
    status, body = stack.post("signed-up")
    assert status == 401
    assert body["outcome"] == "rejected" and body["freshdesk"]["code"] == "invalid_credentials"
    assert [r["status"] for r in stack.freshdesk.requests()] == [401, 401]
    [parked] = stack.parked()
    assert parked["outcome"] == "rejected" and parked["last_error"]["status"] == 401
    assert parked["event"]["messageId"] == body["messageId"]


@pytest.mark.parametrize("mode,status", [("forbidden", 403), ("not_found", 404)])
def test_403_and_404_are_rejected_and_parked_in_the_dlq(stack, mode, status):
    stack.freshdesk.set_mode(mode)
    answer, body = stack.post("signed-up")
    assert answer == status and body["outcome"] == "rejected"
    [parked] = stack.parked()
    assert parked["last_error"]["status"] == status
    assert parked["attempts"] == 1
    assert parked["event"] == slim_event(signal_events_of(load_event("signed-up"))[0])
    assert stack.queue_depth()["Visible"] == 0


def test_400_missing_field_is_rejected_with_freshdesks_error_body(stack):
    # company 99 does not exist in the sandbox, and the name is refused too: the contact cannot go without it
    stack.freshdesk.fail_next(400, body=REFUSAL_400)
    status, body = stack.post(
        {
            "type": "identify",
            "userId": "u1",
            "messageId": "m-400",
            "traits": {"name": "N", "company_id": 99},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
    )
    assert status == 400 and body["outcome"] == "rejected"
    assert body["freshdesk"]["errors"][0]["code"] == "absent_in_db"  # with a field it cannot do without
    assert stack.parked()[0]["last_error"]["body"]["errors"][0]["field"] == "company_id"


def test_dropped_events_answer_200_with_their_reason_and_call_nobody(stack):
    for sample, reason in [
        ("page-view", "page_view"),
        ("anonymous-track", "anonymous"),
        ("consent-denied", "consent_denied"),
    ]:
        status, body = stack.post(sample)
        assert (status, body["outcome"], body["reason"]) == (200, "dropped", reason)
    # Only the consent-denied person is looked up (they may have a contact carrying our tag): nothing is
    # created or changed.
    assert [(r["method"], r["path"]) for r in stack.freshdesk.requests()] == [("GET", "/api/v2/contacts")]


def test_batch_answers_one_result_per_event_in_order(stack):
    stack.post("signed-up")  # John exists, so the batch's identify meets 409 and updates him
    status, body = stack.post("batch")
    assert status == 200
    got = [(r["outcome"], r["status"], r.get("reason", "")) for r in body["results"]]
    assert got == [
        ("delivered", 201, ""),
        ("updated", 200, ""),
        ("dropped", 200, "page_view"),
        ("dropped", 200, "anonymous"),
        ("dropped", 200, "consent_denied"),
        ("delivered", 201, ""),  # the group event: a company upsert since companies came in (was unsupported)
    ]
    assert body["results"][5]["company_id"] == stack.freshdesk.companies()[0]["id"]
    ids = [r["messageId"] for r in body["results"]]
    assert ids == [e["messageId"] for e in signal_events_of(load_event("batch"))]


def test_batch_with_a_queued_event_answers_202(stack):
    stack.freshdesk.fail_next(503, count=1)
    status, body = stack.post(
        {"batch": [signal_events_of(load_event("identified"))[0], signal_events_of(load_event("page-view"))[0]]}
    )
    assert status == 202
    assert [r["outcome"] for r in body["results"]] == ["queued", "dropped"]


def test_batch_near_the_deadline_queues_what_it_cannot_deliver_in_time(stack, configure):
    configure(BATCH_CONCURRENCY="2")
    stack.freshdesk.delay(0.8)
    events = []
    for n in range(8):
        events.append(
            {
                "type": "identify",
                "userId": f"usr_{n}",
                "messageId": f"m{n}",
                "traits": {"name": f"Person {n}", "email": f"p{n}@example.com"},
                "context": {"consent": {"canonical": {"marketing": True}}},
            }
        )
    started = time.monotonic()
    status, body = stack.post({"batch": events}, context=LambdaContext(timeout_seconds=6.5))
    took = time.monotonic() - started
    outcomes = [r["outcome"] for r in body["results"]]
    assert status == 202
    assert set(outcomes) == {"delivered", "queued"}
    assert took < 6.5 - 1.0
    assert outcomes.count("queued") == stack.queue_depth()["Visible"] + stack.queue_depth()["Delayed"]
    stack.freshdesk.clear_faults()
    stack.drain()
    assert sorted(c["unique_external_id"] for c in stack.freshdesk.contacts()) == [f"usr_{n}" for n in range(8)]


def test_event_that_cannot_be_queued_answers_503(stack, configure):
    configure(RETRY_QUEUE_URL=stack.resources.retry_queue_url + "-missing")
    stack.freshdesk.fail_next(503, count=1)
    status, body = stack.post("signed-up")
    assert status == 503 and body["outcome"] == "failed"


def test_rejection_that_cannot_be_parked_answers_503(stack, configure):
    configure(DLQ_URL=stack.resources.dlq_url + "-missing")
    stack.freshdesk.set_mode("forbidden")
    status, body = stack.post("signed-up")
    assert status == 503 and body["outcome"] == "failed"


@pytest.mark.parametrize(
    "token,message",
    [
        (None, "missing webhook token"),
        ("not-the-token-at-all", "does not match"),
        ("", "missing webhook token"),
    ],
)
def test_missing_or_wrong_token_is_refused_before_anything_else(stack, token, message):
    status, body = stack.post("signed-up", token=token)
    assert status == 401
    assert body["outcome"] == "unauthorized" and message in body["message"]
    assert stack.freshdesk.requests() == []


def test_basic_auth_instead_of_bearer_is_refused(stack):
    status, body = stack.post(
        "signed-up", token=None, headers={"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}
    )
    assert status == 401 and "Bearer" in body["message"]


@pytest.mark.parametrize(
    "raw,status,message",
    [
        ("{not json", 400, "not JSON"),
        ('"a string"', 400, "must be a JSON object"),
        ("42", 400, "must be a JSON object"),
        ("[]", 400, "no events"),
        ('{"batch": {}}', 400, "'batch' must be an array"),
        (b"\xff\xfe\x00", 400, "not UTF-8"),
        ("[" * 100000 + "]" * 100000, 400, "nested too deeply"),
    ],
)
def test_bad_bodies_get_a_400_that_says_what_was_wrong(stack, raw, status, message):
    answer, body = stack.post(raw)
    assert answer == status
    assert body["outcome"] == "bad_request" and message in body["message"]


def test_empty_body_is_a_400(stack):
    request = http_api_event(None, {"Authorization": "Bearer local-webhook-token-0123456789abcdef"})
    answer = ingest_handler()(request, LambdaContext())
    assert answer["statusCode"] == 400 and "no body" in json.loads(answer["body"])["message"]


def test_base64_body_is_decoded_like_api_gateway_sends_it(stack):
    event = signal_events_of(load_event("signed-up"))[0]
    request = http_api_event(json.dumps(event), {"Authorization": "Bearer local-webhook-token-0123456789abcdef"})
    request["body"] = base64.b64encode(request["body"].encode()).decode()
    request["isBase64Encoded"] = True
    answer = ingest_handler()(request, LambdaContext())
    assert answer["statusCode"] == 201


def test_body_over_1_mib_is_413(stack):
    big = {"type": "identify", "traits": {"note": "x" * (1024 * 1024)}}
    status, body = stack.post(big)
    assert status == 413 and "larger than" in body["message"]


def test_batch_over_100_events_is_413(stack):
    status, body = stack.post([{"type": "page"}] * 101)
    assert status == 413 and "at most 100" in body["message"]


def test_non_object_item_in_a_batch_is_refused_alone(stack):
    status, body = stack.post([signal_events_of(load_event("page-view"))[0], 7])
    assert status == 200
    assert [r["outcome"] for r in body["results"]] == ["dropped", "rejected"]
    assert body["results"][1]["status"] == 400
    assert stack.parked() == []


def test_missing_secret_answers_503_with_a_clear_message(stack, configure):
    configure(FRESHDESK_SECRET_ID="no-such-secret")
    status, body = stack.post("signed-up")
    assert status == 503
    assert "configuration" in body["message"]


@pytest.mark.parametrize(
    "change",
    [{"domain": "REPLACE_WITH_YOUR_SUBDOMAIN"}, {"domain": "acme.evil.com"}, {"api_key": "REPLACE_WITH_YOUR_API_KEY"}],
)
def test_placeholder_or_invalid_secret_answers_503_and_logs_why(stack, change, caplog):
    stack.set_secret(**change)
    status, body = stack.post("signed-up")
    assert status == 503 and body["outcome"] == "error"
    assert any("secret's" in str(getattr(r, "error", "")) for r in caplog.records)
    assert "Traceback" not in json.dumps(body)


def test_secret_that_is_not_json_answers_503(stack):
    stack.secrets.put_secret_value(SecretId=stack.resources.secret_arn, SecretString="domain=acme")
    status, _body = stack.post("signed-up")
    assert status == 503
