"""The Freshdesk REST API v2 over one reused urllib3 connection pool."""

from __future__ import annotations

import json
import threading
import time
from base64 import b64encode
from typing import Any

import urllib3

from .config import Credentials
from .outcomes import MAX_SQS_DELAY, Answer, retry_after_seconds

USER_AGENT = "signal-freshdesk/0.1"


class FreshdeskClient:
    """Contacts calls. No automatic retries on status codes: the retry queue owns retrying.

    Only a failed connect (the request never left) is retried once, which also covers a keep-alive
    socket that went stale while the Lambda sandbox was frozen.
    """

    def __init__(self, *, base_url_override: str = "", connect_timeout: float = 3.05,
                 read_timeout: float = 10.0, pool_size: int = 10,
                 clock=time.monotonic) -> None:
        self._override = base_url_override
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._clock = clock
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            block=False,
            retries=urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0,
                                  raise_on_status=False, respect_retry_after_header=False),
            cert_reqs="CERT_REQUIRED",
        )
        self._gate_lock = threading.Lock()
        self._closed_until = 0.0

    # The rate gate: after a 429 every call waits out Retry-After instead of spending the budget.
    def rate_limited_for(self) -> float:
        with self._gate_lock:
            return max(0.0, self._closed_until - self._clock())

    def _note_rate_limit(self, answer: Answer) -> None:
        if answer.status != 429:
            return
        wait = retry_after_seconds(answer)
        wait = 60 if wait is None else min(max(wait, 1), MAX_SQS_DELAY)
        with self._gate_lock:
            self._closed_until = max(self._closed_until, self._clock() + wait)

    def create_contact(self, creds: Credentials, contact: dict[str, Any], *, deadline: float | None = None) -> Answer:
        return self._request(creds, "POST", "/api/v2/contacts", contact, deadline)

    def update_contact(self, creds: Credentials, contact_id: int, contact: dict[str, Any], *,
                       deadline: float | None = None) -> Answer:
        return self._request(creds, "PUT", f"/api/v2/contacts/{int(contact_id)}", contact, deadline)

    def get_contact(self, creds: Credentials, contact_id: int, *, deadline: float | None = None) -> Answer:
        return self._request(creds, "GET", f"/api/v2/contacts/{int(contact_id)}", None, deadline)

    def _request(self, creds: Credentials, method: str, path: str, body: dict[str, Any] | None,
                 deadline: float | None) -> Answer:
        read_timeout = self._read_timeout
        if deadline is not None:
            read_timeout = min(read_timeout, deadline - self._clock())
            if read_timeout <= 0.5:
                return Answer(None, error="no time left before the deadline")
        headers = {
            "Authorization": "Basic " + b64encode(f"{creds.api_key}:X".encode()).decode("ascii"),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body, separators=(",", ":")).encode()
        url = creds.base_url(self._override) + path
        try:
            response = self._pool.request(
                method, url, body=payload, headers=headers, redirect=False,
                timeout=urllib3.Timeout(connect=min(self._connect_timeout, read_timeout), read=read_timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            return Answer(None, error=_describe(exc))
        answer = Answer(response.status, _decode(response.data), dict(response.headers))
        self._note_rate_limit(answer)
        return answer


def _decode(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data[:2000].decode("utf-8", "replace")


def _describe(exc: Exception) -> str:
    """A transport error's kind without its URL parameters."""
    reason = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {type(reason).__name__}"
