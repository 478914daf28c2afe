"""Shared by the security tests: raw API Gateway requests, the answer contract, signatures, fuzz settings."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings

from signal_freshdesk_dev.apigw import (
    LOCAL_WEBHOOK_TOKEN,
    LambdaContext,
    http_api_event,
)
from signal_freshdesk_dev.handlers import ingest_handler

TOKEN = LOCAL_WEBHOOK_TOKEN
# Signing secrets of these tests (the log privacy plugin collects constants named *SECRET* as secrets).
SIGNING_SECRET = "whsec_0123456789abcdef0123456789abcdef"
OTHER_SIGNING_SECRET = "whsec_fedcba9876543210fedcba9876543210"

# Examples share one `stack` per test (reset per example), and some inputs are large by design.
SUPPRESSED = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.filter_too_much,
]
ABSENT = object()  # a request without that part
OUTCOMES = {
    "delivered",
    "updated",
    "conflict",
    "queued",
    "rejected",
    "dropped",
    "failed",
    "unchanged",
    "stale",
    "consent_withdrawn",
    "deleted_in_freshdesk",
    "identity_mismatch",
}
# A 400 that names a field the contact cannot do without (the name) besides the unknown company: the
# whole contact is refused, and parked. An unknown company alone is dropped and the contact delivered.
REFUSAL_400 = {
    "description": "Validation failed",
    "errors": [
        {"field": "company_id", "message": "There is no company matching the given company_id", "code": "absent_in_db"},
        {"field": "name", "message": "It should be a/an String", "code": "invalid_value"},
    ],
}


def long_run() -> bool:
    """HYPOTHESIS_LONG=1: the property tests run the "long" profile."""
    return os.environ.get("HYPOTHESIS_LONG", "").strip().lower() not in ("", "0", "false", "no", "off")


def register_profiles() -> str:
    """The hypothesis profiles of the security tests; returns the one this run uses.

    "security-ci": a short run for CI (each property sets its own count, a few hundred at most).
    "long": 10,000 examples per property. The log_privacy plugin registers both at import and loads
    "long" as the default of the whole run when HYPOTHESIS_LONG=1.
    """
    settings.register_profile("security-ci", max_examples=100, deadline=None)
    settings.register_profile("long", max_examples=10_000, deadline=None)
    return "long" if long_run() else "security-ci"


def fuzz_settings(ci_examples: int) -> settings:
    """The profile of this run; CI runs `ci_examples`, the long run at least the profile's 10,000."""
    register_profiles()  # idempotent; also when this module runs without the plugin
    if long_run():
        parent = settings.get_profile("long")
        return settings(parent, max_examples=max(parent.max_examples, 10_000), suppress_health_check=SUPPRESSED)
    return settings(settings.get_profile("security-ci"), max_examples=ci_examples, suppress_health_check=SUPPRESSED)


def raw_request(
    body: Any = ABSENT,
    *,
    headers: Mapping[str, str] | None = None,
    token: str | None = TOKEN,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) request exactly as given: no encoding decided for us."""
    request = http_api_event(None, {})
    if body is not ABSENT:
        request["body"] = body
    request["isBase64Encoded"] = base64_encoded
    request["headers"] = {}
    if token is not None:
        request["headers"]["authorization"] = f"Bearer {token}"
    request["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
    return request


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    raw: dict[str, Any]


def invoke(request: Mapping[str, Any], context: LambdaContext | None = None) -> Answer:
    """The real ingest Lambda handler; checks the answer contract every webhook answer keeps."""
    answer = ingest_handler()(dict(request), context or LambdaContext(function_name="ingest"))
    return check_contract(answer)


def check_contract(answer: Any) -> Answer:
    assert isinstance(answer, dict), f"the handler answered {type(answer).__name__}, not an HTTP answer"
    status = answer.get("statusCode")
    assert isinstance(status, int) and 200 <= status <= 599, f"bad statusCode {status!r}"
    assert answer.get("headers", {}).get("Content-Type") == "application/json", answer.get("headers")
    assert isinstance(answer.get("body"), str), "the answer body is not text"
    body = json.loads(answer["body"])
    assert isinstance(body, dict), f"the answer body is JSON {type(body).__name__}, not an object"
    assert "outcome" in body or "results" in body, f"the answer names no outcome: {answer['body'][:300]}"
    if "outcome" in body:
        assert body["outcome"] in OUTCOMES | {"bad_request", "unauthorized", "error"}, body["outcome"]
    if status in (400, 401, 413) and body.get("outcome") in ("bad_request", "unauthorized"):
        message = body.get("message")
        assert isinstance(message, str) and len(message) >= 10, f"a {status} must say what was wrong: {body}"
        assert "Traceback" not in message
    return Answer(status, body, answer)


def signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """HMAC-SHA256 hex over `<timestamp>.<raw body>`, computed here independently of the product."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def results_of(answer: Answer) -> list[dict[str, Any]]:
    """The per-event results of an answer (a single event's answer is its own result)."""
    return answer.body.get("results", [answer.body])


def freshdesk_400_is_known(result: Mapping[str, Any]) -> bool:
    """The one 400 Freshdesk may give an event we accepted: a company_id the account does not have."""
    errors = (result.get("freshdesk") or {}).get("errors") if isinstance(result.get("freshdesk"), dict) else None
    return bool(errors) and all(e.get("code") == "absent_in_db" and e.get("field") == "company_id" for e in errors)
