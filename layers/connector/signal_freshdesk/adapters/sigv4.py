"""AWS Signature Version 4 for a JSON-protocol POST: stdlib only, so a cold start need not import botocore."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit


@dataclass(frozen=True)
class AwsCredentials:
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls) -> AwsCredentials:
        """Lambda puts the function role's credentials in these variables."""
        access = os.environ.get("AWS_ACCESS_KEY_ID", "")
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        if not access or not secret:
            raise LookupError("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set")
        return cls(access, secret, os.environ.get("AWS_SESSION_TOKEN", ""))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signed_headers(
    *,
    url: str,
    body: bytes,
    headers: dict[str, str],
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """Return `headers` plus Host, X-Amz-Date, the session token and Authorization, for a POST to `url`."""
    now = now or datetime.now(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    parts = urlsplit(url)
    host = parts.netloc
    out = dict(headers)
    out["Host"] = host
    out["X-Amz-Date"] = amz_date
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    canonical = {k.lower(): " ".join(str(v).split()) for k, v in out.items()}
    names = ";".join(sorted(canonical))
    canonical_request = "\n".join(
        [
            "POST",
            parts.path or "/",
            parts.query,
            "".join(f"{name}:{canonical[name]}\n" for name in sorted(canonical)),
            names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(("AWS4" + credentials.secret_key).encode("utf-8"), day), region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    return out
