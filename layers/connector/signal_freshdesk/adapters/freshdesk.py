"""The Freshdesk REST API v2 over one reused urllib3 connection pool: the core's `Freshdesk` port.

It only talks: what the answers mean, and what they say about the rate limit, is the core's business.

Each call has a total time limit (what is left before the deadline): urllib3's timeouts, `total`
included, bound each socket read, not the whole answer, so a server trickling its body a byte at a time
would hold the call past the deadline. The body is read in chunks against that limit instead."""

from __future__ import annotations

import json
import time
from base64 import b64encode
from typing import Any
from urllib.parse import quote

import urllib3

from ..core.credentials import Credentials
from ..core.model import Answer
from ..core.timing import Deadline, TimingPolicy

USER_AGENT = "signal-freshdesk/0.1"
LIST_FILTERS = frozenset({"email", "phone", "mobile", "unique_external_id"})
_CHUNK_BYTES = 65_536


class CallTimedOut(Exception):
    """The answer did not arrive in full within the call's time limit."""


def read_within(response: Any, seconds: float, clock: Any = time.monotonic) -> bytes:
    """The body of a response opened with preload_content=False, read within `seconds` in total.

    Before each read the socket's timeout is set to what is left, so no single read outlasts the limit
    either. Raises CallTimedOut (the connection is closed, never reused) or urllib3's HTTPError."""
    until = clock() + seconds
    chunks: list[bytes] = []
    done = False
    try:
        while True:
            left = until - clock()
            if left <= 0:
                raise CallTimedOut(f"the answer took longer than {seconds:.1f} s")
            sock = getattr(response.connection, "sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = response.read1(_CHUNK_BYTES)
            if not chunk:
                done = True
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        if not done:
            response.close()  # half read: the connection can't serve another request
        response.release_conn()


class FreshdeskClient:
    """Contacts and companies calls. No automatic retries on status codes: the retry queue owns retrying.

    Only a failed connect (the request never left) is retried once, which also covers a keep-alive
    socket that went stale while the Lambda sandbox was frozen.
    """

    def __init__(
        self,
        *,
        base_url_override: str = "",
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        pool_size: int = 10,
        min_call_seconds: float = TimingPolicy.min_call_seconds,
    ) -> None:
        self._override = base_url_override
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._min_call_seconds = min_call_seconds
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            block=False,
            retries=urllib3.Retry(
                total=1,
                connect=1,
                read=0,
                status=0,
                other=0,
                redirect=0,
                raise_on_status=False,
                respect_retry_after_header=False,
            ),
            cert_reqs="CERT_REQUIRED",
        )

    def create_contact(
        self, creds: Credentials, contact: dict[str, Any], *, deadline: Deadline | None = None
    ) -> Answer:
        return self._request(creds, "POST", "/api/v2/contacts", contact, deadline)

    def update_contact(
        self, creds: Credentials, contact_id: int, contact: dict[str, Any], *, deadline: Deadline | None = None
    ) -> Answer:
        return self._request(creds, "PUT", f"/api/v2/contacts/{int(contact_id)}", contact, deadline)

    def get_contact(self, creds: Credentials, contact_id: int, *, deadline: Deadline | None = None) -> Answer:
        return self._request(creds, "GET", f"/api/v2/contacts/{int(contact_id)}", None, deadline)

    def contact_fields(self, creds: Credentials, *, deadline: Deadline | None = None) -> Answer:
        """Read-only: the account's contact field schema (a credentials check that creates nothing)."""
        return self._request(creds, "GET", "/api/v2/contact_fields", None, deadline)

    def list_contact_fields(self, creds: Credentials, *, deadline: Deadline | None = None) -> Answer:
        """The same as `contact_fields`, under the name `signal_freshdesk_dev.check` calls."""
        return self.contact_fields(creds, deadline=deadline)

    def find_contacts(self, creds: Credentials, field: str, value: str, *, deadline: Deadline | None = None) -> Answer:
        if field not in LIST_FILTERS:
            raise ValueError(f"not a contacts-list filter: {field}")
        return self._request(creds, "GET", f"/api/v2/contacts?{field}={quote(value, safe='')}", None, deadline)

    def create_company(
        self, creds: Credentials, company: dict[str, Any], *, deadline: Deadline | None = None
    ) -> Answer:
        return self._request(creds, "POST", "/api/v2/companies", company, deadline)

    def update_company(
        self, creds: Credentials, company_id: int, company: dict[str, Any], *, deadline: Deadline | None = None
    ) -> Answer:
        return self._request(creds, "PUT", f"/api/v2/companies/{int(company_id)}", company, deadline)

    def get_company(self, creds: Credentials, company_id: int, *, deadline: Deadline | None = None) -> Answer:
        return self._request(creds, "GET", f"/api/v2/companies/{int(company_id)}", None, deadline)

    def find_companies(self, creds: Credentials, name: str, *, deadline: Deadline | None = None) -> Answer:
        """Companies whose name, or a word in it, starts with `name` (Freshdesk's autocomplete)."""
        return self._request(
            creds, "GET", f"/api/v2/companies/autocomplete?name={quote(name, safe='')}", None, deadline
        )

    def _request(
        self, creds: Credentials, method: str, path: str, body: dict[str, Any] | None, deadline: Deadline | None
    ) -> Answer:
        # The whole call's limit: what is left before the deadline; without one, a connect and a read.
        limit = self._connect_timeout + self._read_timeout
        if deadline is not None:
            limit = deadline.remaining()
            if limit <= self._min_call_seconds:
                return Answer(None, error="no time left before the deadline")
        read_timeout = min(self._read_timeout, limit)
        started = time.monotonic()
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
                method,
                url,
                body=payload,
                headers=headers,
                redirect=False,
                timeout=urllib3.Timeout(
                    connect=min(self._connect_timeout, read_timeout), read=read_timeout, total=limit
                ),
                preload_content=False,
            )
            data = read_within(response, limit - (time.monotonic() - started))
        except urllib3.exceptions.HTTPError as exc:
            return Answer(None, error=_describe(exc))
        except (CallTimedOut, OSError) as exc:
            return Answer(None, error=f"ReadTimeoutError: {type(exc).__name__}")
        return Answer(response.status, _decode(data), dict(response.headers))


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
