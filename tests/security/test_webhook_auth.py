"""Webhook authentication: the bearer token, and the optional HMAC-SHA256 signature of `<timestamp>.<raw body>`.

tests/integration/test_ingest.py covers a missing, empty or wrong token and Basic auth; these tests go
on from there: the signature (when the secret holds `signing_secret`), its window, replays, the
configurable header names, base64 bodies, and constant-time comparison.
"""

from __future__ import annotations

import ast
import base64
import hmac
import inspect
import json
import time
import types
import uuid

import pytest

from signal_freshdesk.core import webhook_auth
from signal_freshdesk.runtime import get_runtime
from signal_freshdesk_dev.handlers import load_event, signal_events_of

from .helpers import (
    OTHER_SIGNING_SECRET,
    SIGNING_SECRET,
    TOKEN,
    invoke,
    raw_request,
    signature,
)

TOLERANCE = 300
AHEAD = 60  # a timestamp may be ahead of the clock by clock skew only


@pytest.fixture
def signed_stack(stack, configure):
    stack.set_secret(signing_secret=SIGNING_SECRET)
    configure()  # forget the cached secret
    return stack


def identified(message_id: str | None = None) -> bytes:
    event = signal_events_of(load_event("identified"))[0]
    return json.dumps(dict(event, messageId=message_id or f"sig-{uuid.uuid4()}")).encode()


def signed(
    body: bytes,
    *,
    stamp: int | str | None = None,
    secret: str = SIGNING_SECRET,
    prefix: str = "",
    token: str | None = TOKEN,
    signature_header: str = "X-Signal-Signature",
    timestamp_header: str = "X-Signal-Timestamp",
    base64_encoded: bool = False,
    drop: tuple[str, ...] = (),
) -> dict:
    stamp = str(int(time.time()) if stamp is None else stamp)
    headers = {
        "content-type": "application/json",
        signature_header: prefix + signature(secret, stamp, body),
        timestamp_header: stamp,
    }
    for name in drop:
        headers.pop(name)
    text = base64.b64encode(body).decode() if base64_encoded else body.decode()
    return raw_request(text, headers=headers, token=token, base64_encoded=base64_encoded)


def contact_posts(stack) -> list[dict]:
    return [r for r in stack.freshdesk.requests() if r["method"] == "POST" and r["path"] == "/api/v2/contacts"]


def refused(answer, words: str) -> None:
    assert answer.status == 401, answer.body
    assert answer.body["outcome"] == "unauthorized"
    assert words in answer.body["message"], answer.body["message"]


@pytest.mark.parametrize("prefix", ["", "sha256="])
def test_a_valid_signature_is_accepted_with_or_without_the_sha256_prefix(signed_stack, prefix):
    answer = invoke(signed(identified(), prefix=prefix))
    assert answer.status == 201 and answer.body["outcome"] == "delivered"
    assert len(contact_posts(signed_stack)) == 1


def test_without_signing_secret_no_signature_is_needed_and_a_bogus_one_is_ignored(stack):
    answer = invoke(
        raw_request(identified().decode(), headers={"X-Signal-Signature": "nonsense", "X-Signal-Timestamp": "0"})
    )
    assert answer.status == 201


@pytest.mark.parametrize(
    "drop,words",
    [
        (("X-Signal-Signature",), "missing signature"),
        (("X-Signal-Timestamp",), "missing signature"),
        (("X-Signal-Signature", "X-Signal-Timestamp"), "missing signature"),
    ],
)
def test_a_missing_signature_or_timestamp_is_refused(signed_stack, drop, words):
    answer = invoke(signed(identified(), drop=drop))
    refused(answer, words)
    assert "X-Signal-Signature" in answer.body["message"] and "X-Signal-Timestamp" in answer.body["message"]
    assert signed_stack.freshdesk.requests() == []


@pytest.mark.parametrize("stamp", ["yesterday", "1.7e9", "0x6553f100", "", "   ", "12:00"])
def test_a_non_numeric_timestamp_is_refused(signed_stack, stamp):
    body = identified()
    request = signed(body, stamp=int(time.time()))
    request["headers"]["x-signal-timestamp"] = stamp
    answer = invoke(request)
    assert answer.status == 401 and answer.body["outcome"] == "unauthorized"
    assert "Unix seconds" in answer.body["message"] or "missing signature" in answer.body["message"]
    assert signed_stack.freshdesk.requests() == []


@pytest.mark.parametrize(
    "mangle",
    [
        lambda sig: sig[:-1] + ("0" if sig[-1] != "0" else "1"),
        lambda sig: sig[:-2],
        lambda sig: sig + "00",
        lambda sig: "0" * 64,
        lambda sig: "sha1=" + sig,
        lambda sig: base64.b64encode(bytes.fromhex(sig)).decode(),
        lambda sig: "sha256=" + "é" * 64,
    ],
    ids=["one-digit", "short", "long", "zeros", "other-prefix", "base64-digest", "non-ascii"],
)
def test_a_wrong_signature_is_refused(signed_stack, mangle):
    request = signed(identified())
    request["headers"]["x-signal-signature"] = mangle(request["headers"]["x-signal-signature"])
    refused(invoke(request), "does not match")
    assert signed_stack.freshdesk.requests() == []


def test_a_signature_by_another_secret_is_refused(signed_stack):
    refused(invoke(signed(identified(), secret=OTHER_SIGNING_SECRET)), "does not match")


def test_the_signature_of_a_different_body_is_refused(signed_stack):
    original, tampered = identified("m-original"), identified("m-tampered")
    request = signed(original)
    request["body"] = tampered.decode()
    refused(invoke(request), "does not match")
    # also a single byte of whitespace added to the signed body
    request = signed(original)
    request["body"] = original.decode() + " "
    refused(invoke(request), "does not match")
    assert signed_stack.freshdesk.requests() == []


def test_the_timestamp_is_signed_too(signed_stack):
    body, now = identified(), int(time.time())
    request = signed(body, stamp=now)
    request["headers"]["x-signal-timestamp"] = str(now - 1)  # a fresh stamp that was not signed
    refused(invoke(request), "does not match")


@pytest.mark.parametrize(
    "offset,accepted",
    [
        (-(TOLERANCE + 5), False),
        (-(TOLERANCE - 10), True),
        (AHEAD - 10, True),
        (AHEAD + 10, False),  # ahead of the clock by more than skew
        (TOLERANCE - 10, False),
        (TOLERANCE + 5, False),
        (-86_400, False),
        (10**9, False),
        (-int(time.time()), False),
    ],
    ids=[
        "stale",
        "old-but-inside",
        "ahead-but-inside",
        "ahead-beyond-skew",
        "far-ahead-inside-old-window",
        "future",
        "a-day-old",
        "far-future",
        "epoch-zero",
    ],
)
def test_the_timestamp_must_be_inside_the_tolerance_window(signed_stack, offset, accepted):
    answer = invoke(signed(identified(), stamp=int(time.time()) + offset))
    if accepted:
        assert answer.status == 201
    else:
        refused(answer, "outside the 300 s window")
        assert signed_stack.freshdesk.requests() == []


def test_a_replay_inside_the_window_is_refused_and_after_it_is_refused_as_stale(signed_stack, monkeypatch):
    request = signed(identified("m-replayed"))
    first = invoke(request)
    assert first.status == 201
    replay = invoke(json.loads(json.dumps(request)))  # the same bytes, signature and timestamp
    # A signature already seen inside the window is refused.
    refused(replay, "already used")
    assert len(contact_posts(signed_stack)) == 1, "a replay inside the window reached Freshdesk again"

    # The same request once the window has passed: the webhook's clock moves on 10 minutes.
    later = time.time() + 2 * TOLERANCE
    monkeypatch.setattr(
        get_runtime(), "clock", types.SimpleNamespace(time=lambda: later, monotonic=time.monotonic, sleep=time.sleep)
    )
    refused(invoke(json.loads(json.dumps(request))), "stale or replayed")
    assert len(contact_posts(signed_stack)) == 1


def test_a_replayed_signature_on_another_body_is_refused(signed_stack):
    request = signed(identified("m-a"))
    assert invoke(request).status == 201
    request["body"] = identified("m-b").decode()
    refused(invoke(request), "does not match")
    assert len(contact_posts(signed_stack)) == 1


def test_header_names_are_configurable(signed_stack, configure):
    configure(WEBHOOK_SIGNATURE_HEADER="X-Hub-Signature-256", WEBHOOK_TIMESTAMP_HEADER="X-Request-Timestamp")
    answer = invoke(
        signed(
            identified(),
            prefix="sha256=",
            signature_header="X-Hub-Signature-256",
            timestamp_header="X-Request-Timestamp",
        )
    )
    assert answer.status == 201
    # API Gateway lower-cases header names; the configured names match in any case
    request = signed(identified(), signature_header="x-hub-signature-256", timestamp_header="X-REQUEST-TIMESTAMP")
    assert invoke(request).status == 200  # admitted: the same contact again, so Freshdesk's 409 and an update
    # with other names configured, the default names do not count
    answer = invoke(signed(identified()))
    refused(answer, "missing signature")
    assert "X-Hub-Signature-256" in answer.body["message"] and "X-Request-Timestamp" in answer.body["message"]


def test_a_base64_body_is_verified_over_the_decoded_raw_bytes(signed_stack):
    body = identified()
    assert invoke(signed(body, base64_encoded=True)).status == 201
    # a signature over the base64 text (what API Gateway hands over) is not a signature of the body
    encoded = base64.b64encode(body)
    stamp = str(int(time.time()))
    request = raw_request(
        encoded.decode(),
        base64_encoded=True,
        headers={"X-Signal-Signature": signature(SIGNING_SECRET, stamp, encoded), "X-Signal-Timestamp": stamp},
    )
    refused(invoke(request), "does not match")


def test_a_non_utf8_binary_body_is_verified_then_refused_as_not_utf8(signed_stack):
    body = b"\xff\xfe{\x00}"
    answer = invoke(signed(body, base64_encoded=True))
    assert answer.status == 400 and "UTF-8" in answer.body["message"]
    answer = invoke(signed(body, base64_encoded=True, secret=OTHER_SIGNING_SECRET))
    assert answer.status == 401


@pytest.mark.parametrize("token", [None, "", "not-the-token-at-all", TOKEN + "x", TOKEN.upper()])
def test_a_correct_signature_does_not_replace_the_bearer_token(signed_stack, token):
    answer = invoke(signed(identified(), token=token))
    assert answer.status == 401 and answer.body["outcome"] == "unauthorized"
    assert "webhook token" in answer.body["message"]
    assert signed_stack.freshdesk.requests() == []


def test_an_oversized_signed_body_is_refused_before_any_hmac_work(signed_stack):
    big = b'{"type":"page","x":"' + b"x" * (1024 * 1024) + b'"}'
    answer = invoke(signed(big))
    assert answer.status == 413


# -- constant time ------------------------------------------------------------------------------
class RecordingHmac:
    """Stands in for the `hmac` module inside webhook_auth: records every compare_digest."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bytes]] = []
        self.new = hmac.new

    def compare_digest(self, a, b):
        self.calls.append((a, b))
        return hmac.compare_digest(a, b)


def test_the_token_and_the_signature_are_compared_with_hmac_compare_digest(signed_stack, monkeypatch):
    recorder = RecordingHmac()
    monkeypatch.setattr(webhook_auth, "hmac", recorder)
    body, stamp = identified(), int(time.time())
    assert invoke(signed(body, stamp=stamp)).status == 201
    expected = signature(SIGNING_SECRET, stamp, body).encode()
    assert (TOKEN.encode(), TOKEN.encode()) in recorder.calls, "the bearer token is not compared in constant time"
    assert (expected, expected) in recorder.calls, "the signature is not compared in constant time"

    recorder.calls.clear()
    invoke(signed(body, stamp=stamp, token="not-the-token-at-all"))
    assert (b"not-the-token-at-all", TOKEN.encode()) in recorder.calls


def test_webhook_auth_compares_secrets_only_with_compare_digest():
    """By inspection: no ==, !=, `in` or startswith on the token or the signature in webhook_auth."""
    tree = ast.parse(inspect.getsource(webhook_auth))
    secret_names = {"token", "value", "presented", "expected", "signature", "secret"}
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if names & secret_names and any(
                isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is)) for op in node.ops
            ):
                offenders.append(ast.unparse(node))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("startswith", "endswith", "find", "index")
        ):
            names = {n.id for n in ast.walk(node.func.value) if isinstance(n, ast.Name)}
            if names & {"token", "expected"}:
                offenders.append(ast.unparse(node))
    assert offenders == []
    calls = [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert calls.count("hmac.compare_digest") >= 2


# -- product bugs these tests found, fixed: kept as regression tests ---------------------------
@pytest.mark.parametrize(
    "digits",
    ["0123456789".maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"), "0123456789".maketrans("0123456789", "０１２３４５６７８９")],
    ids=["arabic-indic", "fullwidth"],
)
def test_a_timestamp_in_non_ascii_digits_is_a_401(signed_stack, digits):
    request = signed(identified())
    request["headers"]["x-signal-timestamp"] = request["headers"]["x-signal-timestamp"].translate(digits)
    answer = invoke(request)
    assert answer.status == 401


def test_a_huge_timestamp_is_a_401(signed_stack):
    request = signed(identified())
    request["headers"]["x-signal-timestamp"] = "9" * 400
    answer = invoke(request)
    assert answer.status == 401
