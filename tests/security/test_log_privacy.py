"""Privacy of the logs: representative flows log ids and outcomes, never contact data or secrets.

The session-wide check lives in the plugin tests/security/log_privacy.py (every record of the whole
run is scanned; the run fails on a leak). Here: the flows an operator sees most, each with contact
data in play, checked record by record; and proof that the plugin does fail a run that leaks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import urllib3

from signal_freshdesk_dev.handlers import load_event, signal_events_of

from .helpers import invoke, raw_request

REPO_ROOT = Path(__file__).resolve().parents[2]
IDENTIFIED = signal_events_of(load_event("identified"))[0]
SIGNED_UP = signal_events_of(load_event("signed-up"))[0]
# Freshdesk's error messages can quote what it was sent: this one echoes the contact's data.
ECHOING_400 = {
    "description": "Validation failed",
    "errors": [
        {
            "field": "name",
            "code": "invalid_value",
            "message": "priya.shah@example.org (Priya Shah, +44 20 7946 0958) is not a valid email",
        }
    ],
}


def ours(log_privacy):
    return [r for r in log_privacy.records() if r.logger.startswith("signal-freshdesk")]


def test_representative_flows_log_no_personal_data_and_keep_message_id_and_outcome(stack, configure, log_privacy):
    answers = {}
    # delivered (and a 409 on the Identified create: updated)
    answers["delivered"] = stack.post("signed-up")
    # conflict: the same person signs up again under another messageId
    answers["conflict"] = stack.post(dict(SIGNED_UP, messageId="privacy-conflict"))
    # rejected, with a Freshdesk body that echoes the email, name and phone
    stack.freshdesk.fail_next(400, body=ECHOING_400)
    answers["rejected"] = stack.post(dict(IDENTIFIED, messageId="privacy-rejected"))
    # queued (Freshdesk down), then delivered by the retry function
    stack.freshdesk.fail_next(503)
    answers["queued"] = stack.post(dict(IDENTIFIED, messageId="privacy-queued"))
    assert stack.drain().records == 1
    # fallback: Freshdesk refuses the optional custom field; delivered without it, with a warning
    stack.freshdesk.custom_fields = ()
    answers["fallback"] = stack.post(
        dict(
            SIGNED_UP,
            messageId="privacy-fallback",
            userId="usr_grace",
            traits={"name": "Grace Hopper", "email": "grace@example.com", "phone": "+14155552671"},
        )
    )
    # a 409 naming two different contacts: conflict with a warning, no guess
    stack.post(
        {
            "type": "identify",
            "userId": "usr_mei",
            "messageId": "privacy-seed",
            "traits": {"name": "Mei Chen", "email": "mei.chen@example.com"},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
    )
    stack.forget_people()  # so the user id is not known to the identity map: Freshdesk's 409 decides
    answers["ambiguous"] = stack.post(
        {
            "type": "identify",
            "userId": "usr_123",
            "messageId": "privacy-ambiguous",
            "traits": {"name": "Mei Chen", "email": "mei.chen@example.com"},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
    )
    # the API key rotated: one re-read of the secret, then delivered
    stack.freshdesk.api_key = "rotated-key"
    stack.set_secret(api_key="rotated-key")
    answers["rotated"] = stack.post(
        dict(IDENTIFIED, messageId="privacy-rotated", traits={"name": "Jane Roe", "email": "jane@example.com"})
    )
    # idempotency store unreachable: processed without it
    configure(IDEMPOTENCY_TABLE=stack.resources.idempotency_table + "-missing")
    answers["no_store"] = stack.post(dict(IDENTIFIED, messageId="privacy-no-store"))
    # a batch with a dropped event and a non-event
    answers["batch"] = stack.post([dict(IDENTIFIED, messageId="privacy-batch"), 7])
    # configuration error: a placeholder left in the secret
    stack.set_secret(domain="REPLACE_WITH_YOUR_SUBDOMAIN")
    configure()
    answers["config"] = stack.post("signed-up")

    got = {flow: (status, body.get("outcome")) for flow, (status, body) in answers.items()}
    assert got == {
        "delivered": (201, "delivered"),
        "conflict": (409, "conflict"),
        "rejected": (400, "rejected"),
        "queued": (202, "queued"),
        "fallback": (201, "delivered"),
        "ambiguous": (409, "conflict"),
        "rotated": (200, "updated"),
        "no_store": (200, "updated"),
        "batch": (200, None),
        "config": (503, "error"),
    }
    # Contact data was in play: Freshdesk's message echoed the email. The answer carries its codes and
    # field names only, never the texts.
    rejected = json.dumps(answers["rejected"][1])
    assert "priya" not in rejected.lower() and "7946" not in rejected
    assert answers["rejected"][1]["freshdesk"] == {
        "description": "Validation failed",
        "errors": [{"field": "name", "code": "invalid_value"}],
    }

    records = ours(log_privacy)
    assert len(records) >= 12
    leaks = log_privacy.offences(records)
    assert leaks == [], "\n".join(f"{o.kinds}: {o.redacted[:300]}" for o in leaks)

    # every per-event line names its messageId and outcome, so an operator can trace the event
    processed = [r for r in records if r.message in ("event processed", "retry processed")]
    by_id = {}
    for record in processed:
        assert record.fields.get("outcome"), record.text
        assert "messageId" in record.fields, record.text
        by_id.setdefault(record.fields["messageId"], []).append(record.fields["outcome"])
    assert by_id[SIGNED_UP["messageId"]] == ["delivered"]
    assert by_id["privacy-conflict"] == ["conflict"]
    assert by_id["privacy-rejected"] == ["rejected"]
    assert by_id["privacy-queued"] == ["queued", "delivered"]  # the retry function delivered it
    assert by_id["privacy-fallback"] == ["delivered"]
    assert by_id["privacy-ambiguous"] == ["conflict"]
    assert by_id["privacy-rotated"] == ["updated"]
    assert "" in by_id and "rejected" in by_id[""]  # the non-event in the batch has no messageId
    for message in (
        "Freshdesk refused optional fields; delivered without them",
        "the 409 names several contacts; not guessing which to update",
        "idempotency store unavailable; processing without it",
    ):
        warnings = [r for r in records if r.message == message]
        assert warnings and all(w.fields.get("messageId") for w in warnings), message
    [config_error] = [r for r in records if r.message.startswith("connector is not configured")]
    assert "placeholder" in config_error.fields["error"]


def test_an_unexpected_error_logs_a_traceback_without_contact_data(stack, monkeypatch, log_privacy):
    """The catch-all in process_one logs the exception; what the exception says about the event stays out."""
    from signal_freshdesk.runtime import get_runtime

    def broken(*args, **kwargs):
        raise KeyError("phone")  # a bug on the way to Freshdesk, say

    monkeypatch.setattr(get_runtime().freshdesk, "create_contact", broken)
    answer = invoke(raw_request(json.dumps(dict(IDENTIFIED, messageId="privacy-bug"))))
    assert answer.status == 202 and answer.body["reason"] == "internal_error"
    [record] = [r for r in ours(log_privacy) if r.message.startswith("unexpected error")]
    assert record.fields["messageId"] == "privacy-bug" and "KeyError" in record.text
    assert log_privacy.offences([record]) == []


def test_the_scanner_finds_and_redacts_each_kind(log_privacy):
    scanner = log_privacy.scanner
    line = (
        "sent Priya Shah <priya.shah@example.org> +447700900123 / +44 20 7946 0958 / 07700 900123 "
        "key sandbox-api-key auth Basic c2FuZGJveC1hcGkta2V5Olg= token local-webhook-token-0123456789abcdef "
        "someone@else.example whsec_0123456789abcdef0123456789abcdef"
    )
    kinds = [kind for kind, _, _ in scanner.findings(line)]
    assert kinds == ["name", "email", "phone", "phone", "phone", "secret", "secret", "secret", "email", "secret"]
    redacted = scanner.redact(line)
    for secret in (
        "Priya",
        "priya.shah",
        "7700",
        "sandbox-api-key",
        "c2FuZGJveC1",
        "local-webhook",
        "someone@",
        "whsec_",
    ):
        assert secret not in redacted
    # ids, outcomes, statuses, timestamps and hashes are not personal data
    clean = (
        '{"messageId":"b2c3d4e5-f6a7-4890-8bcd-ef1234567891","outcome":"delivered","status":201,'
        '"timestamp":"2026-02-25 14:31:00,000+0000","contact_id":101,"sha":"' + "ab" * 32 + '",'
        '"function_arn":"arn:aws:lambda:eu-west-1:123456789012:function:ingest","shah":"sha256"}'
    )
    assert scanner.findings(clean) == []


LEAKY_TESTS = """
import logging

from signal_freshdesk.observability import logger


def test_logs_an_email_in_an_extra_field():
    logger.info("contact created", extra={"messageId": "m-1", "outcome": "delivered",
                                          "contact": {"email": "leaky.person@example.com"}})


def test_logs_the_api_key_on_the_root_logger():
    logging.getLogger().warning("calling Freshdesk with %s", "sandbox-api-key")


def test_logs_a_phone_in_an_exception():
    try:
        raise ValueError("cannot parse +447700900999")
    except ValueError:
        logger.exception("mapping failed", extra={"messageId": "m-3"})


def test_debug_line_with_a_name():
    logger.debug("mapping Priya Shah")
"""

CLEAN_TEST = """
from signal_freshdesk.observability import logger


def test_clean():
    logger.info("event processed", extra={"messageId": "m-2", "outcome": "delivered", "status": 201})
"""


def run_pytest_with_plugin(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_scratch_logs.py").write_text(textwrap.dedent(source))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.security.log_privacy",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_plugin_fails_a_run_whose_logs_leak_and_redacts_its_report(tmp_path):
    result = run_pytest_with_plugin(tmp_path, LEAKY_TESTS)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-3000:]
    assert "4 passed" in out  # the tests themselves pass: the plugin fails the run
    assert "PERSONAL DATA OR SECRETS IN THE LOGS" in out
    for test, kind in [
        ("test_logs_an_email_in_an_extra_field", "email"),
        ("test_logs_the_api_key_on_the_root_logger", "secret"),
        ("test_logs_a_phone_in_an_exception", "phone"),
        ("test_debug_line_with_a_name", "name"),
    ]:
        assert any(test in line and f"found: {kind}" in line for line in out.splitlines()), (test, out[-3000:])
    for value in ("leaky.person@example.com", "sandbox-api-key", "+447700900999", "Priya Shah"):
        assert value not in out, f"the report shows {value} in the clear"
    assert "[EMAIL REDACTED]" in out and "[SECRET REDACTED]" in out


def test_the_plugin_passes_a_clean_run(tmp_path):
    result = run_pytest_with_plugin(tmp_path, CLEAN_TEST)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "no personal data or secret found" in out


def test_third_party_records_are_captured_but_not_scanned(log_privacy):
    """The decision, pinned: moto's werkzeug access log and urllib3 are counted, not scanned."""
    import logging

    logging.getLogger("werkzeug").warning('127.0.0.1 - - "POST / HTTP/1.1" 200 -')
    logging.getLogger("signal-freshdesk.child").warning("a child logger of ours is scanned")
    names = [r.logger for r in log_privacy.records()]
    assert "werkzeug" not in names and "signal-freshdesk.child" in names


def test_freshdesk_requests_in_the_sandbox_log_nothing(stack, log_privacy):
    """The sandbox is silent (log_message is a no-op): its access lines cannot carry contact data."""
    urllib3.request("GET", stack.freshdesk.base_url + "/api/v2/contacts?email=priya.shah%40example.org")
    assert [r for r in log_privacy.records() if "priya" in r.text.lower()] == []
