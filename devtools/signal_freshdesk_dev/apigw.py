"""The request shape API Gateway HTTP APIs (payload format 2.0) hand to a Lambda, and a Lambda context."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOCAL_WEBHOOK_TOKEN = "local-webhook-token-0123456789abcdef"


def http_api_event(
    body: str | bytes | None,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    path: str = "/events",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """Build an HTTP API v2 event. Header names are lower-cased, as API Gateway does.

    A bytes body that is not UTF-8 text is base64-encoded with isBase64Encoded set, as API Gateway does.
    """
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    encoded = False
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            body = base64.b64encode(body).decode("ascii")
            encoded = True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if body is not None:
        event["body"] = body
    return event


@dataclass
class LambdaContext:
    """Enough of Lambda's context object for the handlers and Powertools."""

    function_name: str = "signal-freshdesk-local"
    timeout_seconds: float = 29.0
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/signal-freshdesk-local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-west-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))
