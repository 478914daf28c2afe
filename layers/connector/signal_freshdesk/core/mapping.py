"""The Default preset: which Signal events reach Freshdesk, and the contact each one becomes.

Pure functions over plain data (dicts in, dataclasses out): no AWS, no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import phonenumbers

from .model import Consent, Drop, DropReason, Operation, PlannedContact

MAX_TEXT = 255
CONSENT_TAG = "marketing-consent"
_EMAIL = re.compile(r"^[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+$")
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME_SEPARATORS = re.compile(r"[\s_-]+")


def normalise_event_name(name: object) -> str:
    """`Signed Up`, `signed_up` and `signed-up` all become `signed_up`."""
    if not isinstance(name, str):
        return ""
    return _NAME_SEPARATORS.sub("_", name.strip().lower()).strip("_")


def message_id_of(event: Mapping[str, Any]) -> str:
    value = event.get("messageId")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)[:128]
    return ""


def select_operation(event: Mapping[str, Any]) -> Operation | DropReason:
    kind = normalise_event_name(event.get("type"))
    if kind == "identify":
        return Operation.IDENTIFY
    if kind in ("page", "screen"):
        return DropReason.PAGE_VIEW
    if kind == "track":
        name = normalise_event_name(event.get("event"))
        if name == "identified":
            return Operation.IDENTIFY
        if name == "signed_up":
            return Operation.SIGN_UP
    return DropReason.UNSUPPORTED_EVENT


def read_consent(event: Mapping[str, Any]) -> Consent:
    """Marketing consent from `context.consent.canonical`, or the legacy flat shape where that is absent."""
    context = _mapping(event.get("context"))
    consent = _mapping(context.get("consent"))
    canonical = consent.get("canonical")
    value = canonical.get("marketing") if isinstance(canonical, Mapping) else consent.get("marketing")
    if value is True:
        return Consent.GRANTED
    if value is False:
        return Consent.DENIED
    return Consent.MISSING


def merged_traits(event: Mapping[str, Any]) -> dict[str, Any]:
    """`context.traits` overlaid by top-level `traits`, key by key."""
    traits = dict(_mapping(_mapping(event.get("context")).get("traits")))
    traits.update(_mapping(event.get("traits")))
    return traits


def normalise_email(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    email = text.lower()
    if len(email) > MAX_TEXT or _SHA256_HEX.match(email) or not _EMAIL.match(email):
        return None
    return email


def normalise_phone(value: object, region: str) -> str | None:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else _text(value)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def contact_name(traits: Mapping[str, Any], email: str | None) -> str | None:
    name = _text(traits.get("name"))
    if name is None:
        first = _text(_first_of(traits, "firstName", "first_name"))
        last = _text(_first_of(traits, "lastName", "last_name"))
        name = " ".join(part for part in (first, last) if part) or None
    if name is None:
        name = email
    return name[:MAX_TEXT].strip() if name else None


def external_id(event: Mapping[str, Any]) -> str | None:
    value = _first_of(event, "userId", "user_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _text(value)
    # Truncating an id would join the contact to somebody else's record: an over-long id is left out.
    return text if text is not None and len(text) <= MAX_TEXT else None


def company_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None  # Freshdesk ids are 64-bit
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 18:
        number = int(value.strip())
        return number if number > 0 else None
    return None


def map_contact(
    event: Mapping[str, Any], *, operation: Operation, region: str, consent: Consent | None
) -> dict[str, Any]:
    """The Freshdesk contact body for an event. `consent` None means consent is not read (mode off)."""
    traits = merged_traits(event)
    email = normalise_email(traits.get("email"))
    contact: dict[str, Any] = {}
    _put(contact, "name", contact_name(traits, email))
    _put(contact, "email", email)
    _put(contact, "phone", normalise_phone(traits.get("phone"), region))
    _put(contact, "unique_external_id", external_id(event))
    title = _text(traits.get("title"))
    _put(contact, "job_title", title[:MAX_TEXT].strip() if title else None)
    _put(contact, "company_id", company_id(traits.get("company_id")))
    if consent is Consent.GRANTED:
        contact["tags"] = [CONSENT_TAG]
    if operation is Operation.SIGN_UP:
        method = _text(_mapping(event.get("properties")).get("method"))
        if method:
            contact["custom_fields"] = {"signup_method": method[:MAX_TEXT]}
    return contact


IDENTIFIERS = ("email", "phone", "unique_external_id")


def plan_event(event: Mapping[str, Any], *, region: str = "GB", consent_mode: str = "require") -> PlannedContact | Drop:
    """Apply the Default preset: the event is dropped with a reason, or becomes a contact to send.

    Checks run in this order: event type, consent, identity, name.
    """
    message_id = message_id_of(event)
    selected = select_operation(event)
    if isinstance(selected, DropReason):
        return Drop(selected, message_id)
    consent = None if consent_mode == "off" else read_consent(event)
    if consent_mode == "require":
        if consent is Consent.DENIED:
            return Drop(DropReason.CONSENT_DENIED, message_id)
        if consent is Consent.MISSING:
            return Drop(DropReason.CONSENT_MISSING, message_id)
    contact = map_contact(event, operation=selected, region=region, consent=consent)
    if not any(key in contact for key in IDENTIFIERS):
        return Drop(DropReason.ANONYMOUS, message_id)
    if "name" not in contact:
        return Drop(DropReason.MISSING_NAME, message_id)
    return PlannedContact(selected, contact, message_id)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _first_of(source: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = source.get(key)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return value
    return None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text or None


def _put(contact: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "":
        contact[key] = value
