"""In-memory fakes for every port of the core: fast, deterministic flow tests with no sockets and no moto."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from signal_freshdesk.core.credentials import CredentialStore
from signal_freshdesk.core.errors import QueueError, SecretUnavailable, StoreUnavailable
from signal_freshdesk.core.identity import Known
from signal_freshdesk.core.model import Answer
from signal_freshdesk.core.pacing import RateBudget
from signal_freshdesk.core.ports import DONE, IN_PROGRESS, NEW, Claim, Runtime
from signal_freshdesk.core.settings import Settings
from signal_freshdesk.core.timing import Deadline

WEBHOOK_TOKEN = "fake-webhook-token-0123456789"
SECRET = {"domain": "acme", "api_key": "key-1", "webhook_token": WEBHOOK_TOKEN}


class FakeClock:
    """Time stands still until something sleeps or a test advances it."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.mono = 1000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@dataclass
class Call:
    method: str
    api_key: str
    contact_id: int | None = None
    body: dict[str, Any] | None = None
    phone: str | None = None


class FakeFreshdesk:
    """Answers scripted per method (a queue each; the default answer once a queue is empty), every call kept.

    Company calls (`create_company`, `update_company`, `get_company`, `find_companies`) answer by default
    from an in-memory store with the sandbox's rules, less its timestamps; they carry the company id in
    `Call.contact_id`. `contact_fields` answers `contact_field_schema`."""

    COMPANY_METHODS = ("create_company", "update_company", "get_company", "find_companies")
    COMPANY_STRING_FIELDS = ("description", "note", "health_score", "account_tier", "renewal_date", "industry")
    COMPANY_FIELDS = frozenset(("name", "domains", "custom_fields", *COMPANY_STRING_FIELDS))

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.scripts: dict[str, deque[Answer | Callable[[Call], Answer]]] = {
            name: deque() for name in ("create", "update", "get", "find", "contact_fields", *self.COMPANY_METHODS)
        }
        self._lock = threading.Lock()
        self._next_id = 100
        self.companies: dict[int, dict[str, Any]] = {}
        self._next_company_id = 1
        self.contact_field_schema: list[dict[str, Any]] = [
            {
                "id": position,
                "name": name,
                "label": label,
                "default": not field_type.startswith("custom_"),
                "type": field_type,
                "required_for_agents": name == "name",
            }
            for position, (name, label, field_type) in enumerate(
                (
                    ("name", "Full name", "default_name"),
                    ("email", "Email", "default_email"),
                    ("phone", "Work phone", "default_phone"),
                    ("company_name", "Company", "default_company_name"),
                    ("signup_method", "signup_method", "custom_text"),
                ),
                start=1,
            )
        ]

    def script(self, method: str, *answers: Answer | Callable[[Call], Answer]) -> FakeFreshdesk:
        self.scripts[method].extend(answers)
        return self

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def _answer(self, call: Call) -> Answer:
        with self._lock:
            self.calls.append(call)
            queue = self.scripts[call.method]
            scripted = queue.popleft() if queue else None
            if scripted is None:
                if call.method in self.COMPANY_METHODS:
                    return self._company_default(call)
                if call.method == "contact_fields":
                    return Answer(200, [dict(field) for field in self.contact_field_schema])
                self._next_id += 1
                return self._default(call, self._next_id)
        return scripted(call) if callable(scripted) else scripted

    @staticmethod
    def _default(call: Call, new_id: int) -> Answer:
        match call.method:
            case "create":
                return Answer(201, {"id": new_id, **(call.body or {})})
            case "update":
                return Answer(200, {"id": call.contact_id, **(call.body or {})})
            case "get":
                return Answer(200, {"id": call.contact_id, "tags": []})
            case _:
                return Answer(200, [])

    def create_contact(self, creds: Any, contact: dict[str, Any], *, deadline: Deadline | None = None) -> Answer:
        return self._answer(Call("create", creds.api_key, body=dict(contact)))

    def update_contact(
        self, creds: Any, contact_id: int, contact: dict[str, Any], *, deadline: Deadline | None = None
    ) -> Answer:
        return self._answer(Call("update", creds.api_key, contact_id=contact_id, body=dict(contact)))

    def get_contact(self, creds: Any, contact_id: int, *, deadline: Deadline | None = None) -> Answer:
        return self._answer(Call("get", creds.api_key, contact_id=contact_id))

    def find_contacts(self, creds: Any, field: str, value: str, *, deadline: Deadline | None = None) -> Answer:
        return self._answer(Call("find", creds.api_key, phone=value if field == "phone" else None, body={field: value}))

    def contact_fields(self, creds: Any, *, deadline: Deadline | None = None) -> Answer:
        return self._answer(Call("contact_fields", creds.api_key))

    def create_company(self, creds: Any, company: dict[str, Any], *, deadline: Deadline | None = None) -> Answer:
        return self._answer(Call("create_company", creds.api_key, body=dict(company)))

    def update_company(
        self, creds: Any, company_id: int, company: dict[str, Any], *, deadline: Deadline | None = None
    ) -> Answer:
        return self._answer(Call("update_company", creds.api_key, contact_id=company_id, body=dict(company)))

    def get_company(self, creds: Any, company_id: int, *, deadline: Deadline | None = None) -> Answer:
        return self._answer(Call("get_company", creds.api_key, contact_id=company_id))

    def find_companies(self, creds: Any, name: str, *, deadline: Deadline | None = None) -> Answer:
        return self._answer(Call("find_companies", creds.api_key, body={"name": name}))

    def seed_company(self, **fields: Any) -> dict[str, Any]:
        """Store a company as an agent would have, without a call; returns it. ValueError where Freshdesk says no."""
        with self._lock:
            answer = self._store_company(fields)
        if answer.status != 201:
            raise ValueError(f"Freshdesk would refuse this company: {answer.body}")
        return dict(answer.body)

    # -- the company store: the sandbox's rules ------------------------------------------------------
    def _company_default(self, call: Call) -> Answer:
        body = call.body or {}
        match call.method:
            case "create_company":
                return self._store_company(body)
            case "update_company":
                return self._change_company(call.contact_id, body)
            case "get_company":
                company = self.companies.get(call.contact_id or 0)
                return Answer(404) if company is None else Answer(200, self._copy_company(company))
            case _:
                term = str(body.get("name", "")).strip().lower()
                if not term:
                    return self._invalid([self._company_error("name", "missing_field")])
                found = [
                    {"id": company_id, "name": company["name"]}
                    for company_id, company in sorted(self.companies.items())
                    if self._autocompletes(company["name"], term)
                ]
                return Answer(200, {"companies": found})

    def _store_company(self, body: dict[str, Any]) -> Answer:
        errors = self._company_errors(body, creating=True)
        if errors:
            return self._invalid(errors)
        if self._company_name_taken(body["name"], exclude_id=None):
            return Answer(409, self._duplicate_name())
        company_id = self._next_company_id
        self._next_company_id += 1
        company: dict[str, Any] = {
            "id": company_id,
            "name": body["name"],
            "domains": self._domains(body.get("domains", [])),
            **{key: body.get(key) for key in self.COMPANY_STRING_FIELDS},
            "custom_fields": dict(body.get("custom_fields", {})),
        }
        self.companies[company_id] = company
        return Answer(201, self._copy_company(company))

    def _change_company(self, company_id: int | None, body: dict[str, Any]) -> Answer:
        company = self.companies.get(company_id or 0)
        if company is None:
            return Answer(404)
        errors = self._company_errors(body, creating=False)
        if errors:
            return self._invalid(errors)
        if "name" in body and self._company_name_taken(body["name"], exclude_id=company_id):
            return Answer(409, self._duplicate_name())
        for key, value in body.items():
            if key == "custom_fields":
                company["custom_fields"].update(value)
            else:
                company[key] = self._domains(value) if key == "domains" else value
        return Answer(200, self._copy_company(company))

    def _company_errors(self, body: dict[str, Any], *, creating: bool) -> list[dict[str, str]]:
        errors = []
        for key, value in body.items():
            if key not in self.COMPANY_FIELDS:
                errors.append(self._company_error(key, "invalid_field"))
            elif key == "domains":
                if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
                    errors.append(self._company_error(key, "datatype_mismatch"))
            elif key == "custom_fields":
                if not isinstance(value, dict):
                    errors.append(self._company_error(key, "datatype_mismatch"))
            elif not isinstance(value, str):
                errors.append(self._company_error(key, "datatype_mismatch"))
            elif key == "name" and not value.strip():
                errors.append(self._company_error(key, "missing_field" if creating else "invalid_value"))
            elif key == "name" and len(value) > 255:
                errors.append(self._company_error(key, "invalid_value"))
        if creating and "name" not in body:
            errors.append(self._company_error("name", "missing_field"))
        return errors

    def _company_name_taken(self, name: str, exclude_id: int | None) -> bool:
        wanted = name.strip().lower()
        return any(c["name"].strip().lower() == wanted for i, c in self.companies.items() if i != exclude_id)

    @staticmethod
    def _autocompletes(name: str, term: str) -> bool:
        """Whether `term` (lower-cased) starts the name or one of its words, ignoring case."""
        lowered = name.lower()
        return any(lowered.startswith(term, i) for i in range(len(lowered)) if i == 0 or lowered[i - 1].isspace())

    @staticmethod
    def _domains(domains: list[str]) -> list[str]:
        return list(dict.fromkeys(domain.lower() for domain in domains))

    @staticmethod
    def _copy_company(company: dict[str, Any]) -> dict[str, Any]:
        return {**company, "domains": list(company["domains"]), "custom_fields": dict(company["custom_fields"])}

    @staticmethod
    def _company_error(field: str, code: str) -> dict[str, str]:
        return {"field": field, "message": f"fake: {code}", "code": code}

    @staticmethod
    def _invalid(errors: list[dict[str, str]]) -> Answer:
        return Answer(400, {"description": "Validation failed", "errors": errors})

    @staticmethod
    def _duplicate_name() -> dict[str, Any]:
        return {
            "description": "Validation failed",
            "errors": [{"field": "name", "message": "It should be a unique value", "code": "duplicate_value"}],
        }


class FakeQueues:
    def __init__(self) -> None:
        self.retries: list[tuple[dict[str, Any], int]] = []
        self.parked: list[dict[str, Any]] = []
        self.down = False
        self._lock = threading.Lock()

    def send_retry(self, envelope: dict[str, Any], delay_seconds: int) -> None:
        if self.down:
            raise QueueError("fake: SQS is down")
        with self._lock:
            self.retries.append((envelope, delay_seconds))

    def park(self, envelope: dict[str, Any]) -> None:
        if self.down:
            raise QueueError("fake: SQS is down")
        with self._lock:
            self.parked.append(envelope)


@dataclass
class FakeIdempotencyStore:
    records: dict[str, Claim] = field(default_factory=dict)
    down: bool = False
    completed: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("fake: the table does not answer")

    def claim(self, key: str, hold_seconds: float | None = None) -> Claim:
        self._check()
        if key in self.records:
            return self.records[key]
        self.records[key] = Claim(IN_PROGRESS)
        return Claim(NEW)

    def read(self, key: str) -> Claim | None:
        self._check()
        return self.records.get(key)

    def complete(self, key: str, summary: dict[str, Any]) -> None:
        self._check()
        self.records[key] = Claim(DONE, dict(summary))
        self.completed.append(key)

    def release(self, key: str) -> None:
        self._check()
        self.records.pop(key, None)
        self.released.append(key)


class FakeIdentityMap:
    """The identity map in a dict; `down` makes every call fail as a store that does not answer."""

    def __init__(self) -> None:
        self.entries: dict[str, Known] = {}
        self.claims: set[str] = set()
        self.locks: set[str] = set()
        self.down = False
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise StoreUnavailable("fake: the identity map does not answer")

    def find(self, keys: list[str]) -> Known | None:
        with self._lock:
            self._check("find")
            return next((self.entries[key] for key in keys if key in self.entries), None)

    def remember(self, keys: list[str], known: Known) -> None:
        with self._lock:
            self._check("remember")
            for key in keys:
                self.entries[key] = known
                self.claims.discard(key)
                self.locks.discard(key)

    def forget(self, keys: list[str]) -> None:
        with self._lock:
            self._check("forget")
            for key in keys:
                self.entries.pop(key, None)
                self.claims.discard(key)
                self.locks.discard(key)

    def lock(self, keys: list[str], hold_seconds: float) -> bool:
        with self._lock:
            self._check("lock")
            if any(key in self.locks or key in self.claims for key in keys):
                return False
            self.locks.update(keys)
            return True

    def unlock(self, keys: list[str]) -> None:
        with self._lock:
            self._check("unlock")
            self.locks.difference_update(keys)

    def claim(self, keys: list[str], hold_seconds: float) -> bool:
        with self._lock:
            self._check("claim")
            for key in keys:
                known = self.entries.get(key)
                if (known is not None and known.contact_id is not None) or key in self.claims:
                    return False
            self.claims.update(keys)
            for key in keys:
                self.entries.pop(key, None)  # a hold replaces a "looked up, no contact" entry
            return True


class FakeSecretSource:
    """The secret, with a rotation: each forced read may return the next api key."""

    def __init__(self, secret: dict[str, Any] | None = None) -> None:
        self.secret = dict(SECRET if secret is None else secret)
        self.reads: list[bool] = []
        self.fail_with: Exception | None = None

    def read_secret(self, *, force: bool = False) -> Any:
        self.reads.append(force)
        if self.fail_with is not None:
            raise self.fail_with
        return dict(self.secret)


@dataclass
class Ports:
    """A Runtime made of fakes, and the fakes themselves for the test to script and inspect."""

    runtime: Runtime
    freshdesk: FakeFreshdesk
    queues: FakeQueues
    store: FakeIdempotencyStore
    secret: FakeSecretSource
    clock: FakeClock
    identity_map: FakeIdentityMap

    def deadline(self, seconds: float = 25.0) -> Deadline:
        return Deadline.after(seconds, self.clock.monotonic)


def fake_ports(settings: Settings | None = None, *, idempotency: bool = True, identity_map: bool = False) -> Ports:
    clock = FakeClock()
    people = FakeIdentityMap()
    freshdesk, queues, store, secret = FakeFreshdesk(), FakeQueues(), FakeIdempotencyStore(), FakeSecretSource()
    runtime = Runtime(
        settings=settings or Settings(retry_queue_url="fake-retry", dlq_url="fake-dlq"),
        credentials=CredentialStore(secret, clock=clock.monotonic),
        freshdesk=freshdesk,
        queues=queues,
        idempotency=store if idempotency else None,
        identity_map=people if identity_map else None,
        clock=clock,
        rate=RateBudget(clock=clock.monotonic),
    )
    return Ports(runtime, freshdesk, queues, store, secret, clock, people)


__all__ = [
    "SECRET",
    "WEBHOOK_TOKEN",
    "Call",
    "FakeClock",
    "FakeFreshdesk",
    "FakeIdempotencyStore",
    "FakeQueues",
    "FakeSecretSource",
    "Ports",
    "SecretUnavailable",
    "fake_ports",
]


class SizedQueues(FakeQueues):
    """FakeQueues that refuse, as SQS does, a message whose encoded body and attributes exceed `limit` bytes."""

    def __init__(self, limit: int = 262_144) -> None:
        super().__init__()
        self.limit = limit
        self.sizes: list[int] = []

    def _check_size(self, envelope: dict[str, Any]) -> None:
        from signal_freshdesk.core import envelope as envelope_format

        body = envelope_format.encode(envelope)
        size = envelope_format.message_size(body, envelope_format.message_attributes(envelope))
        self.sizes.append(size)
        if size > self.limit:
            raise QueueError(f"fake: SQS refuses a message of {size} bytes (InvalidParameterValue)")

    def send_retry(self, envelope: dict[str, Any], delay_seconds: int) -> None:
        self._check_size(envelope)
        super().send_retry(envelope, delay_seconds)

    def park(self, envelope: dict[str, Any]) -> None:
        self._check_size(envelope)
        super().park(envelope)
