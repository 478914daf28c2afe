"""What the core needs from outside, as small Protocols; the adapters implement them, tests fake them.

Adapters report failure with the exceptions of `errors` (re-exported here), so the core never sees
boto3's or urllib3's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .credentials import CredentialStore, SecretSource
from .errors import ConfigError, QueueError, SecretUnavailable, StoreUnavailable
from .identity import Known
from .model import Answer
from .pacing import RateBudget
from .settings import Settings
from .timing import Deadline


class Freshdesk(Protocol):
    """Contacts and companies calls. An answer is always returned: status None when none came (timeout,
    connection)."""

    def create_contact(self, creds: Any, contact: dict[str, Any], *, deadline: Deadline | None = None) -> Answer: ...

    def update_contact(
        self, creds: Any, contact_id: int, contact: dict[str, Any], *, deadline: Deadline | None = None
    ) -> Answer: ...

    def get_contact(self, creds: Any, contact_id: int, *, deadline: Deadline | None = None) -> Answer: ...

    def find_contacts(self, creds: Any, field: str, value: str, *, deadline: Deadline | None = None) -> Answer:
        """The contacts list filtered by one identifier (`email`, `phone`, `mobile`, `unique_external_id`).

        These calls count against Freshdesk's lower contacts-list sub-limit: the core makes them only
        where no cheaper path exists."""
        ...

    def contact_fields(self, creds: Any, *, deadline: Deadline | None = None) -> Answer:
        """The account's contact field schema: each field's name, type, choices and whether agents must fill it."""
        ...

    def create_company(self, creds: Any, company: dict[str, Any], *, deadline: Deadline | None = None) -> Answer:
        """A new company; its name must be unique ignoring case (409 duplicate_value, naming no company)."""
        ...

    def update_company(
        self, creds: Any, company_id: int, company: dict[str, Any], *, deadline: Deadline | None = None
    ) -> Answer:
        """Change a company: arrays such as `domains` are replaced, not merged."""
        ...

    def get_company(self, creds: Any, company_id: int, *, deadline: Deadline | None = None) -> Answer:
        """One company by id (404 when there is none)."""
        ...

    def find_companies(self, creds: Any, name: str, *, deadline: Deadline | None = None) -> Answer:
        """Companies whose name, or a word in it, starts with `name`, ignoring case: `{"companies": [{id, name}]}`."""
        ...


class Queues(Protocol):
    """The retry queue and the dead-letter queue. Both raise QueueError when the message was not sent."""

    def send_retry(self, envelope: dict[str, Any], delay_seconds: int) -> None: ...

    def park(self, envelope: dict[str, Any]) -> None: ...


NEW = "new"
IN_PROGRESS = "in_progress"
DONE = "done"


@dataclass(frozen=True)
class Claim:
    """`new`: go ahead. `done`: already handled, with its summary. `in_progress`: another call holds it."""

    state: str
    summary: dict[str, Any] | None = None


class IdempotencyStore(Protocol):
    """One record per Signal messageId. Every method raises StoreUnavailable when the store fails."""

    def claim(self, key: str, hold_seconds: float | None = None) -> Claim: ...

    def read(self, key: str) -> Claim | None: ...

    def complete(self, key: str, summary: dict[str, Any]) -> None: ...

    def release(self, key: str) -> None: ...


class IdentityMap(Protocol):
    """Person -> what is known of their Freshdesk contact, keyed by `identity.IdentityKeys`.

    A cache, never the truth: every method raises StoreUnavailable when the store fails, and the core
    then works without it (more calls, the same result)."""

    def find(self, keys: list[str]) -> Known | None:
        """What is remembered under the first of `keys` that has an entry."""
        ...

    def remember(self, keys: list[str], known: Known) -> None:
        """Store `known` under every one of `keys`."""
        ...

    def forget(self, keys: list[str]) -> None: ...

    def lock(self, keys: list[str], hold_seconds: float) -> bool:
        """Hold a known person (every one of their keys, or none) while one invocation changes their
        contact: False when another holds any of them. `remember` or `unlock` lets go; so does time."""
        ...

    def unlock(self, keys: list[str]) -> None: ...

    def claim(self, keys: list[str], hold_seconds: float) -> bool:
        """Hold a person nobody knows yet while one invocation creates them: False when another holds
        them (or they became known meanwhile). The hold ends by itself after `hold_seconds`."""
        ...


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (envelope ages, idempotency expiry)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (deadlines, pacing)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class Runtime:
    """The settings and ports one container hands to the core, built once by `signal_freshdesk.runtime`."""

    settings: Settings
    credentials: CredentialStore
    freshdesk: Freshdesk
    queues: Queues
    idempotency: IdempotencyStore | None = None
    identity_map: IdentityMap | None = None
    clock: Clock = field(default_factory=SystemClock)
    rate: RateBudget = field(default_factory=RateBudget)


__all__ = [
    "DONE",
    "IN_PROGRESS",
    "NEW",
    "Claim",
    "Clock",
    "ConfigError",
    "Freshdesk",
    "IdempotencyStore",
    "QueueError",
    "Queues",
    "Runtime",
    "SecretSource",
    "SecretUnavailable",
    "StoreUnavailable",
    "SystemClock",
]
