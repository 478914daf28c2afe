"""The Freshdesk REST API v2 over one reused urllib3 connection pool."""

from __future__ import annotations

import json
import threading
import time
from base64 import b64encode
from urllib.parse import quote
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
                 rate_window: float = 60.0, clock=time.monotonic) -> None:
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
        # Pacing state: the account's budget as the last answer told it, and when its window was first seen.
        self._rate_window = rate_window
        self._budget_remaining: int | None = None
        self._budget_total: int | None = None
        self._window_seen_at = 0.0

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

    # Pacing: Freshdesk's budget is per account and per window (a minute), shared by every caller, and
    # each answer says what is left of it (X-RateLimit-Remaining of X-RateLimit-Total) but not when
    # the window ends. A window first seen running at time t has ended by t + its length, so a caller
    # that holds back until then, once the budget is down to `reserve`, stays under the limit instead
    # of spending calls on 429s. `reserve` leaves room for the other callers' calls in flight.
    # (After a 429 anyway, the rate gate above applies: rate_limited_for.)
    def pacing_delay(self, reserve: int = 1) -> float:
        """Seconds to hold back the next call because the last answer left `reserve` calls or fewer in
        the window: until that window must have ended. 0: the budget allows a call now."""
        with self._gate_lock:
            if self._budget_remaining is None or self._budget_remaining > reserve:
                return 0.0
            return max(0.0, self._window_seen_at + self._rate_window - self._clock())

    def budget(self) -> tuple[int | None, int | None]:
        """(remaining, total) calls of the window, as the last answer that carried them said."""
        with self._gate_lock:
            return self._budget_remaining, self._budget_total

    def _note_budget(self, answer: Answer) -> None:
        remaining = _header_int(answer, "X-RateLimit-Remaining")
        if remaining is None:
            return
        now = self._clock()
        with self._gate_lock:
            # A new window: more budget than before (a reset), or the seen window must be over by now.
            # Answers of concurrent calls can arrive out of order; that only makes the wait longer.
            if (self._budget_remaining is None or remaining > self._budget_remaining
                    or now >= self._window_seen_at + self._rate_window):
                self._window_seen_at = now
            self._budget_remaining = remaining
            self._budget_total = _header_int(answer, "X-RateLimit-Total")

    def create_contact(self, creds: Credentials, contact: dict[str, Any], *, deadline: float | None = None) -> Answer:
        return self._request(creds, "POST", "/api/v2/contacts", contact, deadline)

    def update_contact(self, creds: Credentials, contact_id: int, contact: dict[str, Any], *,
                       deadline: float | None = None) -> Answer:
        return self._request(creds, "PUT", f"/api/v2/contacts/{int(contact_id)}", contact, deadline)

    def get_contact(self, creds: Credentials, contact_id: int, *, deadline: float | None = None) -> Answer:
        return self._request(creds, "GET", f"/api/v2/contacts/{int(contact_id)}", None, deadline)

    def list_contact_fields(self, creds: Credentials, *, deadline: float | None = None) -> Answer:
        """Read-only: the account's contact field schema (a credentials check that creates nothing)."""
        return self._request(creds, "GET", "/api/v2/contact_fields", None, deadline)

    def find_contacts_by_phone(self, creds: Credentials, phone: str, *, deadline: float | None = None) -> Answer:
        return self._request(creds, "GET", f"/api/v2/contacts?phone={quote(phone, safe='')}", None, deadline)

    def _request(self, creds: Credentials, method: str, path: str, body: dict[str, Any] | None,
                 deadline: float | None) -> Answer:
        read_timeout = self._read_timeout
        if deadline is not None:
            left = deadline - self._clock()
            if left <= 0.5:
                return Answer(None, error="no time left before the deadline")
            read_timeout = min(read_timeout, left)
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
        self._note_budget(answer)
        return answer


def _header_int(answer: Answer, name: str) -> int | None:
    raw = answer.header(name)
    try:
        return max(0, int(raw.strip())) if raw is not None else None
    except ValueError:
        return None


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
