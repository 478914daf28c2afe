"""Who may call the webhook: the bearer token, and optionally an HMAC-SHA256 signature of the raw body.

Pure functions; every comparison runs in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

# How far a signed request's timestamp may be ahead of this function's clock: clock skew between
# Signal and Lambda, not a second window. Behind the clock, the configured tolerance applies.
FUTURE_SKEW_SECONDS = 60.0


def missing_bearer_token(headers: Mapping[str, str]) -> str:
    """The reason to refuse a call that presents no bearer token at all, or "".

    Needs no secret, so it runs before the secret is read: an anonymous caller costs no Secrets Manager
    call and gets a 401, not a 503 (which a misconfigured or freshly deployed connector would give).
    """
    presented = headers.get("authorization", "")
    scheme, _, value = presented.strip().partition(" ")
    if presented.strip() and scheme.lower() != "bearer":
        return "the Authorization header must use the Bearer scheme with the webhook token"
    if not value.strip():
        return "missing webhook token: send 'Authorization: Bearer <webhook_token>'"
    return ""


def check_bearer_token(headers: Mapping[str, str], token: str) -> str:
    """The reason to refuse the call, or "" when the bearer token matches."""
    missing = missing_bearer_token(headers)
    if missing:
        return missing
    _, _, value = headers.get("authorization", "").strip().partition(" ")
    if not hmac.compare_digest(value.strip().encode("utf-8"), token.encode("utf-8")):
        return "the webhook token does not match this connector's webhook_token"
    return ""


def body_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over `<timestamp>.<raw body>`."""
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SignatureCheck:
    """What `verify_signature` found. `refusal` is the reason to refuse, or "" when the signature is valid
    and fresh; then `replay_key` names this signed request (a digest of its signature, not the signature)
    and `fresh_for` is how many seconds its timestamp stays inside the window."""

    refusal: str = ""
    replay_key: str = ""
    fresh_for: float = 0.0


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float,
    signature_header: str,
    timestamp_header: str,
    tolerance_seconds: float,
    future_skew_seconds: float = FUTURE_SKEW_SECONDS,
) -> SignatureCheck:
    """Check the signature of `<timestamp>.<raw body>` and its timestamp's window.

    The timestamp (Unix seconds) is signed with the body, so a captured request cannot be replayed once
    it falls outside the window: at most `tolerance_seconds` old and `future_skew_seconds` ahead of the
    clock. Within it, the caller refuses a `replay_key` it has seen before.
    """
    signature = headers.get(signature_header.lower(), "").strip()
    stamp = headers.get(timestamp_header.lower(), "").strip()
    if not signature or not stamp:
        return SignatureCheck(f"missing signature: send {signature_header} and {timestamp_header}")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return SignatureCheck(f"{timestamp_header} must be Unix seconds")
    sent_at = int(stamp)
    ahead = min(future_skew_seconds, tolerance_seconds)
    if now - sent_at > tolerance_seconds:
        return SignatureCheck(
            f"the signature timestamp is outside the {int(tolerance_seconds)} s window (stale or replayed request)"
        )
    if sent_at - now > ahead:
        return SignatureCheck(
            f"the signature timestamp is outside the {int(tolerance_seconds)} s window: more than {int(ahead)} s "
            "ahead of this function's clock"
        )
    presented = signature.removeprefix("sha256=").strip().lower()
    expected = body_signature(secret, stamp, body)
    if not hmac.compare_digest(presented.encode("ascii", "replace"), expected.encode("ascii")):
        return SignatureCheck("the body signature does not match")
    replay_key = hashlib.sha256(b"signal-freshdesk/signed-request\x00" + expected.encode("ascii")).hexdigest()
    return SignatureCheck("", replay_key, max(0.0, sent_at + tolerance_seconds - now))
