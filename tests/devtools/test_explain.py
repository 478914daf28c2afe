"""`explain`: the Default preset's decision for each event and the exact request, without any network call."""

from __future__ import annotations

import io
import json
import socket

import pytest

from signal_freshdesk_dev import explain
from signal_freshdesk_dev.handlers import EVENTS_DIR
from tests.samples import GUIDE_SIGNED_UP_BODY

# The request body for events/signed-up.json: the Default preset's worked example (docs/behaviour.md).
GUIDE_BODY = GUIDE_SIGNED_UP_BODY

# Every sample in events/: (decision, operation or drop reason) per event, in order.
SAMPLES = {
    "signed-up.json": [("deliver", "sign_up")],
    "identified.json": [("deliver", "identify")],
    "page-view.json": [("drop", "page_view")],
    "anonymous-track.json": [("drop", "anonymous")],
    "consent-denied.json": [("drop", "consent_denied")],
    "batch.json": [
        ("deliver", "sign_up"),
        ("deliver", "identify"),
        ("drop", "page_view"),
        ("drop", "anonymous"),
        ("drop", "consent_denied"),
        # The group event: group events now become company upserts (they used to be unsupported_event).
        ("deliver", "company"),
    ],
    "sqs-retry.json": [("deliver", "identify")],
    "group.json": [("deliver", "company")],
    "identify-with-company.json": [("deliver", "identify")],
}
NOT_EVENTS = {"env.local.json"}  # the sam local --env-vars example


def run(*argv: str, env: dict | None = None, stdin: str | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = explain.main(
        list(argv), out=out, env=env if env is not None else {}, stdin=io.StringIO(stdin) if stdin is not None else None
    )
    return code, out.getvalue()


def run_json(*argv: str, **kwargs) -> dict:
    code, text = run("--json", *argv, **kwargs)
    assert code == 0, text
    return json.loads(text)


def test_every_sample_in_events_is_covered():
    assert {p.name for p in EVENTS_DIR.glob("*.json")} - NOT_EVENTS == set(SAMPLES)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_each_sample_gets_the_presets_decision(sample):
    result = run_json(str(EVENTS_DIR / sample))
    decisions = [
        (e["decision"], e["operation"] if e["decision"] == "deliver" else e["reason"]) for e in result["events"]
    ]
    assert decisions == SAMPLES[sample]
    for event in result["events"]:
        if event["decision"] == "deliver":
            request = event["request"]
            assert request["method"] == "POST"
            # A group event's request goes to companies; every other delivery creates a contact.
            resource = "companies" if event["operation"] == "company" else "contacts"
            assert request["url"] == f"https://<your-domain>.freshdesk.com/api/v2/{resource}"
            assert request["headers"]["Authorization"] == "Basic <redacted>"
            assert request["body"]["name"]
        else:
            assert "request" not in event and event["why"]


def test_signed_up_becomes_exactly_the_guides_body_and_a_409_is_final():
    [event] = run_json(str(EVENTS_DIR / "signed-up.json"))["events"]
    assert event["request"]["body"] == GUIDE_BODY
    assert list(event["request"]["body"]) == list(GUIDE_BODY)  # the example's field order too
    assert event["on_409"]["outcome"] == "conflict" and event["on_409"]["final"] is True
    assert event["identity"] == {
        "email": "john.doe@example.com",
        "phone": "+447700900123",
        "unique_external_id": "usr_123",
    }
    assert event["consent"].startswith("marketing granted")


def test_text_output_shows_the_decision_the_request_and_the_pretty_body():
    code, text = run(str(EVENTS_DIR / "signed-up.json"))
    assert code == 0
    assert "decision  deliver: create the contact, with custom_fields.signup_method" in text
    assert "request   POST https://<your-domain>.freshdesk.com/api/v2/contacts" in text
    assert "Authorization: Basic <redacted>" in text
    body = json.dumps(GUIDE_BODY, indent=2)
    assert "\n".join("            " + line for line in body.splitlines()) in text
    assert "on 409    conflict: final" in text


def test_identified_explains_the_update_on_409_with_merged_tags():
    [event] = run_json(str(EVENTS_DIR / "identified.json"), "--domain", "acme")["events"]
    assert event["on_409"]["outcome"] == "updated" and event["on_409"]["final"] is False
    steps = " ".join(event["on_409"]["then"])
    assert "GET https://acme.freshdesk.com/api/v2/contacts/{id}" in steps
    assert "PUT https://acme.freshdesk.com/api/v2/contacts/{id}" in steps
    assert "additional_info.user_id" in steps


def test_drops_say_why_and_what_identity_was_found():
    [event] = run_json(
        "-",
        stdin=json.dumps(
            {"type": "identify", "userId": "u1", "context": {"consent": {"canonical": {"marketing": True}}}}
        ),
    )["events"]
    assert (event["decision"], event["reason"]) == ("drop", "missing_name")
    assert event["identity"] == {"unique_external_id": "u1"} and "name" not in event
    [event] = run_json(str(EVENTS_DIR / "consent-denied.json"))["events"]
    assert event["consent"].startswith("marketing denied") and "drops the event" in event["consent"]


def test_domain_comes_from_the_option_or_the_environment_and_is_validated():
    url = run_json(str(EVENTS_DIR / "signed-up.json"), env={"FRESHDESK_DOMAIN": "https://acme.freshdesk.com"})[
        "events"
    ][0]["request"]["url"]
    assert url == "https://acme.freshdesk.com/api/v2/contacts"
    code, _ = run(str(EVENTS_DIR / "signed-up.json"), "--domain", "evil.example.com/x")
    assert code == 2


def test_consent_mode_and_region_are_read_as_the_functions_read_them():
    [event] = run_json(str(EVENTS_DIR / "consent-denied.json"), "--consent-mode", "tag_only")["events"]
    assert event["decision"] == "deliver" and "tags" not in event["request"]["body"]
    [event] = run_json(str(EVENTS_DIR / "consent-denied.json"), env={"CONSENT_MODE": "off"})["events"]
    assert event["decision"] == "deliver" and event["consent"].startswith("not read")
    us_event = {
        "type": "identify",
        "userId": "u2",
        "traits": {"name": "Sam", "phone": "(415) 555-2671"},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }
    [event] = run_json("-", "--region", "US", stdin=json.dumps(us_event))["events"]
    assert event["request"]["body"]["phone"] == "+14155552671"
    code, _ = run(str(EVENTS_DIR / "signed-up.json"), env={"DEFAULT_PHONE_REGION": "XX"})
    assert code == 2


@pytest.mark.parametrize(
    "document",
    [
        [{"type": "identify", "userId": "u3", "traits": {"name": "A"}}, 7],
        {"batch": [{"type": "identify", "userId": "u3", "traits": {"name": "A"}}, 7]},
    ],
)
def test_bare_batches_are_read_like_the_webhook_reads_them(document):
    result = run_json("-", "--consent-mode", "off", stdin=json.dumps(document))
    assert [e["decision"] for e in result["events"]] == ["deliver", "refuse"]
    assert result["events"][1]["reason"] == "not_an_event"


def test_input_the_webhook_would_refuse_is_an_error():
    assert run("-", stdin="{not json")[0] == 2
    assert run("-", stdin="[]")[0] == 2  # the batch holds no events
    assert run(str(EVENTS_DIR / "no-such-file.json"))[0] == 2


def test_explain_makes_no_network_call(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("explain tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for sample in SAMPLES:
        assert run(str(EVENTS_DIR / sample), "--domain", "acme")[0] == 0
        assert run("--json", str(EVENTS_DIR / sample), "--domain", "acme")[0] == 0
