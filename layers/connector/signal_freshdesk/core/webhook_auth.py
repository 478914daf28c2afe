"""Who may call the webhook: the bearer token, and optionally an HMAC-SHA256 signature of the raw body.

Pure functions; every comparison runs in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def check_bearer_token(headers: Mapping[str, str], token: str) -> str:
    """The reason to refuse the call, or "" when the bearer token matches."""
    presented = headers.get("authorization", "")
    scheme, _, value = presented.strip().partition(" ")
    if presented.strip() and scheme.lower() != "bearer":
        return "the Authorization header must use the Bearer scheme with the webhook token"
    if not value.strip():
        return "missing webhook token: send 'Authorization: Bearer <webhook_token>'"
    if not hmac.compare_digest(value.strip().encode("utf-8"), token.encode("utf-8")):
        return "the webhook token does not match this connector's webhook_token"
    return ""


def body_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over `<timestamp>.<raw body>`."""
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def check_signature(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float,
    signature_header: str,
    timestamp_header: str,
    tolerance_seconds: float,
) -> str:
    """The reason to refuse the call, or "" when the signature is valid and fresh.

    The timestamp (Unix seconds) is signed with the body, so a captured request cannot be replayed once
    it falls outside the tolerance window; within it, the idempotency store absorbs the repeat.
    """
    signature = headers.get(signature_header.lower(), "").strip()
    stamp = headers.get(timestamp_header.lower(), "").strip()
    if not signature or not stamp:
        return f"missing signature: send {signature_header} and {timestamp_header}"
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return f"{timestamp_header} must be Unix seconds"
    sent_at = int(stamp)
    if abs(now - sent_at) > tolerance_seconds:
        return f"the signature timestamp is outside the {int(tolerance_seconds)} s window (stale or replayed request)"
    presented = signature.removeprefix("sha256=").strip().lower()
    expected = body_signature(secret, stamp, body)
    if not hmac.compare_digest(presented.encode("ascii", "replace"), expected.encode("ascii")):
        return "the body signature does not match"
    return ""
