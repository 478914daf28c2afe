"""A local stand-in for Freshdesk's REST API v2 contacts and companies endpoints.

Used by the integration tests, the local demo and the benchmarks. It reproduces the Freshdesk
behaviour the connector relies on (docs/behaviour.md): HTTP Basic auth with
the API key as user name, validation errors with Freshdesk's error shape, 409 ``duplicate_value``
with ``additional_info.user_id`` (soft-deleted contacts included, on create and on update), 405 on
deleted or blocked contacts, list filters that see only contacts that are not deleted, typed custom
fields (text, paragraph, number, checkbox, date, dropdown, URL, phone number), companies (create with a
unique name, autocomplete, read, update, delete; a contact's ``company_id`` must name one), a
fixed-window rate limit with ``X-RateLimit-*`` headers and ``Retry-After`` and an optional,
lower sub-limit for contacts-list calls, plus fault injection (status faults, latency, dropped
connections, forbidden / wrong-domain modes). ``seed_contact`` and ``seed_company`` fill it with contacts
and companies as if agents had created them, so the connector meets a populated account.

Standard library only. Run it in the foreground with::

    python -m signal_freshdesk_dev.sandbox --port 8025 --api-key KEY --rate-limit 400 --window 60

Admin endpoints (no auth, no rate limit, not logged): ``GET /_sandbox/contacts``,
``POST /_sandbox/contacts`` (seed a contact: the fields as a JSON object, plus ``deleted`` / ``blocked``),
``GET /_sandbox/companies``, ``POST /_sandbox/companies`` (seed a company), ``GET /_sandbox/requests``,
``GET /_sandbox/stats``, ``POST /_sandbox/reset``, ``POST /_sandbox/faults``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hmac
import http
import json
import math
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FreshdeskSandbox", "main"]

FIRST_CONTACT_ID = 101
FIRST_COMPANY_ID = 1
MAX_TEXT = 255
MAX_TAG = 32

TEXT_FIELDS = ("name", "email", "phone", "mobile", "twitter_id", "unique_external_id", "job_title")
IDENTIFIER_FIELDS = ("email", "phone", "mobile", "twitter_id", "unique_external_id")
OTHER_STRING_FIELDS = ("address", "description", "language", "time_zone")
KNOWN_FIELDS = frozenset(
    TEXT_FIELDS
    + OTHER_STRING_FIELDS
    + ("company_id", "tags", "custom_fields", "other_emails", "view_all_tickets", "other_companies")
)
# Fields whose duplicates Freshdesk answers with 409, in the order errors are reported.
UNIQUE_FIELDS = ("email", "unique_external_id", "twitter_id")
CUSTOM_FIELD_TYPES = (
    "custom_text",
    "custom_paragraph",
    "custom_number",
    "custom_checkbox",
    "custom_date",
    "custom_dropdown",
    "custom_url",
    "custom_phone_number",
)
COMPANY_STRING_FIELDS = ("description", "note", "health_score", "account_tier", "renewal_date", "industry")
COMPANY_FIELDS = frozenset(("name", "domains", "custom_fields", *COMPANY_STRING_FIELDS))

MSG_STRING = "It should be a/an String"
MSG_INVALID_FIELD = "Unexpected/invalid field in request"
MSG_IDENTIFIER = "Please fill at least 1 of email, mobile, phone, twitter_id, unique_external_id fields"
MSG_EMAIL = "It should be in the 'valid email address' format"
MSG_DUPLICATE = "It should be a unique value"
MSG_NO_COMPANY = "There is no company matching the given company_id"
MSG_MISSING = "Mandatory attribute missing"
MSG_DATE = "It should be in the 'yyyy-mm-dd' format"

CONTACTS_LIST_PATH = "/api/v2/contacts"

BODY_401 = {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}
BODY_403 = {"code": "access_denied", "message": "You are not authorized to perform this action."}
BODY_429 = {"message": "You have exceeded the limit of requests per minute"}

MODES = (None, "forbidden", "not_found")

_EMPTY = object()  # marker: answer with an empty body


def _now_iso(previous: str | None = None) -> str:
    """UTC timestamp with millisecond precision and a Z; strictly later than ``previous``."""
    now = datetime.now(UTC).replace(tzinfo=None)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    if previous:
        try:
            before = datetime.fromisoformat(previous.rstrip("Z"))
        except ValueError:
            before = None
        if before is not None and now <= before:
            now = before + timedelta(milliseconds=1)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _plausible_email(value: str) -> bool:
    if any(ch.isspace() for ch in value) or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    if not local or "." not in domain:
        return False
    return all(domain.split("."))


def _error(field: str, message: str, code: str, **extra: Any) -> dict:
    entry = {"field": field, "message": message, "code": code}
    entry.update(extra)
    return entry


def _validation_failed(errors: list[dict]) -> dict:
    return {"description": "Validation failed", "errors": errors}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_date(value: Any) -> bool:
    """A ``yyyy-mm-dd`` string naming a real day."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _autocompletes(name: str, term: str) -> bool:
    """Whether ``term`` (lower-cased) starts ``name`` or one of its words, ignoring case."""
    lowered = name.lower()
    starts = [0] + [i + 1 for i, ch in enumerate(lowered) if ch.isspace()]
    return any(lowered.startswith(term, start) for start in starts)


class _Fault:
    """A counted fault: ``remaining`` None means until cleared."""

    __slots__ = ("data", "remaining")

    def __init__(self, remaining: int | None, data: Any) -> None:
        self.remaining = remaining
        self.data = data


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address, handler, sandbox: FreshdeskSandbox) -> None:
        self.sandbox = sandbox
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:
        """Stay quiet when a client hangs up; report real bugs."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)

    def close_open_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.open_connections)
            self.open_connections.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY: no 40 ms Nagle / delayed-ACK stalls on keep-alive
    server_version = "FreshdeskSandbox/1.0"
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    # -- plumbing ---------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.open_connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    break
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers up to the blank line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status: int, payload: Any = _EMPTY, headers: dict[str, str] | None = None) -> None:
        if payload is _EMPTY or status in (204, 304) or status < 200:
            data = b""
        else:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        if status not in (204, 304) and status >= 200:
            self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Request-Id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if hasattr(self, "_headers_buffer"):  # headers and body in one write
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
        else:  # pragma: no cover - other stdlib internals
            self.end_headers()
            if data:
                self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- dispatch ---------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        received = time.time()
        body = self._read_body()
        parts = urlsplit(self.path)
        path = parts.path
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")
        sandbox = self.server.sandbox
        try:
            if path == "/_sandbox" or path.startswith("/_sandbox/"):
                status, payload, headers = sandbox._admin(method, path, parts.query, body)
                self._send(status, payload, headers)
                return
            if path == "/api/v2" or path.startswith("/api/v2/"):
                self._api(sandbox, method, path, parts.query, body, received)
                return
            self._send(404)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # pragma: no cover - a bug in the sandbox itself
            self.close_connection = True
            try:
                self._send(500, {"message": f"sandbox internal error: {type(exc).__name__}: {exc}"})
            except OSError:
                pass

    def _api(self, sandbox: FreshdeskSandbox, method: str, path: str, query: str, body: bytes, received: float) -> None:
        drop, delay = sandbox._take_transport_faults()
        if drop:
            sandbox._log(method, path, query, None, received)
            self._drop()
            return
        if delay > 0:
            time.sleep(delay)
        status, payload, headers = sandbox._handle_api(method, path, query, body, self.headers.get("Authorization"))
        sandbox._log(method, path, query, status, received)
        self._send(status, payload, headers)


class FreshdeskSandbox:
    """An in-process fake of Freshdesk's contacts and companies API, served over real HTTP."""

    def __init__(
        self,
        api_key: str = "sandbox-api-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int = 400,
        window_seconds: float = 60.0,
        custom_fields: Iterable[str] = ("signup_method",),
        unique_external_id_enabled: bool = True,
        company_ids: Iterable[int] = (1, 2, 3),
        custom_field_choices: Mapping[str, Iterable[str]] | None = None,
        list_rate_limit: int | None = None,
        list_window_seconds: float = 60.0,
        custom_field_types: Mapping[str, str] | None = None,
        required_custom_fields: Iterable[str] = (),
    ) -> None:
        """``custom_field_choices`` declares dropdown custom fields (added to ``custom_fields`` if missing).

        ``custom_field_types`` gives custom fields a type (one of CUSTOM_FIELD_TYPES, added to
        ``custom_fields`` if missing); the others are ``custom_text``, or ``custom_dropdown`` when they have
        choices. ``required_custom_fields`` are listed as ``required_for_agents`` in contact_fields, which
        is all Freshdesk does with that flag on API writes: nothing. ``company_ids`` are companies the
        account has without the sandbox holding a record of them: like the created ones, a contact's
        ``company_id`` may name them. ``list_rate_limit`` (None: none) is the contacts-list sub-limit per
        ``list_window_seconds``.
        """
        self.api_key = api_key
        self.host = host
        self.port = port
        self.custom_fields = tuple(custom_fields)
        # custom field name -> allowed values; a field is a dropdown when it is in both
        self.custom_field_choices: dict[str, tuple[str, ...]] = {}
        # custom field name -> its type, for typed fields other than dropdowns
        self.custom_field_types: dict[str, str] = {}
        for name, choices in (custom_field_choices or {}).items():
            self._declare_dropdown(name, choices)
        for name, field_type in (custom_field_types or {}).items():
            if field_type != "custom_dropdown" and name in self.custom_field_choices:
                raise ValueError(f"custom field {name!r} has choices, so it cannot be a {field_type}")
            self._declare_type(name, field_type)
        self.required_custom_fields = frozenset(required_custom_fields)
        for name in sorted(self.required_custom_fields):
            self._add_custom_field(name)
        self.unique_external_id_enabled = bool(unique_external_id_enabled)
        self.company_ids = frozenset(company_ids)
        self._lock = threading.Lock()
        self._rate_limit = int(rate_limit)
        self._window = float(window_seconds)
        self._initial_list_limit = (
            None if list_rate_limit is None else int(list_rate_limit),
            float(list_window_seconds),
        )
        self._list_limit, self._list_window = self._initial_list_limit
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        with self._lock:
            self._reset_locked()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FreshdeskSandbox:
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        server = _Server((self.host, self.port), _Handler, self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"freshdesk-sandbox-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = None
        self._thread = None
        server.shutdown()
        server.server_close()
        server.close_open_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FreshdeskSandbox:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        host, port = self._server.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    # -- inspection -------------------------------------------------------------------------
    def contacts(self, include_deleted: bool = False) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(c) for _, c in sorted(self._contacts.items()) if include_deleted or not c["deleted"]]

    def contact(self, contact_id: int) -> dict:
        """One stored contact, deleted or not (a copy); KeyError if there is none with that id."""
        with self._lock:
            return copy.deepcopy(self._contacts[contact_id])

    def companies(self) -> list[dict]:
        """The stored companies (copies), by id."""
        with self._lock:
            return [copy.deepcopy(c) for _, c in sorted(self._companies.items())]

    def company(self, company_id: int) -> dict:
        """One stored company (a copy); KeyError if there is none with that id."""
        with self._lock:
            return copy.deepcopy(self._companies[company_id])

    def requests(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._requests)

    def list_calls(self) -> int:
        """How many contacts-list calls (``GET /api/v2/contacts``) arrived since the last reset, whatever the answer."""
        with self._lock:
            return self._list_calls

    def stats(self) -> dict[str, int]:
        """Calls received since the last reset: all API calls (contacts and companies alike), list calls, and
        list calls refused by the sub-limit."""
        with self._lock:
            return {
                "requests": len(self._requests),
                "list_calls": self._list_calls,
                "list_rate_limited": self._list_limited,
            }

    def reset(self) -> None:
        """Forget contacts, companies, requests, faults and rate windows; the list sub-limit returns to its
        initial setting."""
        with self._lock:
            self._reset_locked()
            self._list_limit, self._list_window = self._initial_list_limit

    def _reset_locked(self) -> None:
        self._contacts: dict[int, dict] = {}
        self._blocked: set[int] = set()
        self._next_id = FIRST_CONTACT_ID
        self._companies: dict[int, dict] = {}
        self._next_company_id = FIRST_COMPANY_ID
        # field -> lookup key -> ids: emails (primary and other, lower-cased), external and twitter ids
        self._index: dict[str, dict[str, set[int]]] = {field: {} for field in UNIQUE_FIELDS}
        self._requests: list[dict] = []
        self._clear_faults_locked()
        self._window_start: float | None = None
        self._window_used = 0
        self._list_window_start: float | None = None
        self._list_used = 0
        self._list_calls = 0
        self._list_limited = 0

    # -- fault injection --------------------------------------------------------------------
    def fail_next(
        self, status: int = 503, count: int | None = 1, body: dict | None = None, retry_after: int | None = None
    ) -> None:
        with self._lock:
            self._fail = _Fault(count, (int(status), body, retry_after))

    def delay(self, seconds: float, count: int | None = None) -> None:
        with self._lock:
            self._delay = _Fault(count, float(seconds)) if seconds > 0 else None

    def drop_next(self, count: int | None = 1) -> None:
        with self._lock:
            self._drop = _Fault(count, None)

    def set_mode(self, mode: str | None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        with self._lock:
            self._mode = mode

    def clear_faults(self) -> None:
        with self._lock:
            self._clear_faults_locked()

    def _clear_faults_locked(self) -> None:
        self._fail: _Fault | None = None
        self._delay: _Fault | None = None
        self._drop: _Fault | None = None
        self._mode: str | None = None

    def set_rate_limit(self, limit: int, window_seconds: float | None = None) -> None:
        with self._lock:
            self._rate_limit = int(limit)
            if window_seconds is not None:
                self._window = float(window_seconds)
            self._window_start = None
            self._window_used = 0

    def set_list_rate_limit(self, limit: int | None, window_seconds: float | None = None) -> None:
        """A sub-limit for contacts-list calls (None: none), on top of the account limit; starts a fresh window."""
        with self._lock:
            self._list_limit = None if limit is None else int(limit)
            if window_seconds is not None:
                self._list_window = float(window_seconds)
            self._list_window_start = None
            self._list_used = 0

    def set_custom_field_choices(self, name: str, choices: Iterable[str] | None) -> None:
        """Make custom field ``name`` a dropdown with these choices (adding the field if needed); None: plain text."""
        with self._lock:
            if choices is None:
                self.custom_field_choices.pop(name, None)
            else:
                self._declare_dropdown(name, choices)

    def set_custom_field_type(self, name: str, field_type: str) -> None:
        """Give custom field ``name`` one of CUSTOM_FIELD_TYPES (adding the field if needed).

        A dropdown takes its choices from ``set_custom_field_choices``, so ``custom_dropdown`` is refused
        for a field without choices; any other type drops the field's choices."""
        with self._lock:
            self._declare_type(name, field_type)

    def _declare_dropdown(self, name: str, choices: Iterable[str]) -> None:
        values = tuple(choices)
        if not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"dropdown {name!r} needs at least one choice, each a string")
        self.custom_field_choices = {**self.custom_field_choices, name: values}
        self.custom_field_types = {k: v for k, v in self.custom_field_types.items() if k != name}
        self._add_custom_field(name)

    def _declare_type(self, name: str, field_type: str) -> None:
        if field_type not in CUSTOM_FIELD_TYPES:
            raise ValueError(f"unknown custom field type {field_type!r}; expected one of {CUSTOM_FIELD_TYPES}")
        if field_type == "custom_dropdown":
            if name not in self.custom_field_choices:
                raise ValueError(f"custom field {name!r} has no choices, so it cannot be a custom_dropdown")
        else:
            self.custom_field_choices = {k: v for k, v in self.custom_field_choices.items() if k != name}
            self.custom_field_types = {**self.custom_field_types, name: field_type}
        self._add_custom_field(name)

    def _add_custom_field(self, name: str) -> None:
        if name not in self.custom_fields:
            self.custom_fields = (*self.custom_fields, name)

    def _custom_field_type(self, name: str) -> str:
        if name in self.custom_field_choices:
            return "custom_dropdown"
        return self.custom_field_types.get(name, "custom_text")

    def seed_contact(self, *, deleted: bool = False, blocked: bool = False, **fields: Any) -> dict:
        """Store a contact as an agent would have created it, and return it (a copy).

        ``fields`` are the API's contact fields (name, email, phone, mobile, unique_external_id, tags,
        job_title, company_id, custom_fields, ...); None values are left out. The contact gets the next id
        and is indexed like an API-created one (its email and external id are taken, even when
        ``deleted``), but the call is not logged and costs no rate-limit budget. Raises ValueError with
        Freshdesk's error entries for what Freshdesk itself would refuse: validation errors or an email,
        unique_external_id or twitter_id another contact already holds.
        """
        data = {key: value for key, value in fields.items() if value is not None}
        with self._lock:
            errors = self._validate(data, creating=True)
            if errors:
                raise ValueError(f"Freshdesk would refuse this contact: {errors}")
            data = self._normalise(data)
            errors = self._duplicates(data, exclude_id=None)
            if errors:
                raise ValueError(f"Freshdesk would refuse this contact as a duplicate: {errors}")
            contact = self._insert_contact(data)
            if deleted:
                contact["deleted"] = True
            if blocked:
                self._blocked.add(contact["id"])
            return copy.deepcopy(contact)

    def seed_company(self, **fields: Any) -> dict:
        """Store a company as an agent would have created it, and return it (a copy).

        ``fields`` are the API's company fields (name, domains, description, note, industry, custom_fields,
        ...); None values are left out. The company gets the next id; the call is not logged and costs
        no rate-limit budget. Raises ValueError for what Freshdesk would refuse: validation errors or a
        name another company has (ignoring case).
        """
        data = {key: value for key, value in fields.items() if value is not None}
        with self._lock:
            errors = self._validate_company(data, creating=True)
            if errors:
                raise ValueError(f"Freshdesk would refuse this company: {errors}")
            data = self._normalise_company(data)
            if self._company_name_taken(data["name"], exclude_id=None):
                raise ValueError(f"Freshdesk would refuse this company as a duplicate: {data['name']!r}")
            return copy.deepcopy(self._insert_company(data))

    def delete_contact(self, contact_id: int) -> None:
        """Soft-delete, as an agent would: the contact is kept, flagged ``deleted``, its identifiers stay taken."""
        with self._lock:
            contact = self._contacts[contact_id]
            if contact["deleted"]:
                return
            contact["deleted"] = True
            contact["updated_at"] = _now_iso(contact["updated_at"])

    def block_contact(self, contact_id: int) -> None:
        with self._lock:
            if contact_id not in self._contacts:
                raise KeyError(contact_id)
            self._blocked.add(contact_id)

    @staticmethod
    def _consume(fault: _Fault | None) -> tuple[bool, _Fault | None]:
        """Whether the fault applies to this request, and what is left of it."""
        if fault is None:
            return False, None
        if fault.remaining is None:
            return True, fault
        if fault.remaining <= 0:
            return False, None
        fault.remaining -= 1
        return True, (fault if fault.remaining > 0 else None)

    def _take_transport_faults(self) -> tuple[bool, float]:
        with self._lock:
            drop, self._drop = self._consume(self._drop)
            if drop:
                return True, 0.0
            delay_fault = self._delay
            applies, self._delay = self._consume(self._delay)
            return False, (delay_fault.data if applies and delay_fault else 0.0)

    def _log(self, method: str, path: str, query: str, status: int | None, received: float) -> None:
        with self._lock:
            self._requests.append({"method": method, "path": path, "query": query, "status": status, "time": received})
            if method == "GET" and path == CONTACTS_LIST_PATH:
                self._list_calls += 1

    # -- the API ----------------------------------------------------------------------------
    def _authorised(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep or not password:
            return False
        return hmac.compare_digest(user.encode("utf-8"), str(self.api_key).encode("utf-8"))

    def _handle_api(
        self, method: str, path: str, query: str, body: bytes, authorization: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            now = time.monotonic()
            if self._window_start is None or now >= self._window_start + self._window:
                self._window_start = now
                self._window_used = 0
            headers = {"X-RateLimit-Total": str(self._rate_limit), "X-RateLimit-Used-CurrentRequest": "1"}
            if self._window_used >= self._rate_limit:
                wait = max(1, math.ceil(self._window_start + self._window - now))
                headers["X-RateLimit-Remaining"] = "0"
                headers["Retry-After"] = str(wait)
                return 429, BODY_429, headers
            if method == "GET" and path == CONTACTS_LIST_PATH and self._list_limit is not None:
                if self._list_window_start is None or now >= self._list_window_start + self._list_window:
                    self._list_window_start = now
                    self._list_used = 0
                if self._list_used >= self._list_limit:
                    # refused by the sub-limit: like any 429, costs no budget of either limit
                    self._list_limited += 1
                    wait = max(1, math.ceil(self._list_window_start + self._list_window - now))
                    headers["X-RateLimit-Remaining"] = str(max(0, self._rate_limit - self._window_used))
                    headers["Retry-After"] = str(wait)
                    return 429, BODY_429, headers
                self._list_used += 1
            self._window_used += 1
            headers["X-RateLimit-Remaining"] = str(max(0, self._rate_limit - self._window_used))

            if not self._authorised(authorization):
                return 401, BODY_401, headers
            if self._mode == "forbidden":
                return 403, BODY_403, headers
            if self._mode == "not_found":
                return 404, _EMPTY, headers

            fail_fault = self._fail
            applies, self._fail = self._consume(self._fail)
            if applies and fail_fault is not None:
                status, fault_body, retry_after = fail_fault.data
                if retry_after is not None:
                    headers["Retry-After"] = str(int(retry_after))
                if fault_body is None:
                    try:
                        phrase = http.HTTPStatus(status).phrase
                    except ValueError:
                        phrase = "Injected fault"
                    fault_body = {"message": phrase}
                return status, copy.deepcopy(fault_body), headers

            status, payload, extra = self._route(method, path, query, body)
            headers.update(extra)
            return status, payload, headers

    def _route(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any, dict]:
        segments = path.split("/")[3:]  # after "", "api", "v2"
        if segments == ["contacts"]:
            if method == "GET":
                return self._list_contacts(query)
            if method == "POST":
                return self._create_contact(body)
            return self._method_not_allowed(method, "GET, POST")
        if len(segments) == 2 and segments[0] == "contacts" and segments[1].isdigit():
            return self._one_record(
                method, int(segments[1]), body, self._contacts, self._update_contact, self._delete_contact
            )
        if segments == ["contact_fields"]:
            if method == "GET":
                return 200, self._contact_fields(), {}
            return self._method_not_allowed(method, "GET")
        if segments == ["companies"]:  # listing all companies is not served
            if method == "POST":
                return self._create_company(body)
            return self._method_not_allowed(method, "POST")
        if segments == ["companies", "autocomplete"]:
            if method == "GET":
                return self._autocomplete_companies(query)
            return self._method_not_allowed(method, "GET")
        if len(segments) == 2 and segments[0] == "companies" and segments[1].isdigit():
            return self._one_record(
                method, int(segments[1]), body, self._companies, self._update_company, self._delete_company
            )
        return 404, _EMPTY, {}

    def _one_record(
        self,
        method: str,
        record_id: int,
        body: bytes,
        records: dict[int, dict],
        update: Callable[[int, bytes], tuple[int, Any, dict]],
        delete: Callable[[int], tuple[int, Any, dict]],
    ) -> tuple[int, Any, dict]:
        """GET, PUT or DELETE of one contact or company by id."""
        if method == "GET":
            record = records.get(record_id)
            return (404, _EMPTY, {}) if record is None else (200, copy.deepcopy(record), {})
        if method == "PUT":
            return update(record_id, body)
        if method == "DELETE":
            return delete(record_id)
        return self._method_not_allowed(method, "GET, PUT, DELETE")

    @staticmethod
    def _method_not_allowed(method: str, allow: str) -> tuple[int, Any, dict]:
        return (
            405,
            {"message": f"{method} method is not allowed. It should be one of these method(s): {allow}"},
            {"Allow": allow},
        )

    @staticmethod
    def _parse_object(body: bytes) -> tuple[dict | None, list[dict]]:
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return None, [_error("", f"Request body has invalid json format: {exc}", "invalid_json")]
        if not isinstance(data, dict):
            return None, [_error("", "Request body has invalid json format: expected a JSON object", "invalid_json")]
        return data, []

    def _validate(self, data: dict, *, creating: bool) -> list[dict]:
        errors: list[dict] = []
        for key, value in data.items():
            if key not in KNOWN_FIELDS:
                errors.append(_error(key, MSG_INVALID_FIELD, "invalid_field"))
                continue
            if value is None:
                errors.append(_error(key, "It should not be null", "datatype_mismatch"))
                continue
            if key == "unique_external_id" and not self.unique_external_id_enabled:
                errors.append(_error(key, MSG_INVALID_FIELD, "invalid_field"))
                continue
            if key in TEXT_FIELDS:
                if not isinstance(value, str):
                    errors.append(_error(key, MSG_STRING, "datatype_mismatch"))
                elif len(value) > MAX_TEXT:
                    errors.append(
                        _error(
                            key,
                            f"Has {len(value)} characters, it can have maximum of {MAX_TEXT} characters",
                            "invalid_value",
                        )
                    )
                elif key == "name" and not value.strip():
                    if creating:
                        errors.append(_error("name", "It should not be blank", "missing_field"))
                    else:
                        errors.append(_error("name", "It should not be blank", "invalid_value"))
                elif key == "email" and value.strip() and not _plausible_email(value):
                    errors.append(_error(key, MSG_EMAIL, "invalid_value"))
            elif key in OTHER_STRING_FIELDS:
                if not isinstance(value, str):
                    errors.append(_error(key, MSG_STRING, "datatype_mismatch"))
            elif key == "tags":
                if not (
                    isinstance(value, list)
                    and all(isinstance(t, str) and len(t) <= MAX_TAG and "," not in t for t in value)
                ):
                    errors.append(
                        _error(
                            "tags",
                            f"It should be an array of strings, each at most {MAX_TAG} characters and without commas",
                            "invalid_value",
                        )
                    )
            elif key == "company_id":
                if not _is_int(value) or value <= 0:
                    errors.append(_error(key, "It should be a/an Positive Integer", "datatype_mismatch"))
                elif not self._company_exists(value):
                    errors.append(_error(key, MSG_NO_COMPANY, "absent_in_db"))
            elif key == "custom_fields":
                if not isinstance(value, dict):
                    errors.append(_error(key, "It should be a/an key/value pair", "datatype_mismatch"))
                    continue
                for cf_key, cf_value in value.items():
                    if cf_key not in self.custom_fields:
                        errors.append(_error(cf_key, MSG_INVALID_FIELD, "invalid_field"))
                        continue
                    cf_error = self._custom_value_error(cf_key, cf_value)
                    if cf_error is not None:
                        errors.append(cf_error)
            elif key == "other_emails":
                if not isinstance(value, list):
                    errors.append(_error(key, "It should be a/an Array", "datatype_mismatch"))
                elif not all(isinstance(e, str) and _plausible_email(e) and len(e) <= MAX_TEXT for e in value):
                    errors.append(_error(key, MSG_EMAIL, "invalid_value"))
            elif key == "view_all_tickets":
                if not isinstance(value, bool):
                    errors.append(_error(key, "It should be a/an Boolean", "datatype_mismatch"))
            elif key == "other_companies":
                if not isinstance(value, list) or not all(
                    isinstance(c, dict) and _is_int(c.get("company_id")) and c["company_id"] > 0 for c in value
                ):
                    errors.append(_error(key, "It should be a/an Array of company_id objects", "datatype_mismatch"))
                elif not all(self._company_exists(c["company_id"]) for c in value):
                    errors.append(_error(key, MSG_NO_COMPANY, "absent_in_db"))
        if creating:
            if "name" not in data:
                errors.append(_error("name", "Mandatory attribute missing", "missing_field"))
            has_identifier = any(
                isinstance(data.get(f), str)
                and data[f].strip()
                and (f != "unique_external_id" or self.unique_external_id_enabled)
                for f in IDENTIFIER_FIELDS
            )
            if not has_identifier:
                errors.append(_error("email", MSG_IDENTIFIER, "missing_field"))
        return errors

    def _custom_value_error(self, name: str, value: Any) -> dict | None:
        """Freshdesk's error for a value of the declared custom field ``name``; None when it fits the field's type."""
        if value is None:
            return _error(name, "It should not be null", "datatype_mismatch")
        field_type = self._custom_field_type(name)
        if field_type == "custom_number":
            return None if _is_int(value) else _error(name, "It should be a/an Integer", "datatype_mismatch")
        if field_type == "custom_checkbox":
            return None if isinstance(value, bool) else _error(name, "It should be a/an Boolean", "datatype_mismatch")
        if field_type == "custom_date":
            return None if _is_date(value) else _error(name, MSG_DATE, "invalid_value")
        if not isinstance(value, str):
            return _error(name, MSG_STRING, "datatype_mismatch")
        if field_type != "custom_paragraph" and len(value) > MAX_TEXT:
            return _error(
                name, f"Has {len(value)} characters, it can have maximum of {MAX_TEXT} characters", "invalid_value"
            )
        if field_type == "custom_dropdown" and value not in self.custom_field_choices[name]:
            allowed = ",".join(self.custom_field_choices[name])
            return _error(name, f"It should be one of these values: '{allowed}'", "invalid_value")
        return None

    def _company_exists(self, company_id: int) -> bool:
        return company_id in self.company_ids or company_id in self._companies

    @staticmethod
    def _index_entries(contact: dict) -> list[tuple[str, str]]:
        entries = []
        if contact["email"]:
            entries.append(("email", contact["email"].lower()))
        entries.extend(("email", e.lower()) for e in contact["other_emails"])
        for field in ("unique_external_id", "twitter_id"):
            if contact[field]:
                entries.append((field, contact[field]))
        return entries

    def _index_add(self, contact: dict) -> None:
        for field, key in self._index_entries(contact):
            self._index[field].setdefault(key, set()).add(contact["id"])

    def _index_remove(self, contact: dict) -> None:
        for field, key in self._index_entries(contact):
            ids = self._index[field].get(key)
            if ids is not None:
                ids.discard(contact["id"])
                if not ids:
                    del self._index[field][key]

    def _duplicates(self, data: dict, exclude_id: int | None) -> list[dict]:
        """One duplicate_value error per unique field that another contact (deleted too) holds."""
        errors: list[dict] = []
        for field in UNIQUE_FIELDS:
            value = data.get(field)
            if not isinstance(value, str) or not value.strip():
                continue
            key = value.lower() if field == "email" else value
            holders = self._index[field].get(key, set()) - {exclude_id}
            if holders:
                errors.append(
                    _error(field, MSG_DUPLICATE, "duplicate_value", additional_info={"user_id": min(holders)})
                )
        return errors

    @staticmethod
    def _normalise(data: dict) -> dict:
        data = copy.deepcopy(data)
        if isinstance(data.get("email"), str):
            data["email"] = data["email"].lower()
        if isinstance(data.get("other_emails"), list):
            data["other_emails"] = [e.lower() for e in data["other_emails"]]
        return data

    def _create_contact(self, body: bytes) -> tuple[int, Any, dict]:
        data, errors = self._parse_object(body)
        if data is None:
            return 400, _validation_failed(errors), {}
        errors = self._validate(data, creating=True)
        if errors:
            return 400, _validation_failed(errors), {}
        data = self._normalise(data)
        errors = self._duplicates(data, exclude_id=None)
        if errors:
            return 409, _validation_failed(errors), {}
        contact = self._insert_contact(data)
        return 201, copy.deepcopy(contact), {"Location": f"/api/v2/contacts/{contact['id']}"}

    def _insert_contact(self, data: dict) -> dict:
        """Store a validated, normalised, duplicate-free contact under the next id and index it."""
        contact_id = self._next_id
        self._next_id += 1
        stamp = _now_iso()
        custom = {key: None for key in self.custom_fields}
        custom.update(data.get("custom_fields") or {})
        contact = {
            "id": contact_id,
            "name": data.get("name"),
            "email": data.get("email"),
            "phone": data.get("phone"),
            "mobile": data.get("mobile"),
            "twitter_id": data.get("twitter_id"),
            "unique_external_id": data.get("unique_external_id"),
            "other_emails": data.get("other_emails", []),
            "job_title": data.get("job_title"),
            "company_id": data.get("company_id"),
            "other_companies": data.get("other_companies", []),
            "view_all_tickets": data.get("view_all_tickets", False),
            "address": data.get("address"),
            "description": data.get("description"),
            "language": data.get("language", "en"),
            "time_zone": data.get("time_zone", "Eastern Time (US & Canada)"),
            "tags": data.get("tags", []),
            "custom_fields": custom,
            "active": False,
            "deleted": False,
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._contacts[contact_id] = contact
        self._index_add(contact)
        return contact

    def _update_contact(self, contact_id: int, body: bytes) -> tuple[int, Any, dict]:
        contact = self._contacts.get(contact_id)
        if contact is None:
            return 404, _EMPTY, {}
        if contact["deleted"] or contact_id in self._blocked:
            state = "deleted" if contact["deleted"] else "blocked"
            return (
                405,
                {
                    "message": f"PUT method is not allowed on a {state} contact. "
                    "It should be one of these method(s): GET"
                },
                {"Allow": "GET"},
            )
        data, errors = self._parse_object(body)
        if data is None:
            return 400, _validation_failed(errors), {}
        errors = self._validate(data, creating=False)
        if errors:
            return 400, _validation_failed(errors), {}
        data = self._normalise(data)
        errors = self._duplicates(data, exclude_id=contact_id)
        if errors:
            return 409, _validation_failed(errors), {}
        self._index_remove(contact)
        for key, value in data.items():
            if key == "custom_fields":
                contact["custom_fields"].update(value)
            else:
                contact[key] = value
        self._index_add(contact)
        contact["updated_at"] = _now_iso(contact["updated_at"])
        return 200, copy.deepcopy(contact), {}

    def _delete_contact(self, contact_id: int) -> tuple[int, Any, dict]:
        contact = self._contacts.get(contact_id)
        if contact is None:
            return 404, _EMPTY, {}
        if contact["deleted"]:
            return (
                405,
                {
                    "message": "DELETE method is not allowed on a deleted contact. "
                    "It should be one of these method(s): GET"
                },
                {"Allow": "GET"},
            )
        contact["deleted"] = True
        contact["updated_at"] = _now_iso(contact["updated_at"])
        return 204, _EMPTY, {}

    def _list_contacts(self, query: str) -> tuple[int, Any, dict]:
        """Contacts that are not deleted, filtered by exact email (any of a contact's, ignoring case), phone,
        mobile, unique_external_id, company_id and updated_since, all given filters applying."""
        params = parse_qs(query, keep_blank_values=True)
        allowed = {"email", "phone", "mobile", "unique_external_id", "company_id", "updated_since", "page", "per_page"}
        if not self.unique_external_id_enabled:
            allowed.discard("unique_external_id")
        unknown = [k for k in params if k not in allowed]
        if unknown:
            return 400, _validation_failed([_error(k, MSG_INVALID_FIELD, "invalid_field") for k in unknown]), {}
        since = None
        if "updated_since" in params:
            since = self._parse_since(params["updated_since"][-1])
            if since is None:
                return (
                    400,
                    _validation_failed(
                        [_error("updated_since", "It should be in the 'yyyy-mm-ddThh:mm:ssZ' format", "invalid_value")]
                    ),
                    {},
                )
        if "email" in params:
            ids = self._index["email"].get(params["email"][-1].strip().lower(), set())
            found = [self._contacts[i] for i in sorted(ids) if not self._contacts[i]["deleted"]]
        else:
            found = [c for _, c in sorted(self._contacts.items()) if not c["deleted"]]
        for field in ("phone", "mobile", "unique_external_id"):
            if field in params:
                found = [c for c in found if c[field] == params[field][-1]]
        if "company_id" in params:
            found = [c for c in found if str(c["company_id"]) == params["company_id"][-1]]
        if since is not None:
            found = [c for c in found if self._parse_since(c["updated_at"]) >= since]
        if "page" in params or "per_page" in params:
            try:
                page = int(params.get("page", ["1"])[-1])
                per_page = int(params.get("per_page", ["30"])[-1])
            except ValueError:
                return (
                    400,
                    _validation_failed([_error("page", "It should be a/an Positive Integer", "datatype_mismatch")]),
                    {},
                )
            if page < 1 or not 1 <= per_page <= 100:
                return (
                    400,
                    _validation_failed(
                        [
                            _error(
                                "per_page", "It should be a Positive Integer less than or equal to 100", "invalid_value"
                            )
                        ]
                    ),
                    {},
                )
            found = found[(page - 1) * per_page : page * per_page]
        return 200, copy.deepcopy(found), {}

    @staticmethod
    def _parse_since(value: str) -> datetime | None:
        """A date or UTC timestamp (``Z`` or an offset) as a naive UTC datetime; None if it is neither."""
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed

    def _contact_fields(self) -> list[dict]:
        defaults = [
            ("name", "Full name"),
            ("job_title", "Title"),
            ("email", "Email"),
            ("phone", "Work phone"),
            ("mobile", "Mobile phone"),
            ("twitter_id", "Twitter"),
            ("company_name", "Company"),
            ("address", "Address"),
            ("time_zone", "Time zone"),
            ("language", "Language"),
            ("tag_names", "Tags"),
            ("description", "About"),
        ]
        if self.unique_external_id_enabled:
            defaults.append(("unique_external_id", "Unique external ID"))
        fields = []
        for position, (name, label) in enumerate(defaults, start=1):
            fields.append(
                {
                    "id": position,
                    "name": name,
                    "label": label,
                    "position": position,
                    "default": True,
                    "type": f"default_{name}",
                    "required_for_agents": name == "name",
                }
            )
        for offset, name in enumerate(self.custom_fields, start=len(fields) + 1):
            field = {
                "id": offset,
                "name": name,
                "label": name,
                "position": offset,
                "default": False,
                "type": self._custom_field_type(name),
                "required_for_agents": name in self.required_custom_fields,
            }
            if name in self.custom_field_choices:
                field["choices"] = list(self.custom_field_choices[name])
            fields.append(field)
        return fields

    # -- companies --------------------------------------------------------------------------
    def _validate_company(self, data: dict, *, creating: bool) -> list[dict]:
        errors: list[dict] = []
        for key, value in data.items():
            if key not in COMPANY_FIELDS:
                errors.append(_error(key, MSG_INVALID_FIELD, "invalid_field"))
            elif value is None:
                errors.append(_error(key, "It should not be null", "datatype_mismatch"))
            elif key == "domains":
                if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
                    errors.append(_error(key, "It should be a/an Array of Strings", "datatype_mismatch"))
            elif key == "custom_fields":
                # no company field schema here: any keys are taken
                if not isinstance(value, dict):
                    errors.append(_error(key, "It should be a/an key/value pair", "datatype_mismatch"))
            elif not isinstance(value, str):
                errors.append(_error(key, MSG_STRING, "datatype_mismatch"))
            elif key == "name":
                if not value.strip():
                    errors.append(
                        _error(key, "It should not be blank", "missing_field" if creating else "invalid_value")
                    )
                elif len(value) > MAX_TEXT:
                    errors.append(
                        _error(
                            key,
                            f"Has {len(value)} characters, it can have maximum of {MAX_TEXT} characters",
                            "invalid_value",
                        )
                    )
        if creating and "name" not in data:
            errors.append(_error("name", MSG_MISSING, "missing_field"))
        return errors

    @staticmethod
    def _normalise_company(data: dict) -> dict:
        data = copy.deepcopy(data)
        if isinstance(data.get("domains"), list):
            data["domains"] = list(dict.fromkeys(d.lower() for d in data["domains"]))
        return data

    def _company_name_taken(self, name: str, exclude_id: int | None) -> bool:
        wanted = name.strip().lower()
        return any(
            company["name"].strip().lower() == wanted
            for company_id, company in self._companies.items()
            if company_id != exclude_id
        )

    def _create_company(self, body: bytes) -> tuple[int, Any, dict]:
        data, errors = self._parse_object(body)
        if data is None:
            return 400, _validation_failed(errors), {}
        errors = self._validate_company(data, creating=True)
        if errors:
            return 400, _validation_failed(errors), {}
        data = self._normalise_company(data)
        if self._company_name_taken(data["name"], exclude_id=None):
            # unlike a duplicate contact's, this error does not name the company that holds the name
            return 409, _validation_failed([_error("name", MSG_DUPLICATE, "duplicate_value")]), {}
        company = self._insert_company(data)
        return 201, copy.deepcopy(company), {"Location": f"/api/v2/companies/{company['id']}"}

    def _insert_company(self, data: dict) -> dict:
        """Store a validated, normalised company with a free name under the next id."""
        company_id = self._next_company_id
        self._next_company_id += 1
        stamp = _now_iso()
        company = {
            "id": company_id,
            "name": data["name"],
            "domains": data.get("domains", []),
            **{key: data.get(key) for key in COMPANY_STRING_FIELDS},
            "custom_fields": data.get("custom_fields", {}),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._companies[company_id] = company
        return company

    def _update_company(self, company_id: int, body: bytes) -> tuple[int, Any, dict]:
        company = self._companies.get(company_id)
        if company is None:
            return 404, _EMPTY, {}
        data, errors = self._parse_object(body)
        if data is None:
            return 400, _validation_failed(errors), {}
        errors = self._validate_company(data, creating=False)
        if errors:
            return 400, _validation_failed(errors), {}
        data = self._normalise_company(data)
        if "name" in data and self._company_name_taken(data["name"], exclude_id=company_id):
            return 409, _validation_failed([_error("name", MSG_DUPLICATE, "duplicate_value")]), {}
        for key, value in data.items():
            if key == "custom_fields":
                company["custom_fields"].update(value)
            else:
                company[key] = value  # domains included: an array is replaced, not merged
        company["updated_at"] = _now_iso(company["updated_at"])
        return 200, copy.deepcopy(company), {}

    def _delete_company(self, company_id: int) -> tuple[int, Any, dict]:
        """Gone for good; its contacts stay, no longer linked to it."""
        if self._companies.pop(company_id, None) is None:
            return 404, _EMPTY, {}
        for contact in self._contacts.values():
            if contact["company_id"] == company_id:
                contact["company_id"] = None
            contact["other_companies"] = [c for c in contact["other_companies"] if c.get("company_id") != company_id]
        return 204, _EMPTY, {}

    def _autocomplete_companies(self, query: str) -> tuple[int, Any, dict]:
        """Companies whose name, or a word in it, starts with ``name``, ignoring case: ids and names only."""
        params = parse_qs(query, keep_blank_values=True)
        unknown = [k for k in params if k != "name"]
        if unknown:
            return 400, _validation_failed([_error(k, MSG_INVALID_FIELD, "invalid_field") for k in unknown]), {}
        if "name" not in params:
            return 400, _validation_failed([_error("name", MSG_MISSING, "missing_field")]), {}
        term = params["name"][-1].strip().lower()
        if not term:
            return 400, _validation_failed([_error("name", "It should not be blank", "missing_field")]), {}
        found = [
            {"id": company_id, "name": company["name"]}
            for company_id, company in sorted(self._companies.items())
            if _autocompletes(company["name"], term)
        ]
        return 200, {"companies": found}, {}

    # -- admin ------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, query: str, body: bytes) -> tuple[int, Any, dict]:
        route = path[len("/_sandbox") :].strip("/")
        if route == "contacts" and method == "GET":
            params = parse_qs(query)
            include = params.get("include_deleted", ["false"])[-1].lower() in ("1", "true", "yes")
            return 200, self.contacts(include_deleted=include), {}
        if route == "contacts" and method == "POST":
            return self._admin_seed(body)
        if route == "companies" and method == "GET":
            return 200, self.companies(), {}
        if route == "companies" and method == "POST":
            return self._admin_seed_company(body)
        if route == "requests" and method == "GET":
            return 200, self.requests(), {}
        if route == "stats" and method == "GET":
            return 200, self.stats(), {}
        if route == "reset" and method == "POST":
            self.reset()
            return 204, _EMPTY, {}
        if route == "faults" and method == "POST":
            return self._admin_faults(body)
        if route in ("contacts", "companies"):
            return self._method_not_allowed(method, "GET, POST")
        if route in ("requests", "stats"):
            return self._method_not_allowed(method, "GET")
        if route in ("reset", "faults"):
            return self._method_not_allowed(method, "POST")
        return 404, _EMPTY, {}

    def _admin_seed(self, body: bytes) -> tuple[int, Any, dict]:
        data, errors = self._parse_object(body)
        if data is None:
            return 400, _validation_failed(errors), {}
        flags = {}
        for flag in ("deleted", "blocked"):
            if flag in data:
                if not isinstance(data[flag], bool):
                    return 400, _validation_failed([_error(flag, "It should be a/an Boolean", "datatype_mismatch")]), {}
                flags[flag] = data.pop(flag)
        try:
            contact = self.seed_contact(**flags, **data)
        except ValueError as exc:
            return 400, {"description": "Seeding failed", "message": str(exc)}, {}
        return 201, contact, {}

    def _admin_seed_company(self, body: bytes) -> tuple[int, Any, dict]:
        data, errors = self._parse_object(body)
        if data is None:
            return 400, _validation_failed(errors), {}
        try:
            company = self.seed_company(**data)
        except ValueError as exc:
            return 400, {"description": "Seeding failed", "message": str(exc)}, {}
        return 201, company, {}

    def _admin_faults(self, body: bytes) -> tuple[int, Any, dict]:
        if body.strip():
            data, errors = self._parse_object(body)
            if data is None:
                return 400, _validation_failed(errors), {}
        else:
            data = {}
        known = {"fail_status", "count", "delay", "drop", "mode", "retry_after", "clear", "body"}
        unknown = sorted(set(data) - known)
        if unknown:
            return 400, _validation_failed([_error(k, MSG_INVALID_FIELD, "invalid_field") for k in unknown]), {}
        if "mode" in data and data["mode"] not in MODES:
            return 400, _validation_failed([_error("mode", f"It should be one of {list(MODES)}", "invalid_value")]), {}
        try:
            if data.get("clear"):
                self.clear_faults()
            if data.get("fail_status") is not None:
                self.fail_next(
                    int(data["fail_status"]),
                    count=data.get("count", 1),
                    body=data.get("body"),
                    retry_after=data.get("retry_after"),
                )
            if data.get("delay") is not None:
                self.delay(float(data["delay"]), count=data.get("count"))
            if "drop" in data:
                drop = data["drop"]
                if drop is True:
                    drop = 1
                if drop:
                    self.drop_next(int(drop))
            if "mode" in data:
                self.set_mode(data["mode"])
        except (TypeError, ValueError) as exc:
            return 400, _validation_failed([_error("", str(exc), "invalid_value")]), {}
        return 204, _EMPTY, {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m signal_freshdesk_dev.sandbox",
        description="Local stand-in for Freshdesk's contacts and companies API v2.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--api-key", default="sandbox-api-key")
    parser.add_argument("--rate-limit", type=int, default=400, help="calls per window (default 400)")
    parser.add_argument("--window", type=float, default=60.0, help="window length in seconds (default 60)")
    parser.add_argument(
        "--list-rate-limit", type=int, default=None, help="contacts-list calls per list window (default: no sub-limit)"
    )
    parser.add_argument(
        "--list-window", type=float, default=60.0, help="list sub-limit window length in seconds (default 60)"
    )
    parser.add_argument(
        "--custom-field",
        action="append",
        dest="custom_fields",
        help="a custom contact field name (repeatable; default signup_method)",
    )
    parser.add_argument(
        "--dropdown",
        action="append",
        default=[],
        metavar="NAME=CHOICE,CHOICE",
        help="a dropdown custom contact field and its choices (repeatable)",
    )
    parser.add_argument(
        "--custom-field-type",
        action="append",
        default=[],
        metavar="NAME=TYPE",
        help=f"a typed custom contact field, TYPE one of {', '.join(CUSTOM_FIELD_TYPES)} (repeatable)",
    )
    parser.add_argument(
        "--required-custom-field",
        action="append",
        default=[],
        metavar="NAME",
        help="a custom contact field listed as required for agents (repeatable)",
    )
    parser.add_argument(
        "--no-unique-external-id",
        action="store_true",
        help="behave like an account without the unique external id feature",
    )
    parser.add_argument(
        "--company-id",
        action="append",
        type=int,
        dest="company_ids",
        help="an existing company the sandbox holds no record of, by id (repeatable; default 1, 2, 3)",
    )
    args = parser.parse_args(argv)
    dropdowns = {}
    for spec in args.dropdown:
        name, sep, choices = spec.partition("=")
        if not sep or not name or not choices:
            parser.error(f"--dropdown expects NAME=CHOICE,CHOICE, got {spec!r}")
        dropdowns[name] = choices.split(",")
    field_types = {}
    for spec in args.custom_field_type:
        name, sep, field_type = spec.partition("=")
        if not sep or not name or field_type not in CUSTOM_FIELD_TYPES:
            parser.error(f"--custom-field-type expects NAME=TYPE with a known TYPE, got {spec!r}")
        field_types[name] = field_type
    try:
        sandbox = FreshdeskSandbox(
            args.api_key,
            host=args.host,
            port=args.port,
            rate_limit=args.rate_limit,
            window_seconds=args.window,
            custom_fields=args.custom_fields if args.custom_fields else ("signup_method",),
            unique_external_id_enabled=not args.no_unique_external_id,
            company_ids=args.company_ids if args.company_ids else (1, 2, 3),
            custom_field_choices=dropdowns,
            list_rate_limit=args.list_rate_limit,
            list_window_seconds=args.list_window,
            custom_field_types=field_types,
            required_custom_fields=args.required_custom_field,
        )
    except ValueError as exc:  # fields that contradict each other
        parser.error(str(exc))
    sandbox.start()
    print(f"Freshdesk sandbox listening on {sandbox.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
