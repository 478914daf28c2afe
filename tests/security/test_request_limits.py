"""Request limits: body size (1 MiB), batch size (100), and field lengths in what Freshdesk receives.

tests/integration/test_ingest.py has one body over 1 MiB and one batch of 101; these pin the exact
boundaries, the base64 and multi-byte cases, and what reaches the Freshdesk sandbox.
"""

from __future__ import annotations

import base64
import json

import pytest

from .helpers import REFUSAL_400, invoke, raw_request, results_of

MiB = 1024 * 1024


def identify(message_id: str, **traits) -> dict:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": traits.pop("user_id", f"usr-{message_id}"),
        "traits": {"name": "Limit Tester", **traits},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }


def padded(event: dict, total: int, *, char: str = "x") -> str:
    """The event as JSON text of exactly `total` UTF-8 bytes, padded in an unused field."""
    text = json.dumps(dict(event, padding=""), separators=(",", ":"))
    missing = total - len(text.encode())
    width = len(char.encode())
    assert missing >= 0, missing
    padding = char * (missing // width) + "x" * (missing % width)
    return text.replace('"padding":""', '"padding":"' + padding + '"')


def posts(stack) -> list[dict]:
    return [r for r in stack.freshdesk.requests() if r["method"] == "POST"]


# -- body size ----------------------------------------------------------------------------------
def test_a_body_of_exactly_1_mib_is_accepted_and_one_byte_more_is_413(stack):
    exact = padded(identify("m-1mib"), MiB)
    assert len(exact.encode()) == MiB
    answer = invoke(raw_request(exact))
    assert answer.status == 201 and answer.body["outcome"] == "delivered"
    [contact] = stack.freshdesk.contacts()
    assert set(contact["custom_fields"]) <= {"signup_method"}  # the padding went nowhere

    over = padded(identify("m-1mib-plus"), MiB + 1)
    answer = invoke(raw_request(over))
    assert answer.status == 413 and answer.body["outcome"] == "bad_request"
    assert str(MiB) in answer.body["message"]
    assert len(posts(stack)) == 1


def test_the_limit_counts_utf8_bytes_not_characters(stack):
    # 2-byte characters: fewer than 1 MiB characters, more than 1 MiB bytes
    over = padded(identify("m-multibyte"), MiB + 2, char="é")
    assert len(over) < MiB < len(over.encode())
    assert invoke(raw_request(over)).status == 413
    exact = padded(identify("m-multibyte-ok"), MiB, char="é")
    assert invoke(raw_request(exact)).status == 201


@pytest.mark.parametrize("size,status", [(MiB, 201), (MiB + 1, 413), (MiB + 2, 413), (MiB + 3, 413), (2 * MiB, 413)])
def test_base64_bodies_are_limited_by_their_decoded_size(stack, size, status):
    body = padded(identify(f"m-b64-{size}"), size).encode()
    request = raw_request(base64.b64encode(body).decode(), base64_encoded=True)
    answer = invoke(request)
    assert answer.status == status, answer.body
    if status == 413:
        assert "larger than" in answer.body["message"] and posts(stack) == []


def test_a_huge_invalid_base64_body_is_refused_without_decoding_it(stack):
    answer = invoke(raw_request("!" * (3 * MiB), base64_encoded=True))
    assert answer.status == 413


# -- batch size ---------------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", [lambda events: events, lambda events: {"batch": events}], ids=["array", "object"])
def test_a_batch_of_100_is_accepted_and_101_is_413(stack, wrap):
    events = [{"type": "page", "messageId": f"p-{n}"} for n in range(101)]
    answer = invoke(raw_request(json.dumps(wrap(events[:100]))))
    assert answer.status == 200
    assert [r["messageId"] for r in results_of(answer)] == [f"p-{n}" for n in range(100)]
    assert {r["outcome"] for r in results_of(answer)} == {"dropped"}

    answer = invoke(raw_request(json.dumps(wrap(events))))
    assert answer.status == 413 and "101" in answer.body["message"] and "100" in answer.body["message"]


def test_a_batch_of_100_contacts_is_delivered_in_full(stack):
    events = [identify(f"m-{n}", email=f"limit.{n}@example.com") for n in range(100)]
    answer = invoke(raw_request(json.dumps(events)))
    assert answer.status == 200
    assert [r["outcome"] for r in results_of(answer)] == ["delivered"] * 100
    assert len(stack.freshdesk.contacts()) == 100


# -- field lengths: what the Freshdesk sandbox receives -----------------------------------------
def test_a_300_character_name_title_and_signup_method_are_cut_to_255(stack):
    name, title, method = "N" * 300, "T" * 300, "M" * 300
    event = {
        "type": "track",
        "event": "Signed Up",
        "messageId": "m-long",
        "userId": "usr-long",
        "traits": {"name": name, "title": title},
        "properties": {"method": method},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }
    answer = invoke(raw_request(json.dumps(event)))
    assert answer.status == 201
    [contact] = stack.freshdesk.contacts()
    assert contact["name"] == name[:255]
    assert contact["job_title"] == title[:255]
    assert contact["custom_fields"]["signup_method"] == method[:255]


def test_a_name_cut_at_255_leaves_no_trailing_space(stack):
    name = "A" * 254 + " " + "B" * 40
    invoke(raw_request(json.dumps(identify("m-space", name=name))))
    [contact] = stack.freshdesk.contacts()
    assert contact["name"] == "A" * 254


@pytest.mark.parametrize(
    "field,value",
    [
        ("email", "a" * 10_000 + "@example.com"),
        ("email", "a" * 244 + "@example.com"),  # 256 characters: one too many
        ("user_id", "u" * 10_000),
        ("user_id", "u" * 256),
        ("phone", "+44" + "7" * 10_000),
    ],
)
def test_an_over_long_identifier_is_omitted_not_sent_or_cut(stack, field, value):
    traits = {"email": "limits@example.com"} if field != "email" else {"phone": "+447700900123"}
    if field == "user_id":
        event = identify("m-id", user_id=value, **traits)
    else:
        event = identify("m-id", user_id="usr-ok", **{**traits, field: value})
    answer = invoke(raw_request(json.dumps(event)))
    assert answer.status == 201, answer.body
    [contact] = stack.freshdesk.contacts()
    key = {"user_id": "unique_external_id"}.get(field, field)
    assert contact[key] is None, f"{key} was sent: {str(contact[key])[:40]}..."
    assert [r["status"] for r in stack.freshdesk.requests()] == [201]  # no 400 and no second try


def test_an_email_of_exactly_255_characters_is_sent(stack):
    email = "a" * 243 + "@example.com"
    assert len(email) == 255
    assert invoke(raw_request(json.dumps(identify("m-255", email=email)))).status == 201
    [contact] = stack.freshdesk.contacts()
    assert contact["email"] == email


def test_a_1_mb_string_in_an_unused_field_is_harmless(stack):
    event = identify("m-unused", email="unused@example.com")
    event["context"]["page"] = {"title": "p" * 1_000_000}
    answer = invoke(raw_request(json.dumps(event)))
    assert answer.status == 201
    [contact] = stack.freshdesk.contacts()
    assert contact["email"] == "unused@example.com" and contact["name"] == "Limit Tester"
    assert len(json.dumps(contact)) < 2_000


def test_a_1_mb_string_in_every_mapped_field_sends_nothing_oversized(stack):
    huge = "z" * 100_000
    event = {
        "type": "track",
        "event": "Signed Up",
        "messageId": "m-all-huge",
        "userId": huge,
        "traits": {
            "name": huge,
            "email": huge + "@example.com",
            "phone": huge,
            "title": huge,
            "company_id": "9" * 4_000,
        },
        "properties": {"method": huge},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }
    answer = invoke(raw_request(json.dumps(event)))
    # no identifier fits (email and id too long, phone not a number): dropped, nothing sent
    assert answer.status == 200 and answer.body["reason"] == "anonymous"
    assert stack.freshdesk.requests() == []


def test_an_unknown_company_id_is_dropped_and_the_contact_delivered(stack):
    answer = invoke(raw_request(json.dumps(identify("m-company", email="co@example.com", company_id=99))))
    assert (answer.status, answer.body["outcome"], answer.body["dropped_fields"]) == (201, "delivered", ["company_id"])
    assert stack.parked() == []


# -- product bugs these tests found, fixed: kept as regression tests ---------------------------
@pytest.mark.parametrize("shape", ["multibyte", "exactly-1-mib"])
def test_a_rejected_event_too_large_for_the_dlq_is_not_answered_503(stack, shape):
    event = identify(f"m-dlq-{shape}", email=f"dlq-{shape}@example.com", company_id=99)
    stack.freshdesk.fail_next(400, body=REFUSAL_400)
    if shape == "multibyte":
        text = json.dumps(dict(event, padding="é" * 300_000), ensure_ascii=False)
    else:
        text = padded(event, MiB)
    answer = invoke(raw_request(text))
    assert answer.status < 500, answer.body
    assert (answer.status, answer.body["outcome"]) == (400, "rejected")
    [parked] = stack.parked()  # secured after all: the envelope keeps what the preset reads
    assert parked["messageId"] == f"m-dlq-{shape}" and parked["event"]["traits"]["company_id"] == 99


def test_a_company_id_of_more_than_4300_digits_is_not_an_internal_error(stack):
    answer = invoke(
        raw_request(json.dumps(identify("m-co-digits", email="digits@example.com", company_id="9" * 4_301)))
    )
    assert answer.body.get("reason") != "internal_error", answer.body
    assert answer.status in (201, 400), answer.body
