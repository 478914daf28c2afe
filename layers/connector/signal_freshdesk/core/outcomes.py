"""What each Freshdesk answer means for an event: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .model import Answer, Operation, Outcome


class Action(StrEnum):
    DONE = "done"
    UPDATE = "update"
    RETRY = "retry"
    REAUTH = "reauth"
    RESEND_WITHOUT = "resend_without"
    REJECT = "reject"
    CREATE = "create"


@dataclass(frozen=True)
class Verdict:
    action: Action
    outcome: Outcome | None = None
    contact_id: int | None = None
    fields: tuple[str, ...] = ()
    warning: str = ""


def existing_contact_ids(body: Any) -> list[int]:
    """Distinct contact ids named by a 409's `errors[].additional_info.user_id`, in order."""
    ids: list[int] = []
    for error in _errors(body):
        info = error.get("additional_info")
        user_id = info.get("user_id") if isinstance(info, Mapping) else None
        if isinstance(user_id, int) and not isinstance(user_id, bool) and user_id not in ids:
            ids.append(user_id)
    return ids


IDENTIFIERS = ("email", "phone", "mobile", "twitter_id", "unique_external_id")
# Fields a contact can do without when Freshdesk refuses them (identifiers only while another remains): the
# Default preset's company_id and job_title, and the standard fields a user's mapping may fill.
DISPENSABLE = (
    "company_id",
    "job_title",
    "address",
    "description",
    "language",
    "time_zone",
    "other_emails",
    "view_all_tickets",
)


def optional_invalid_fields(body: Any, contact: Mapping[str, Any]) -> tuple[str, ...]:
    """Fields a 400 refused that the contact can do without, or () when any error names another field.

    Whatever the error code (`invalid_field`, `invalid_value`, `datatype_mismatch`, ...): a `custom_fields`
    key we sent, `company_id`, `job_title`, or an identifier when another identifier remains.
    """
    errors = _errors(body)
    if not errors:
        return ()
    custom = contact.get("custom_fields") or {}
    fields: list[str] = []
    for error in errors:
        name = error.get("field")
        if not isinstance(name, str):
            return ()
        if name.startswith("cf_"):  # a custom field, whatever its name
            if name[3:] not in custom:
                return ()
            fields.append(name[3:])
        elif name in custom or (name in DISPENSABLE + IDENTIFIERS and name in contact):
            fields.append(name)
        else:
            return ()
    fields = list(dict.fromkeys(fields))
    remaining = [key for key in IDENTIFIERS if key in contact and key not in fields]
    if any(name in IDENTIFIERS for name in fields) and not remaining:
        return ()
    return tuple(fields)


def without_fields(contact: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    trimmed = {key: value for key, value in contact.items() if key not in fields or key == "custom_fields"}
    custom = {k: v for k, v in (contact.get("custom_fields") or {}).items() if k not in fields}
    trimmed.pop("custom_fields", None)
    if custom:
        trimmed["custom_fields"] = custom
    return trimmed


def has_value(contact: Mapping[str, Any], target: str) -> bool:
    """Whether a contact (or a body) holds a value in a mapping target: `mobile`, `custom_fields.plan`."""
    if target.startswith("custom_fields."):
        custom = contact.get("custom_fields")
        value = custom.get(target.removeprefix("custom_fields.")) if isinstance(custom, Mapping) else None
    else:
        value = contact.get(target)
    return value is not None and value != "" and value != []


def without_targets(body: Mapping[str, Any], targets: frozenset[str] | set[str]) -> dict[str, Any]:
    """The body without these mapping targets (`custom_fields.x` leaves the other custom fields)."""
    custom_names = {t.removeprefix("custom_fields.") for t in targets if t.startswith("custom_fields.")}
    trimmed = {key: value for key, value in body.items() if key not in targets and key != "custom_fields"}
    custom = {k: v for k, v in (body.get("custom_fields") or {}).items() if k not in custom_names}
    if custom:
        trimmed["custom_fields"] = custom
    return trimmed


def has_tag(existing: Any, tag: str) -> bool:
    """Whether the contact's tags hold `tag`, ignoring case."""
    wanted = tag.casefold()
    return isinstance(existing, list) and any(isinstance(t, str) and t.casefold() == wanted for t in existing)


def merge_tags(existing: Any, ours: list[str]) -> list[str]:
    """Freshdesk's PUT replaces the tag list: keep the contact's tags and add ours, unless a tag equal to
    ours ignoring case is already there (no second spelling)."""
    current = [tag for tag in existing if isinstance(tag, str)] if isinstance(existing, list) else []
    merged = list(dict.fromkeys(current))
    for tag in ours:
        if not has_tag(merged, tag):
            merged.append(tag)
    return merged


def without_tag(existing: Any, tag: str) -> list[str]:
    """The contact's tags with `tag` (in any case) removed, everything else kept in order."""
    current = [t for t in existing if isinstance(t, str)] if isinstance(existing, list) else []
    return [t for t in current if t.casefold() != tag.casefold()]


def judge_create(operation: Operation, answer: Answer, contact: Mapping[str, Any]) -> Verdict:
    """What a `POST /contacts` answer means."""
    status = answer.status
    if status == 201:
        return Verdict(Action.DONE, Outcome.DELIVERED, contact_id=_id_of(answer.body))
    if status == 409:
        if operation is Operation.SIGN_UP:
            return Verdict(Action.DONE, Outcome.CONFLICT)
        ids = existing_contact_ids(answer.body)
        if len(ids) == 1:
            return Verdict(Action.UPDATE, contact_id=ids[0])
        warning = (
            "the 409 names several contacts; not guessing which to update"
            if ids
            else "the 409 names no existing contact to update"
        )
        return Verdict(Action.DONE, Outcome.CONFLICT, warning=warning)
    return _judge_common(answer, contact)


def judge_update(answer: Answer, contact: Mapping[str, Any]) -> Verdict:
    """What a `PUT /contacts/{id}` answer means. A 405 is a deleted (or blocked) contact, a 404 an id
    that no longer exists: the caller decides what those mean for it."""
    if answer.status == 200:
        return Verdict(Action.DONE, Outcome.UPDATED, contact_id=_id_of(answer.body))
    if answer.status == 405:
        return Verdict(Action.DONE, Outcome.DELETED_IN_FRESHDESK)
    if answer.status == 404:
        return Verdict(Action.CREATE)
    if answer.status == 409:
        return Verdict(
            Action.DONE, Outcome.CONFLICT, warning="the update clashes with another contact's email or external id"
        )
    return _judge_common(answer, contact)


def judge_phone_lookup(operation: Operation, answer: Answer) -> Verdict:
    """What `GET /contacts?phone=` means for a contact known only by its phone number.

    Freshdesk does not refuse a second contact with the same phone (no 409), so such a contact is
    looked up before it is created: found once, it is the existing contact, as a 409 would have said.
    """
    if answer.status != 200:
        return _judge_common(answer, {})
    found = [c.get("id") for c in answer.body if isinstance(c, Mapping)] if isinstance(answer.body, list) else []
    ids = [i for i in found if isinstance(i, int) and not isinstance(i, bool)]
    if not ids:
        return Verdict(Action.CREATE)
    if operation is Operation.SIGN_UP:
        # The contact exists, as a 409 would have said; which one it is only one match can say.
        return Verdict(Action.DONE, Outcome.CONFLICT, contact_id=ids[0] if len(ids) == 1 else None)
    if len(ids) == 1:
        return Verdict(Action.UPDATE, contact_id=ids[0])
    return Verdict(
        Action.DONE, Outcome.CONFLICT, warning="several contacts share this phone; not guessing which to update"
    )


def judge_read(answer: Answer) -> Verdict:
    """What a `GET /contacts/{id}` answer (read before merging tags) means."""
    if answer.status == 200:
        if isinstance(answer.body, Mapping) and answer.body.get("deleted") is True:
            return Verdict(Action.DONE, Outcome.DELETED_IN_FRESHDESK)
        return Verdict(Action.DONE)
    if answer.status == 404:
        return Verdict(Action.CREATE)
    return _judge_common(answer, {})


def judge_lookup(answer: Answer) -> Verdict:
    """What `GET /contacts?<identifier>=` means: the one contact found (UPDATE), none (CREATE), or several."""
    if answer.status != 200:
        return _judge_common(answer, {})
    found = [c for c in answer.body if isinstance(c, Mapping)] if isinstance(answer.body, list) else []
    ids = [c.get("id") for c in found if isinstance(c.get("id"), int) and not isinstance(c.get("id"), bool)]
    if not ids:
        return Verdict(Action.CREATE)
    if len(ids) == 1:
        return Verdict(Action.UPDATE, contact_id=ids[0])
    return Verdict(Action.DONE, Outcome.CONFLICT, warning="several contacts share this identifier; not guessing")


def _judge_common(answer: Answer, contact: Mapping[str, Any]) -> Verdict:
    status = answer.status
    if status is None or status == 429 or status >= 500:
        return Verdict(Action.RETRY, Outcome.QUEUED)
    if status == 401:
        return Verdict(Action.REAUTH, Outcome.REJECTED)
    if status == 400:
        fields = optional_invalid_fields(answer.body, contact)
        if fields:
            return Verdict(Action.RESEND_WITHOUT, fields=fields)
    if 200 <= status < 300:
        return Verdict(Action.DONE, Outcome.DELIVERED, contact_id=_id_of(answer.body))
    return Verdict(Action.REJECT, Outcome.REJECTED)


def _errors(body: Any) -> list[Mapping[str, Any]]:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    return [e for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []


def _id_of(body: Any) -> int | None:
    value = body.get("id") if isinstance(body, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def judge_company_create(answer: Answer, company: Mapping[str, Any]) -> Verdict:
    """What a `POST /companies` answer means: a 409 is a name another company has (UPDATE: find it)."""
    if answer.status == 201:
        return Verdict(Action.DONE, Outcome.DELIVERED, contact_id=_id_of(answer.body))
    if answer.status == 409:
        return Verdict(Action.UPDATE)
    return _judge_common(answer, company)


def judge_company_update(answer: Answer, company: Mapping[str, Any]) -> Verdict:
    """What a `PUT /companies/{id}` (or a `GET`) answer means: a 404 is an id that no longer exists."""
    if answer.status == 200:
        return Verdict(Action.DONE, Outcome.UPDATED, contact_id=_id_of(answer.body))
    if answer.status == 404:
        return Verdict(Action.CREATE)
    if answer.status == 409:
        return Verdict(Action.DONE, Outcome.CONFLICT, warning="another company already has this name")
    return _judge_common(answer, company)


def judge_company_lookup(answer: Answer, name: str) -> Verdict:
    """What `GET /companies/autocomplete?name=` means: the company whose name is `name` ignoring case
    (UPDATE), or none (CREATE). Autocomplete also answers names that only start alike: never taken."""
    if answer.status != 200:
        return _judge_common(answer, {})
    companies = answer.body.get("companies") if isinstance(answer.body, Mapping) else None
    wanted = name.casefold()
    for company in companies if isinstance(companies, list) else []:
        if isinstance(company, Mapping) and isinstance(company.get("name"), str):
            company_id = company.get("id")
            if (
                company["name"].casefold() == wanted
                and isinstance(company_id, int)
                and not isinstance(company_id, bool)
            ):
                return Verdict(Action.UPDATE, contact_id=company_id)
    return Verdict(Action.CREATE)
