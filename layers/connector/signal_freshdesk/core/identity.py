"""Who a person is, without saying it: the identity map's keys, marks and digests, and event order.

The map (a port: `ports.IdentityMap`) remembers, per person, their Freshdesk contact id, the newest
event applied, whether the contact carries our tag, a mark of its `unique_external_id` and a digest
of what was last sent. None of it holds personal data in the clear: every identifier becomes an HMAC
with a key from the connector's secret, and so does every value the map compares.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Which of the contact's fields identify a person, most specific first (docs/behaviour.md: user id,
# else email, else phone).
IDENTIFIER_FIELDS = ("unique_external_id", "email", "phone")
_KEY_PREFIX = {"unique_external_id": "uid", "email": "email", "phone": "phone"}


@dataclass(frozen=True)
class Known:
    """What the map remembers of a person. `contact_id` None: looked up, and Freshdesk has no contact."""

    contact_id: int | None
    newest: str = ""  # the timestamp of the newest event applied ("" none known)
    has_tag: bool | None = None  # whether the contact carries our consent tag (None: not known)
    external_id: str | None = None  # mark of the contact's unique_external_id ("" it has none; None: not known)
    digest: str = ""  # digest of the fields last sent ("" none)
    deleted: bool = False  # a person deleted the contact in Freshdesk
    # Mapped fields (`mobile`, `custom_fields.plan`) the contact is known to hold a value in: an `if_empty`
    # rule leaves them alone without reading the contact first.
    filled: tuple[str, ...] = ()  # sorted


class IdentityKeys:
    """HMACs with the connector's identity key: the map's keys, value marks and digests."""

    def __init__(self, secret_key: bytes) -> None:
        self._key = secret_key

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def keys_for(self, contact: Mapping[str, Any]) -> list[str]:
        """One key per identifier that names this person alone, most specific first.

        Freshdesk holds a user id or an email for one contact only, but any number of contacts may share
        a phone (a family, a switchboard): the phone identifies a person only when nothing else does.
        """
        keys = []
        for name in person_identifiers(contact):
            value = contact.get(name)
            if isinstance(value, str) and value:
                normalised = value.lower() if name == "email" else value
                keys.append(self._mac(f"{_KEY_PREFIX[name]}:{normalised}"))
        return keys

    def company_keys(self, group_id: str | None, name: str | None) -> list[str]:
        """A company's keys: its Signal group id, and its name ignoring case (Freshdesk's unique key)."""
        keys = [self._mac(f"group:{group_id}")] if group_id else []
        return keys + ([self._mac(f"company:{name.casefold()}")] if name else [])

    def mark(self, value: str | None) -> str:
        """A comparable stand-in for a value ("" for none)."""
        return self._mac(f"value:{value}") if value else ""

    def digest(self, body: Mapping[str, Any]) -> str:
        """A digest of a contact body, independent of key order."""
        return self._mac("body:" + json.dumps(body, sort_keys=True, separators=(",", ":"), default=str))


def person_identifiers(contact: Mapping[str, Any]) -> tuple[str, ...]:
    """The contact fields that tell who the person is: user id and email, else the phone."""
    unique = tuple(
        name for name in ("unique_external_id", "email") if isinstance(contact.get(name), str) and contact[name]
    )
    if unique:
        return unique
    return ("phone",) if isinstance(contact.get("phone"), str) and contact["phone"] else ()


def identity_key_from_secret(webhook_token: str, identity_key: str = "") -> bytes:
    """The map's HMAC key: the secret's `identity_key` when set, else derived from the webhook token.

    Changing it only makes the map forget everyone (one more lookup per person): it is a cache.
    """
    source = identity_key or webhook_token
    return hashlib.sha256(b"signal-freshdesk identity map\x00" + source.encode("utf-8")).digest()


def parse_timestamp(value: str) -> datetime | None:
    """An event's ISO 8601 timestamp as an aware datetime, or None when it cannot be read."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_older(timestamp: str, newest: str) -> bool:
    """Whether an event at `timestamp` is older than the newest one applied. Unreadable: never older."""
    event, known = parse_timestamp(timestamp), parse_timestamp(newest)
    return event is not None and known is not None and event < known


def newer_of(timestamp: str, newest: str) -> str:
    """The newer of two timestamps, keeping whichever can be read."""
    event, known = parse_timestamp(timestamp), parse_timestamp(newest)
    if event is None:
        return newest
    if known is None or event >= known:
        return timestamp
    return newest
