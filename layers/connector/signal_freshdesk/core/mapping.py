"""The mapping engine: which Signal events reach Freshdesk, and the contact or company each one becomes.

One engine applies every mapping: the Default preset is the built-in mapping (`default_mapping.json`),
and a user's mapping file (`rules`) replaces or extends it. Pure functions over plain data (dicts in,
dataclasses out): no AWS, no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .conversions import MAX_TEXT, converter, cut, to_email, to_id, to_phone, to_text
from .conversions import has_unusable_characters as has_unusable_characters
from .conversions import to_integer as _to_integer
from .conversions import usable_text as usable_text
from .model import CompanyRef, Consent, Drop, DropReason, Operation, PlannedCompany, PlannedContact
from .rules import (
    DEFAULT_MAPPING,
    IDENTIFY_CALL,
    ContactMapping,
    FieldRule,
    Join,
    Path_,
    json_path_get,
    normalise_event_name,
)

CONSENT_TAG = "marketing-consent"
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def message_id_of(event: Mapping[str, Any]) -> str:
    value = event.get("messageId")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)[:128]
    return ""


def event_name_of(event: Mapping[str, Any]) -> str:
    """The name mapping rules know an event by: IDENTIFY_CALL for identify calls, else the normalised name
    of a track event (`Signed Up` is `signed_up`); "" for anything else."""
    kind = normalise_event_name(event.get("type"))
    if kind == "identify":
        return IDENTIFY_CALL
    if kind == "track":
        return normalise_event_name(event.get("event"))
    return ""


def select_operation(event: Mapping[str, Any], mapping: ContactMapping = DEFAULT_MAPPING) -> Operation | DropReason:
    kind = normalise_event_name(event.get("type"))
    if kind in ("page", "screen"):
        return DropReason.PAGE_VIEW
    if kind == "group":
        return Operation.COMPANY if mapping.companies else DropReason.UNSUPPORTED_EVENT
    name = event_name_of(event)
    operation = mapping.operation_for(name) if name else None
    return operation if operation is not None else DropReason.UNSUPPORTED_EVENT


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


# Every trait the Default preset reads, in `context.traits` and top-level `traits` alike.
NAME_KEYS = ("name", "firstName", "first_name", "lastName", "last_name")
TRAIT_KEYS = (*NAME_KEYS, "email", "phone", "title", "company_id", "user_id")

# The old names of the conversions, which the Default preset's tests and tools use.
normalise_email = to_email
normalise_phone = to_phone
normalise_user_id = to_id


def company_id(value: object) -> int | None:
    """A positive integer (a Freshdesk id is 64-bit), or a string of digits made one."""
    number = _for_target("company_id", value, _to_integer)
    return number if isinstance(number, int) else None


def merged_traits(event: Mapping[str, Any], *, region: str = "GB") -> dict[str, Any]:
    """The traits the Default preset reads (TRAIT_KEYS), each as given by the source that wins for it.

    Top-level `traits` win over `context.traits` key by key, but only with a usable value: an empty
    string, null or a value the key's rule rejects never hides a usable value of the other source. Keys
    no source has a usable value for are left out. `region` is the phone rule's region.
    """
    found = {}
    for key in TRAIT_KEYS:
        rule = _DEFAULT_RULE_OF_TRAIT[key]
        convert = converter(rule.convert, region=region, table=rule.table, otherwise=rule.otherwise)
        for source in _trait_sources(event):
            if key in source and _for_target(rule.target, source[key], convert) is not None:
                found[key] = source[key]
                break
    return found


def contact_name(traits: Mapping[str, Any], email: str | None) -> str | None:
    """The Default preset's name from these traits: `name`, else the first and last name joined by a space,
    else `email` (pass None for no fallback)."""
    named = fill({"traits": traits}, DEFAULT_MAPPING.rules_for("name"), region="GB", creating=False, event_name="")
    return named[0].value if named else cut(email)


def external_id(event: Mapping[str, Any]) -> str | None:
    """`userId`, else top-level `user_id`, else the traits' `user_id`: the first usable one."""
    for rule in DEFAULT_MAPPING.rules_for("unique_external_id"):
        value = _rule_value(rule, event, "GB")
        if value is not None:
            return str(value)
    return None


def signup_method(event: Mapping[str, Any]) -> str | None:
    """`properties.method`, trimmed, at most 255 characters."""
    (rule,) = DEFAULT_MAPPING.rules_for("custom_fields.signup_method")
    value = _rule_value(rule, event, "GB")
    return value if isinstance(value, str) else None


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


# -- the engine --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filled:
    """One field a body sends, with its value and the rule that produced it."""

    target: str
    value: Any
    rule: FieldRule


def fill(
    event: Mapping[str, Any],
    rules: Iterable[FieldRule],
    *,
    region: str,
    creating: bool,
    event_name: str | None = None,
) -> list[Filled]:
    """The fields a body sends, in rule order: for each target, the first rule that applies and has a usable
    value. A create applies every rule; an update only `overwrite` and `if_empty` ones."""
    created, updated = fill_bodies(event, rules, region=region, event_name=event_name)
    return created if creating else updated


def fill_bodies(
    event: Mapping[str, Any], rules: Iterable[FieldRule], *, region: str, event_name: str | None = None
) -> tuple[list[Filled], list[Filled]]:
    """`fill` for the create and for the update at once, converting each rule's value once."""
    name = event_name_of(event) if event_name is None else event_name
    created: dict[str, Filled] = {}
    updated: dict[str, Filled] = {}
    for rule in rules:
        for_create = rule.target not in created
        for_update = rule.policy != "create_only" and rule.target not in updated
        if not (for_create or for_update) or not rule.applies_to(name):
            continue
        value = _rule_value(rule, event, region)
        if value is not None:
            item = Filled(rule.target, value, rule)
            if for_create:
                created[rule.target] = item
            if for_update:
                updated[rule.target] = item
    return list(created.values()), list(updated.values())


def body_of(filled: Iterable[Filled]) -> dict[str, Any]:
    """A Freshdesk body: standard fields in rule order, then `custom_fields`."""
    body: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for item in filled:
        if item.target.startswith("custom_fields."):
            custom[item.target.removeprefix("custom_fields.")] = item.value
        else:
            body[item.target] = item.value
    if custom:
        body["custom_fields"] = custom
    return body


def map_contact(
    event: Mapping[str, Any],
    *,
    operation: Operation,
    region: str,
    consent: Consent | None,
    mapping: ContactMapping = DEFAULT_MAPPING,
) -> dict[str, Any]:
    """The Freshdesk contact body to create for an event. `consent` None means consent is not read (mode off)."""
    name = _name_for(event, operation, mapping)
    return _create_body(fill(event, mapping.fields, region=region, creating=True, event_name=name), consent)


def map_update(
    event: Mapping[str, Any],
    *,
    operation: Operation,
    region: str,
    consent: Consent | None,
    mapping: ContactMapping = DEFAULT_MAPPING,
) -> dict[str, Any]:
    """The body a PUT may send to an existing contact: only what the event itself says.

    No `create_only` rule (so the email never stands in for the name: without a name or first/last name
    in the traits the contact's name is left alone), no tags (the caller merges them with the contact's
    own, so `consent` is not read here), nothing empty.
    """
    del consent
    name = _name_for(event, operation, mapping)
    return body_of(fill(event, mapping.fields, region=region, creating=False, event_name=name))


def _name_for(event: Mapping[str, Any], operation: Operation, mapping: ContactMapping) -> str:
    """The event's name, or, when `operation` is not what the mapping gives it, the first event name the
    mapping gives `operation` to: the rules applied are those of the operation asked for."""
    name = event_name_of(event)
    if mapping.operation_for(name) is operation:
        return name
    return next((rule.name for rule in mapping.events if rule.operation is operation), name)


def plan_event(
    event: Mapping[str, Any],
    *,
    region: str = "GB",
    consent_mode: str = "require",
    allow_withdrawal: bool = False,
    mapping: ContactMapping = DEFAULT_MAPPING,
) -> PlannedContact | PlannedCompany | Drop:
    """Apply the mapping: the event is dropped with a reason, or becomes a contact (or company) to send.

    Checks run in this order: event type, consent, identity, name. Group events become companies and are
    not gated on consent: a company is not a person.

    With `allow_withdrawal`, an event whose consent is explicitly denied (require and tag_only modes) is
    not dropped for that as long as it has an identifier: it is planned with `consent` DENIED, even without
    a name, so the caller can take the tag off an existing contact. Such a plan is not a create: in require
    mode the caller never creates from it, and it may have no `name`.
    """
    message_id = message_id_of(event)
    selected = select_operation(event, mapping)
    if isinstance(selected, DropReason):
        return Drop(selected, message_id)
    if selected is Operation.COMPANY:
        return plan_company(event, region=region, mapping=mapping)
    consent = None if consent_mode == "off" else read_consent(event)
    withdrawal = allow_withdrawal and consent is Consent.DENIED
    if consent_mode == "require":
        if consent is Consent.DENIED and not withdrawal:
            return Drop(DropReason.CONSENT_DENIED, message_id)
        if consent is Consent.MISSING:
            return Drop(DropReason.CONSENT_MISSING, message_id)
    created, updated = fill_bodies(event, mapping.fields, region=region)
    contact = _create_body(created, consent)
    if not any(key in contact for key in IDENTIFIERS):
        denied = withdrawal and consent_mode == "require"
        return Drop(DropReason.CONSENT_DENIED if denied else DropReason.ANONYMOUS, message_id)
    if "name" not in contact and not withdrawal and selected is not Operation.UPDATE:
        return Drop(DropReason.MISSING_NAME, message_id)
    return PlannedContact(
        selected,
        contact,
        message_id,
        update=body_of(updated),
        consent=consent,
        timestamp=timestamp_of(event),
        person=person_of(contact),
        if_empty=frozenset(item.target for item in updated if item.rule.policy == "if_empty"),
        company=company_ref(event) if mapping.companies and "company_id" not in contact else None,
    )


# -- companies ---------------------------------------------------------------------------------------
def company_ref(event: Mapping[str, Any]) -> CompanyRef | None:
    """The company a contact event names: `context.groupId`, and `traits.company` as a name or as an
    object with a `name`. None when it names none."""
    group_id = to_id(_mapping(event.get("context")).get("groupId"))
    name = None
    for source in _trait_sources(event):
        company = source.get("company")
        name = to_text(company.get("name") if isinstance(company, Mapping) else company)
        if name is not None:
            break
    return CompanyRef(name, group_id) if name is not None or group_id is not None else None


def company_domain(value: object) -> str | None:
    """The host of a website or domain, lower-cased, without `www.`: `https://www.Acme.com/x` is `acme.com`."""
    text = usable_text(value)
    if text is None:
        return None
    host = (urlsplit(text if "//" in text else f"//{text}").hostname or "").rstrip(".")
    host = host.removeprefix("www.")
    return host if len(host) <= 253 and _HOST.match(host) else None


def plan_company(
    event: Mapping[str, Any], *, region: str = "GB", mapping: ContactMapping = DEFAULT_MAPPING
) -> PlannedCompany | Drop:
    """A group event as a company: `traits.name` (required), `domains` from `traits.website` or
    `traits.domain`, and the mapping's company rules. Only the top-level `traits` describe the group
    (`context.traits` are the person's), so a rule's `traits.x` reads nothing else here."""
    message_id = message_id_of(event)
    group_event = {key: value for key, value in event.items() if key != "context"}
    traits = _mapping(event.get("traits"))
    name = to_text(traits.get("name"))
    if name is None:
        return Drop(DropReason.NO_COMPANY_NAME, message_id)
    domain = company_domain(traits.get("website")) or company_domain(traits.get("domain"))
    domains = [domain] if domain else []
    group_id = to_id(event.get("groupId"))
    created, updated = fill_bodies(group_event, mapping.company_fields, region=region, event_name="group")
    head = {"name": name, **({"domains": domains} if domains else {})}
    return PlannedCompany(
        {**head, **body_of(created)},
        message_id,
        group_id=group_id,
        update={**head, **body_of(updated)},
        timestamp=timestamp_of(event),
        person=f"group:{group_id}" if group_id else f"company:{name.casefold()}",
    )


# -- helpers -----------------------------------------------------------------------------------------
def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _trait_sources(event: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Top-level `traits` first (they win, when usable), then `context.traits`."""
    return _mapping(event.get("traits")), _mapping(_mapping(event.get("context")).get("traits"))


def _values_at(event: Mapping[str, Any], path: Path_) -> Iterable[Any]:
    """The candidates a path names: `traits.x` is top-level `traits.x`, then `context.traits.x`."""
    if path[0] == "traits" and len(path) > 1:
        for source in _trait_sources(event):
            yield json_path_get(source, path[1:])
    else:
        yield json_path_get(event, path)


def _rule_value(rule: FieldRule, event: Mapping[str, Any], region: str) -> Any:
    convert = converter(rule.convert, region=region, table=rule.table, otherwise=rule.otherwise)
    for source in rule.sources:
        if isinstance(source, Join):
            parts = [_first_usable(event, paths, convert, rule.target) for paths in source.parts]
            joined = source.separator.join(str(part) for part in parts if part is not None)
            value = cut(joined) if joined else None
        else:
            value = _first_usable(event, (source,), convert, rule.target)
        if value is not None:
            return value
    return None


def _first_usable(event: Mapping[str, Any], paths: tuple[Path_, ...], convert: Any, target: str) -> Any:
    for path in paths:
        for raw in _values_at(event, path):
            value = _for_target(target, raw, convert)
            if value is not None:
                return value
    return None


def _for_target(target: str, raw: Any, convert: Any) -> Any:
    """The converted value, held to what the target accepts."""
    if target == "other_emails":
        items = raw if isinstance(raw, list) else [raw]
        emails = list(dict.fromkeys(email for item in items if (email := convert(item)) is not None))
        return emails or None
    value = convert(raw)
    if target == "company_id":  # a Freshdesk id: positive
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
    return value


def _create_body(filled: list[Filled], consent: Consent | None) -> dict[str, Any]:
    contact = body_of(filled)
    if consent is Consent.GRANTED:
        # Tags go before custom_fields: the key order of the sample Signed Up body (tests/samples.py).
        custom = contact.pop("custom_fields", None)
        contact["tags"] = [CONSENT_TAG]
        if custom:
            contact["custom_fields"] = custom
    return contact


def _trait_keys_of(rule: FieldRule) -> list[str]:
    """The `traits.<key>` a rule reads, its joins' parts included."""
    paths = [path for source in rule.sources for path in (source.parts if isinstance(source, Join) else [(source,)])]
    return [step[1] for group in paths for step in group if len(step) == 2 and step[0] == "traits"]


def _rule_of_trait(mapping: ContactMapping) -> dict[str, FieldRule]:
    """Which rule judges each trait a mapping reads: the first that reads it."""
    found: dict[str, FieldRule] = {}
    for rule in mapping.fields:
        for key in _trait_keys_of(rule):
            found.setdefault(key, rule)
    return found


_DEFAULT_RULE_OF_TRAIT = _rule_of_trait(DEFAULT_MAPPING)
