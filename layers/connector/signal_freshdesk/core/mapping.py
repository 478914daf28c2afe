"""The Default preset: which Signal events reach Freshdesk, and the contact each one becomes.

Pure functions over plain data (dicts in, dataclasses out): no AWS, no HTTP.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
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


# Every trait the mapping reads, in `context.traits` and top-level `traits` alike.
NAME_KEYS = ("name", "firstName", "first_name", "lastName", "last_name")
TRAIT_KEYS = (*NAME_KEYS, "email", "phone", "title", "company_id", "user_id")
# Control and format characters (NUL, tab, newline, a right-to-left override, a zero-width joiner...),
# and lone surrogates, which no encoder accepts: a text holding one is never usable.
_UNUSABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def has_unusable_characters(text: str) -> bool:
    """Whether `text` holds a Unicode control (Cc) or format (Cf) character, or a lone surrogate (Cs)."""
    # str.isprintable is False for every such character, so the common clean text costs one C-level scan.
    return not text.isprintable() and any(unicodedata.category(ch) in _UNUSABLE_CATEGORIES for ch in text)


def usable_text(value: object) -> str | None:
    """A text the mapping can use: a string, trimmed, not empty, and without control or format characters
    anywhere in it (leading and trailing ones included). Anything else counts as absent."""
    if not isinstance(value, str) or has_unusable_characters(value):
        return None
    return value.strip() or None


def merged_traits(event: Mapping[str, Any], *, region: str = "GB") -> dict[str, Any]:
    """The traits the mapping reads (TRAIT_KEYS), each as given by the source that wins for it.

    Top-level `traits` win over `context.traits` key by key, but only with a usable value: an empty
    string, null or a value the key's rule rejects (an email that is not an address, a phone that is not
    possible, an over-long user id, a company_id that is not a positive integer, a text with control
    characters) never hides a usable value of the other source. Keys no source has a usable value for are
    left out. `region` is the phone rule's region.
    """
    return {key: raw for key, (raw, _) in _winning_traits(event, region).items()}


def normalise_email(value: object) -> str | None:
    text = usable_text(value)
    if text is None:
        return None
    email = text.lower()
    if len(email) > MAX_TEXT or _SHA256_HEX.match(email) or not _EMAIL.match(email):
        return None
    return email


def normalise_phone(value: object, region: str) -> str | None:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else usable_text(value)
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
    """`name`, else the first and last name joined by a space, else `email` (pass None for no fallback)."""
    name = usable_text(traits.get("name"))
    if name is None:
        first = usable_text(traits.get("firstName")) or usable_text(traits.get("first_name"))
        last = usable_text(traits.get("lastName")) or usable_text(traits.get("last_name"))
        name = " ".join(part for part in (first, last) if part) or None
    if name is None:
        name = email
    return _cut(name)


def normalise_user_id(value: object) -> str | None:
    """A user id as a string (an integer becomes one), trimmed; over 255 characters it is not usable:
    truncating an id would join the contact to somebody else's record."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = usable_text(value)
    return text if text is not None and len(text) <= MAX_TEXT else None


def external_id(event: Mapping[str, Any]) -> str | None:
    """`userId`, else top-level `user_id`, else the traits' `user_id`: the first usable one."""
    traits = {key: value for key, (_, value) in _winning_traits(event, "GB", ("user_id",)).items()}
    return _external_id(event, traits)


def company_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None  # Freshdesk ids are 64-bit
    text = usable_text(value)
    if text is not None and text.isascii() and text.isdigit() and len(text) <= 18:
        number = int(text)
        return number if number > 0 else None
    return None


def signup_method(event: Mapping[str, Any]) -> str | None:
    """`properties.method`, trimmed, at most 255 characters."""
    return _cut(usable_text(_mapping(event.get("properties")).get("method")))


def map_contact(
    event: Mapping[str, Any], *, operation: Operation, region: str, consent: Consent | None
) -> dict[str, Any]:
    """The Freshdesk contact body to create for an event. `consent` None means consent is not read (mode off)."""
    return _create_body(event, _usable_traits(event, region), operation=operation, consent=consent)


def map_update(
    event: Mapping[str, Any], *, operation: Operation, region: str, consent: Consent | None
) -> dict[str, Any]:
    """The body a PUT may send to an existing contact: only what the event itself says.

    No derived fallback (the email never stands in for the name: without a name or first/last name in
    the traits the contact's name is left alone), no tags (the caller merges them with the contact's own,
    so `consent` is not read here), nothing empty.
    """
    del consent  # the same signature as map_contact; tags are the caller's
    return _update_body(event, _usable_traits(event, region), operation=operation)


def timestamp_of(event: Mapping[str, Any]) -> str:
    """The event's `timestamp` as given; "" when absent, not a string, or too long to be a timestamp."""
    value = event.get("timestamp")
    return value if isinstance(value, str) and len(value) <= MAX_TEXT else ""


def person_of(contact: Mapping[str, Any]) -> str:
    """Whose event this is: the user id, else the email, else the phone (all normalised), with its kind."""
    for key, kind in (("unique_external_id", "uid"), ("email", "email"), ("phone", "phone")):
        value = contact.get(key)
        if isinstance(value, str) and value:
            return f"{kind}:{value}"
    return ""


IDENTIFIERS = ("email", "phone", "unique_external_id")


def plan_event(
    event: Mapping[str, Any], *, region: str = "GB", consent_mode: str = "require", allow_withdrawal: bool = False
) -> PlannedContact | Drop:
    """Apply the Default preset: the event is dropped with a reason, or becomes a contact to send.

    Checks run in this order: event type, consent, identity, name.

    With `allow_withdrawal`, an event whose consent is explicitly denied (require and tag_only modes) is
    not dropped for that as long as it has an identifier: it is planned with `consent` DENIED, even without
    a name, so the caller can take the tag off an existing contact. Such a plan is not a create: in require
    mode the caller never creates from it, and it may have no `name`.
    """
    message_id = message_id_of(event)
    selected = select_operation(event)
    if isinstance(selected, DropReason):
        return Drop(selected, message_id)
    consent = None if consent_mode == "off" else read_consent(event)
    withdrawal = allow_withdrawal and consent is Consent.DENIED
    if consent_mode == "require":
        if consent is Consent.DENIED and not withdrawal:
            return Drop(DropReason.CONSENT_DENIED, message_id)
        if consent is Consent.MISSING:
            return Drop(DropReason.CONSENT_MISSING, message_id)
    traits = _usable_traits(event, region)  # read once for both bodies
    contact = _create_body(event, traits, operation=selected, consent=consent)
    if not any(key in contact for key in IDENTIFIERS):
        denied = withdrawal and consent_mode == "require"
        return Drop(DropReason.CONSENT_DENIED if denied else DropReason.ANONYMOUS, message_id)
    if "name" not in contact and not withdrawal:
        return Drop(DropReason.MISSING_NAME, message_id)
    return PlannedContact(
        selected,
        contact,
        message_id,
        update=_update_body(event, traits, operation=selected),
        consent=consent,
        timestamp=timestamp_of(event),
        person=person_of(contact),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _trait_rule(key: str, region: str) -> Callable[[object], Any]:
    """What makes a value of `key` usable, and what it becomes: None when it is not usable."""
    if key == "email":
        return normalise_email
    if key == "phone":
        return lambda value: normalise_phone(value, region)
    if key == "company_id":
        return company_id
    if key == "user_id":
        return normalise_user_id
    return usable_text


def _winning_traits(
    event: Mapping[str, Any], region: str, keys: tuple[str, ...] = TRAIT_KEYS
) -> dict[str, tuple[Any, Any]]:
    """For each key with a usable value: (the value as given, the value the rule made of it)."""
    sources = (_mapping(event.get("traits")), _mapping(_mapping(event.get("context")).get("traits")))
    found: dict[str, tuple[Any, Any]] = {}
    for key in keys:
        rule = _trait_rule(key, region)
        for source in sources:  # top level first: it wins, when its value is usable
            if key in source and (value := rule(source[key])) is not None:
                found[key] = (source[key], value)
                break
    return found


def _usable_traits(event: Mapping[str, Any], region: str) -> dict[str, Any]:
    return {key: value for key, (_, value) in _winning_traits(event, region).items()}


def _external_id(event: Mapping[str, Any], traits: Mapping[str, Any]) -> str | None:
    for value in (event.get("userId"), event.get("user_id")):
        found = normalise_user_id(value)
        if found is not None:
            return found
    user_id = traits.get("user_id")
    return user_id if isinstance(user_id, str) else None


def _fields(
    event: Mapping[str, Any], traits: Mapping[str, Any], *, operation: Operation, name: str | None
) -> dict[str, Any]:
    """The contact fields both bodies share, in the body's order, from the usable (normalised) traits."""
    contact: dict[str, Any] = {}
    _put(contact, "name", name)
    _put(contact, "email", traits.get("email"))
    _put(contact, "phone", traits.get("phone"))
    _put(contact, "unique_external_id", _external_id(event, traits))
    _put(contact, "job_title", _cut(traits.get("title")))
    _put(contact, "company_id", traits.get("company_id"))
    if operation is Operation.SIGN_UP:
        method = signup_method(event)
        if method:
            contact["custom_fields"] = {"signup_method": method}
    return contact


def _create_body(
    event: Mapping[str, Any], traits: Mapping[str, Any], *, operation: Operation, consent: Consent | None
) -> dict[str, Any]:
    contact = _fields(event, traits, operation=operation, name=contact_name(traits, traits.get("email")))
    if consent is Consent.GRANTED:
        # Tags go before custom_fields: the key order of the sample Signed Up body (tests/samples.py).
        method = contact.pop("custom_fields", None)
        contact["tags"] = [CONSENT_TAG]
        _put(contact, "custom_fields", method)
    return contact


def _update_body(event: Mapping[str, Any], traits: Mapping[str, Any], *, operation: Operation) -> dict[str, Any]:
    return _fields(event, traits, operation=operation, name=contact_name(traits, None))


def _cut(text: str | None) -> str | None:
    """At most 255 characters, trimmed again after the cut."""
    return (text[:MAX_TEXT].strip() or None) if text else None


def _put(contact: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != "":
        contact[key] = value
