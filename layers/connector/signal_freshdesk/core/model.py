"""The plain data the core passes around: what an event asks for, what Freshdesk answered, how it ended."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Operation(StrEnum):
    """What an event asks of Freshdesk (the mapping's actions: create_or_update, create, update)."""

    IDENTIFY = "identify"  # create_or_update: create; on 409 update the existing contact
    SIGN_UP = "sign_up"  # create: a 409 is final success
    UPDATE = "update"  # update only: a person without a contact gets none
    COMPANY = "company"  # a group event: create the company, or update it with domains merged


class DropReason(StrEnum):
    PAGE_VIEW = "page_view"
    UNSUPPORTED_EVENT = "unsupported_event"
    CONSENT_DENIED = "consent_denied"
    CONSENT_MISSING = "consent_missing"
    ANONYMOUS = "anonymous"
    MISSING_NAME = "missing_name"
    NO_CONTACT = "no_contact"  # an update-only event for a person Freshdesk has no contact for
    NO_COMPANY_NAME = "no_company_name"  # a group event without a usable company name


class Consent(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    MISSING = "missing"


@dataclass(frozen=True)
class PlannedContact:
    """An event the preset accepted: the operation and the contact body to send.

    `contact` is the body to create; `update` the body a PUT may send to an existing contact (only what
    the event says: no derived name, no tags). `consent` is what the event said (None when CONSENT_MODE is
    off), `timestamp` its `timestamp` as given ("" when there is none), and `person` whose event it is:
    the user id, else the email, else the E.164 phone, prefixed with its kind (`uid:`, `email:`, `phone:`).
    """

    operation: Operation
    contact: dict[str, Any]
    message_id: str = ""
    update: dict[str, Any] = field(default_factory=dict)
    consent: Consent | None = None
    timestamp: str = ""
    person: str = ""
    if_empty: frozenset[str] = frozenset()  # update-body keys sent only where the contact has no value
    company: CompanyRef | None = None  # the company the event names, to link once it is found or made


@dataclass(frozen=True)
class CompanyRef:
    """A company a contact event names: by the group it belongs to, or by name (either may be absent)."""

    name: str | None = None
    group_id: str | None = None


@dataclass(frozen=True)
class PlannedCompany:
    """A group event the mapping accepted: the company to create, or to update with domains merged.

    `person` is `group:<groupId>` (else `company:<name>`): the lane and order key, like a contact's."""

    company: dict[str, Any]
    message_id: str = ""
    group_id: str | None = None
    update: dict[str, Any] = field(default_factory=dict)
    timestamp: str = ""
    person: str = ""


@dataclass(frozen=True)
class Drop:
    """An event the preset does not send to Freshdesk, and why."""

    reason: DropReason
    message_id: str = ""


class Outcome(StrEnum):
    DELIVERED = "delivered"
    UPDATED = "updated"
    CONFLICT = "conflict"
    QUEUED = "queued"
    REJECTED = "rejected"
    DROPPED = "dropped"
    # Final, and no Freshdesk data changed beyond what each says:
    UNCHANGED = "unchanged"  # the event says nothing the contact does not already hold: no call
    STALE = "stale"  # older than an event already applied to this person: not sent
    CONSENT_WITHDRAWN = "consent_withdrawn"  # our marketing tag removed, nothing else changed
    DELETED_IN_FRESHDESK = "deleted_in_freshdesk"  # a person deleted the contact: respected, not re-created
    IDENTITY_MISMATCH = "identity_mismatch"  # updated, but the contact's other unique_external_id was kept
    # Not a terminal state of an accepted event: the webhook could not secure it and answers 503.
    FAILED = "failed"


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange with Freshdesk. `status` is None when no answer came (timeout, connection error)."""

    status: int | None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = ""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class Result:
    """How one event ended (or where it stands): what the webhook answers, logs and records."""

    message_id: str
    outcome: Outcome
    status: int | None = None
    reason: str = ""
    contact_id: int | None = None
    company_id: int | None = None  # a group event's company
    freshdesk_body: Any = None
    retry_after: int | None = None
    error: str = ""
    dropped_fields: tuple[str, ...] = ()
    warning: str = ""
    attempted: bool = False  # whether Freshdesk was called: only then does an attempt count
    duplicate: bool = False  # answered from the idempotency record, without calling Freshdesk
