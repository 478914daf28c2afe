"""Explain what the contact mapping in use does with an event, and the exact Freshdesk request it would send.

    python -m signal_freshdesk_dev.explain FILE|-  [--mapping PATH] [--domain acme] [--consent-mode M] [--region R] [--json]
    make explain EVENT=events/signed-up.json [MAPPING=path]

The input is a Signal event, a batch (a JSON array or {"batch": [...]}), an API Gateway HTTP API request
whose body holds one (the events/*.json samples), or an SQS event for the retry function. The decision
comes from the connector's own code (signal_freshdesk.core.mapping.plan_event, with the mapping,
CONSENT_MODE and DEFAULT_PHONE_REGION read as the functions read them: MAPPING_FILE, else
layers/connector/mapping.json, else the built-in Default preset). Each field of the request names the
mapping rule that fills it, its conversion and its policy. Nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote

from signal_freshdesk.adapters.freshdesk import USER_AGENT
from signal_freshdesk.core.credentials import normalise_domain
from signal_freshdesk.core.delivery import LOOKUP_ORDER
from signal_freshdesk.core.envelope import parse_envelope, parse_incomplete
from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.mapping import (
    IDENTIFIERS,
    Filled,
    event_name_of,
    fill,
    map_contact,
    plan_event,
    read_consent,
    select_operation,
)
from signal_freshdesk.core.model import (
    CompanyRef,
    Consent,
    DropReason,
    Operation,
    PlannedCompany,
    PlannedContact,
)
from signal_freshdesk.core.requests import BadRequest, parse_events, read_body
from signal_freshdesk.core.rules import DEFAULT_MAPPING, IDENTIFY_CALL, ContactMapping, FieldRule, Join, Source
from signal_freshdesk.core.settings import Settings

PLACEHOLDER_DOMAIN = "<your-domain>"
DOMAIN_IN_SECRET = "the secret's 'domain'"
CONSENT_SOURCE = "context.consent.canonical.marketing (the legacy context.consent.marketing where canonical is absent)"
HEADERS = {
    "Authorization": "Basic <redacted>",
    "Accept": "application/json",
    "Content-Type": "application/json",
    "User-Agent": USER_AGENT,
}

OPERATIONS = {
    Operation.SIGN_UP: "create the contact",
    Operation.IDENTIFY: "create the contact; if it already exists, update it",
    Operation.UPDATE: "update the person's contact; a person without a contact gets none (dropped no_contact)",
    Operation.COMPANY: "create the company; if its name exists already, update that company with domains merged",
}
# What each value of a field's `sent_on` means, in the text output.
SENT_ON = {
    "create": "create",
    "update": "update",
    "update_if_empty": "update where the contact's field is empty",
}
DROPS = {
    DropReason.PAGE_VIEW: "page and screen events never reach Freshdesk",
    DropReason.CONSENT_DENIED: (
        "marketing consent is false and CONSENT_MODE is require: nothing is created; if the person already"
        " has a contact, our marketing-consent tag is taken off it and nothing else changes (consent_withdrawn)"
    ),
    DropReason.CONSENT_MISSING: "there is no marketing consent value and CONSENT_MODE is require",
    DropReason.NO_COMPANY_NAME: "a group event names its company in traits.name, and this one has no usable name",
}
# The company fields a group event fills whatever the mapping says (signal_freshdesk.core.mapping.plan_company).
BUILT_IN_COMPANY_FIELDS = {
    "name": "the connector's own: traits.name (required)",
    "domains": "the connector's own: the host of traits.website, else traits.domain",
}


class InputError(Exception):
    pass


@dataclass
class Explanation:
    label: str
    message_id: str
    kind: str
    decision: str  # deliver | drop | refuse
    reason: str = ""
    why: str = ""
    operation: str = ""
    consent: str = ""
    identity: dict[str, Any] | None = None
    name: str | None = None
    company: dict[str, Any] | None = None  # the company a contact event names
    before: list[str] | None = None  # what happens before the request
    request: dict[str, Any] | None = None
    fields: list[dict[str, Any]] | None = None  # each field of the request, with the rule that fills it
    sent: list[str] | None = None  # which fields go on create, on update, only where empty
    on_409: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = {
            "label": self.label,
            "messageId": self.message_id,
            "event": self.kind,
            "decision": self.decision,
            "reason": self.reason,
            "why": self.why,
            "operation": self.operation,
            "consent": self.consent,
            "identity": self.identity,
            "name": self.name,
            "company": self.company,
            "before": self.before,
            "request": self.request,
            "fields": self.fields,
            "on_409": self.on_409,
        }
        return {k: v for k, v in data.items() if v not in ("", None)}


# -- reading the input -------------------------------------------------------------------------
def signal_events(text: str, settings: Settings) -> tuple[str, list[tuple[str, Any]]]:
    """What the input is, and the Signal events in it, each with a label. Parsing is the webhook's own."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InputError(f"the input is not JSON ({exc})") from None
    if isinstance(document, dict) and isinstance(document.get("Records"), list):
        items: list[tuple[str, Any]] = []
        for number, record in enumerate(document["Records"], start=1):
            body = record.get("body") if isinstance(record, dict) else None
            envelope = parse_envelope(body)
            if envelope is None and parse_incomplete(body) is not None:
                items.append(
                    (
                        f"record {number}: retry envelope without its event (it was too large for SQS;"
                        " the retry function parks it)",
                        None,
                    )
                )
            elif envelope is None:
                items.append((f"record {number}: not a retry envelope (the retry function parks it)", None))
            else:
                items.append(
                    (
                        f"record {number}: retry envelope after {envelope.get('attempts', 0)} attempt(s)",
                        envelope["event"],
                    )
                )
        return "an SQS event for the retry function", items
    if isinstance(document, dict) and isinstance(document.get("event"), dict) and "last_error" in document:
        return "a retry/DLQ envelope", [("envelope", document["event"])]
    if isinstance(document, dict) and parse_incomplete(text) is not None:
        return "a retry/DLQ envelope without its event (it was too large for SQS)", [("envelope", None)]
    if isinstance(document, dict) and "body" in document and ("requestContext" in document or "routeKey" in document):
        request, kind = document, "an API Gateway HTTP API request"
    else:
        request, kind = {"body": text}, "a Signal event"
    try:
        events, is_batch = parse_events(read_body(request, settings.max_body_bytes), settings.max_batch_events)
    except BadRequest as exc:
        raise InputError(f"the webhook would answer {exc.status}: {exc.message}") from None
    if is_batch:
        kind = f"{kind} holding a batch of {len(events)}"
    return kind, [(f"event {n} of {len(events)}", event) for n, event in enumerate(events, start=1)]


# -- explaining one event ----------------------------------------------------------------------
def explain_event(
    label: str, event: Any, settings: Settings, domain: str, mapping: ContactMapping | None = None
) -> Explanation:
    mapping = settings.mapping if mapping is None else mapping
    if event is None:
        return Explanation(
            label,
            "",
            "an unreadable retry message",
            "refuse",
            reason="unreadable_message",
            why="the retry function parks it in the DLQ as unreadable; nothing is sent",
        )
    if not isinstance(event, dict):
        return Explanation(
            label,
            "",
            f"a JSON {type(event).__name__}",
            "refuse",
            reason="not_an_event",
            why="each event must be a JSON object: the webhook answers it rejected (400); nothing is sent",
        )
    region, mode = settings.default_phone_region, settings.consent_mode
    plan = plan_event(event, region=region, consent_mode=mode, mapping=mapping)
    selected = select_operation(event, mapping)
    found = Explanation(label, str(event.get("messageId") or ""), describe_kind(event), "")
    if isinstance(plan, PlannedCompany):
        explain_company(found, plan, event, region, mapping, domain)
        return found
    found.consent = consent_text(event, mode, selected)
    if isinstance(plan, PlannedContact):
        explain_contact(found, plan, event, region, mapping, domain)
        return found
    found.decision = "drop"
    found.reason = plan.reason.value
    found.why = drop_why(plan.reason, mapping)
    if isinstance(selected, Operation):
        found.operation = selected.value
    if plan.reason is DropReason.UNSUPPORTED_EVENT:
        found.why += f" (this is {found.kind})"
    if plan.reason in (DropReason.ANONYMOUS, DropReason.MISSING_NAME) and isinstance(selected, Operation):
        # What the mapping found, from the engine's own mapping function.
        contact = map_contact(event, operation=selected, region=region, consent=None, mapping=mapping)
        found.identity = {k: contact[k] for k in IDENTIFIERS if k in contact}
        found.name = contact.get("name")
    return found


def explain_contact(
    found: Explanation,
    plan: PlannedContact,
    event: Mapping[str, Any],
    region: str,
    mapping: ContactMapping,
    domain: str,
) -> None:
    operation = plan.operation
    creates = operation in (Operation.SIGN_UP, Operation.IDENTIFY)
    updates = operation in (Operation.IDENTIFY, Operation.UPDATE)
    name = event_name_of(event)
    created = fill(event, mapping.fields, region=region, creating=True, event_name=name) if creates else []
    updated = fill(event, mapping.fields, region=region, creating=False, event_name=name) if updates else []
    found.decision = "deliver"
    found.operation = operation.value
    found.why = OPERATIONS[operation] + event_specific(created or updated)
    found.identity = {k: plan.contact[k] for k in IDENTIFIERS if k in plan.contact}
    # An update-only event never sends the name a create would derive (create_only rules).
    found.name = (plan.update if operation is Operation.UPDATE else plan.contact).get("name")
    found.fields = field_rows(created, updated)
    tags = plan.contact.get("tags")
    if tags:
        found.fields.append(
            {
                "target": "tags",
                "value": tags,
                "rule": "the connector's own: marketing consent granted",
                "convert": "",
                "policy": "merge",
                "sent_on": [kind for kind, sent in (("create", creates), ("update", updates)) if sent],
            }
        )
    found.sent = sent_lines(found.fields, operation)
    base = f"https://{domain}.freshdesk.com/api/v2/contacts"
    found.before = []
    if plan.company is not None:
        found.company = {k: v for k, v in (("name", plan.company.name), ("group_id", plan.company.group_id)) if v}
        found.before.append(company_step(plan.company, domain))
    if operation is Operation.UPDATE:
        found.before.extend(update_steps(plan, base))
        if plan.update:
            found.request = {"method": "PUT", "url": f"{base}/{{id}}", "headers": HEADERS, "body": plan.update}
    else:
        found.request = {"method": "POST", "url": base, "headers": HEADERS, "body": plan.contact}
        found.on_409 = on_conflict(plan, base)
    found.before = found.before or None


def explain_company(
    found: Explanation,
    plan: PlannedCompany,
    event: Mapping[str, Any],
    region: str,
    mapping: ContactMapping,
    domain: str,
) -> None:
    found.decision = "deliver"
    found.operation = Operation.COMPANY.value
    found.why = OPERATIONS[Operation.COMPANY]
    found.consent = "not read: a group event describes a company, not a person, and is never gated on consent"
    found.identity = {"groupId": plan.group_id} if plan.group_id else {}
    found.name = plan.company["name"]
    # Only the top-level traits describe the group, as in plan_company: context.traits are the person's.
    group_event = {key: value for key, value in event.items() if key != "context"}
    rules = mapping.company_fields
    created = fill(group_event, rules, region=region, creating=True, event_name="group")
    updated = fill(group_event, rules, region=region, creating=False, event_name="group")
    built_in = [
        {
            "target": target,
            "value": plan.company[target],
            "rule": rule,
            "convert": "text",
            "policy": "merge" if target == "domains" else "overwrite",
            "sent_on": ["create", "update"],
        }
        for target, rule in BUILT_IN_COMPANY_FIELDS.items()
        if target in plan.company
    ]
    found.fields = built_in + field_rows(created, updated)
    found.sent = sent_lines(found.fields, Operation.COMPANY)
    base = f"https://{domain}.freshdesk.com/api/v2/companies"
    found.request = {"method": "POST", "url": base, "headers": HEADERS, "body": plan.company}
    read = (
        [f"GET {base}/{{id}} to read its domains: a PUT replaces them whole, so ours are added to the company's own"]
        if "domains" in plan.update
        else []
    )
    found.on_409 = {
        "outcome": "updated",
        "final": False,
        "then": [
            "a 409 means a company of that name exists: it is found by name",
            f"GET {base}/autocomplete?name={quote(plan.company['name'], safe='')} (an exact match ignoring case)",
            *read,
            f"PUT {base}/{{id}} with {json.dumps(plan.update, ensure_ascii=False)}"
            + (", its domains merged into the company's own" if "domains" in plan.update else ""),
            "with the identity map, a known company (by group id or name) skips the create: one PUT, no call"
            " when nothing is new (unchanged), and no call for an event older than the newest applied (stale)",
        ],
    }


def describe_kind(event: Mapping[str, Any]) -> str:
    kind = str(event.get("type") or "?")
    name = event.get("event") if kind == "track" else event.get("name") if kind in ("page", "screen") else None
    return f'{kind} "{name}"' if isinstance(name, str) and name else kind


def describe_mapping(mapping: ContactMapping) -> str:
    if mapping is DEFAULT_MAPPING:
        return "the Default preset (built in)"
    return f"{mapping.origin}, extending the Default preset" if mapping.extends else mapping.origin


def consent_text(event: Mapping[str, Any], mode: str, selected: Operation | DropReason) -> str:
    if mode == "off":
        return "not read (CONSENT_MODE=off): never a reason to drop, never tagged"
    reading = read_consent(event)
    value = {
        Consent.GRANTED: "granted (true)",
        Consent.DENIED: "denied (false)",
        Consent.MISSING: "missing (no true/false value)",
    }[reading]
    if isinstance(selected, DropReason):
        return f"marketing {value}; not reached, the event type decides first"
    if mode == "require":
        effect = "passes, tagged marketing-consent" if reading is Consent.GRANTED else "drops the event"
    else:  # tag_only
        effect = "passes, tagged marketing-consent" if reading is Consent.GRANTED else "passes, without the tag"
    return f"marketing {value}; the gate (CONSENT_MODE={mode}) {effect}"


def drop_why(reason: DropReason, mapping: ContactMapping) -> str:
    if reason is DropReason.UNSUPPORTED_EVENT:
        return f"the mapping ({describe_mapping(mapping)}) sends only {events_sent(mapping)} to Freshdesk"
    if reason is DropReason.ANONYMOUS:
        return (
            f"no rule for {', '.join(IDENTIFIERS[:-1])} or {IDENTIFIERS[-1]} found a usable value:"
            " Freshdesk needs an identifier"
        )
    if reason is DropReason.MISSING_NAME:
        rules = "; ".join(f"{rule.label}: {sources_text(rule)}" for rule in mapping.rules_for("name"))
        return f"an identifier but no name: no rule for name found a usable value ({rules})"
    return DROPS[reason]


def events_sent(mapping: ContactMapping) -> str:
    """The events a mapping sends, in words: `identify calls, the track events identified and signed_up`."""
    kinds = ["identify calls"] if mapping.operation_for(IDENTIFY_CALL) else []
    tracks = [rule.name for rule in mapping.events if rule.name != IDENTIFY_CALL]
    if tracks:
        named = ", ".join(tracks[:-1]) + (" and " if len(tracks) > 1 else "") + tracks[-1]
        plural = "s" if len(tracks) > 1 else ""
        kinds.append(f"the track event{plural} {named} (names compared ignoring case, spaces, _ and -)")
    if mapping.companies:
        kinds.append("group events (companies)")
    return ", ".join(kinds[:-1]) + (", and " if len(kinds) > 1 else "") + kinds[-1]


def sources_text(rule: FieldRule) -> str:
    return " or ".join(source_text(source) for source in rule.sources)


def source_text(source: Source) -> str:
    if isinstance(source, Join):
        return " + ".join("/".join(".".join(path) for path in part) for part in source.parts)
    return ".".join(source)


def event_specific(filled: list[Filled]) -> str:
    """`, with custom_fields.signup_method from properties.method`: what rules for this event alone add."""
    own = [f"{item.target} from {sources_text(item.rule)}" for item in filled if item.rule.events is not None]
    return f", with {', '.join(own)}" if own else ""


def field_rows(created: list[Filled], updated: list[Filled]) -> list[dict[str, Any]]:
    """Each field of the requests with the rule that fills it: `created` fill the create, `updated` an update.
    A target one rule fills on create and another on update is two rows."""
    rows = []
    for item in created:
        again = next((u for u in updated if u.target == item.target and u.rule is item.rule), None)
        rows.append(field_row(item, ["create", *([update_kind(again.rule)] if again else [])]))
    for item in updated:
        if not any(c.target == item.target and c.rule is item.rule for c in created):
            rows.append(field_row(item, [update_kind(item.rule)]))
    return rows


def field_row(item: Filled, sent_on: list[str]) -> dict[str, Any]:
    rule = item.rule
    return {
        "target": item.target,
        "value": item.value,
        "rule": rule.label,
        "convert": rule.convert,
        "policy": rule.policy,
        "sent_on": sent_on,
    }


def update_kind(rule: FieldRule) -> str:
    return "update_if_empty" if rule.policy == "if_empty" else "update"


def sent_lines(rows: list[dict[str, Any]], operation: Operation) -> list[str]:
    """Which fields go on create, on update, only where the contact's field is empty, and on create only."""

    def targets(kind: str, *, only: bool = False) -> str:
        chosen = [row["target"] for row in rows if kind in row["sent_on"] and (not only or len(row["sent_on"]) == 1)]
        return ", ".join(dict.fromkeys(chosen))

    creates, updates = operation is not Operation.UPDATE, operation is not Operation.SIGN_UP
    lines = [f"create: {targets('create') or 'nothing'}"] if creates else []
    if not updates:
        lines.append("never an update: a Signed Up that finds the contact ends there (conflict)")
        return lines
    lines.append(f"update: {targets('update') or 'nothing'}")
    if targets("update_if_empty"):
        lines.append(f"update, only where the contact's field is empty: {targets('update_if_empty')}")
    if creates and targets("create", only=True):
        lines.append(f"create only, never in an update: {targets('create', only=True)}")
    return lines


def company_step(ref: CompanyRef, domain: str) -> str:
    """What happens to the company a contact event names before the contact is sent."""
    group = f"group {ref.group_id}" if ref.group_id else ""
    if ref.name is None:
        return (
            f"the company of {group} is looked up in the identity map (a group event created it): its id goes into"
            " company_id; while it is unknown, the contact goes without one"
        )
    named = f'"{ref.name}"' + (f", {group}" if group else "")
    return (
        f"first the company the event names ({named}) is looked up in the identity map, or created with"
        f" POST https://{domain}.freshdesk.com/api/v2/companies {json.dumps({'name': ref.name}, ensure_ascii=False)}"
        " (a 409 finds it by name): its id goes into the request as company_id"
    )


def update_steps(plan: PlannedContact, base: str) -> list[str]:
    """How an update-only event finds the contact it updates (signal_freshdesk.core.delivery decides)."""
    key = next((name for name in LOOKUP_ORDER if isinstance(plan.contact.get(name), str)), "")
    steps = [
        f"GET {base}?{key}={quote(str(plan.contact.get(key, '')), safe='')} finds the person's contact"
        " (skipped when the identity map knows it)",
        "a person without a contact gets none: nothing is sent, and the event ends dropped, reason no_contact",
    ]
    if plan.if_empty:
        steps.append(
            f"{', '.join(sorted(plan.if_empty))} only where the contact has no value: GET {base}/{{id}} reads it"
            " when the identity map cannot say"
        )
    if not plan.update:
        steps.append("the event gives no field an update sends: no PUT (unchanged)")
    return steps


def on_conflict(plan: PlannedContact, base: str) -> dict[str, Any]:
    """What a 409 to this create leads to (signal_freshdesk.delivery and outcomes decide; this describes)."""
    if plan.operation is Operation.SIGN_UP:
        return {
            "outcome": "conflict",
            "final": True,
            "then": ["the contact already exists: recorded as success, never retried"],
        }
    company = ", plus company_id of the company the event names" if plan.company is not None else ""
    if_empty = (
        [f"{', '.join(sorted(plan.if_empty))} only where the contact has no value (the policy if_empty)"]
        if plan.if_empty
        else []
    )
    then = [
        "{id} is errors[].additional_info.user_id in the 409 body",
        f"GET {base}/{{id}} to read its tags and unique_external_id (skipped when the identity map knows them)",
        f"PUT {base}/{{id}} with only what the event says: {json.dumps(plan.update, ensure_ascii=False)}"
        + company
        + (", plus our tag merged into the contact's own (ignoring case)" if plan.contact.get("tags") else ""),
        *if_empty,
        "a contact with another unique_external_id keeps it: that field is left out (identity_mismatch)",
        "a 405 (deleted in Freshdesk) ends deleted_in_freshdesk; a 409 naming two contacts ends conflict",
        "with the identity map, a returning person skips the create: one PUT to the known id, no call when"
        " nothing is new (unchanged), and no call for an event older than the newest applied (stale)",
    ]
    return {"outcome": "updated", "final": False, "then": then}


# -- output ------------------------------------------------------------------------------------
def render_text(out: TextIO, kind: str, explanations: list[Explanation], settings: Settings) -> None:
    out.write(
        f"Input: {kind}. Mapping: {describe_mapping(settings.mapping)}; CONSENT_MODE={settings.consent_mode}, "
        f"DEFAULT_PHONE_REGION={settings.default_phone_region}. Nothing is sent.\n"
    )
    if settings.consent_mode != "off":
        out.write(f"Marketing consent is read from {CONSENT_SOURCE}.\n")
    for item in explanations:
        named = f"  messageId {item.message_id}" if item.message_id else ""
        out.write(f"\n[{item.label}] {item.kind}{named}\n")
        if item.decision == "deliver":
            out.write(f"  decision  deliver: {item.why} (operation {item.operation})\n")
        else:
            out.write(f"  decision  {item.decision}, reason {item.reason}: {item.why}\n")
        if item.consent:
            out.write(f"  consent   {item.consent}\n")
        if item.identity is not None:
            ids = ", ".join(f"{k} {v}" for k, v in item.identity.items()) or "none"
            out.write(f"  identity  {ids}; name {json.dumps(item.name) if item.name else 'none'}\n")
        _block(out, "before", item.before or [])
        if item.request:
            request = item.request
            out.write(f"  request   {request['method']} {request['url']}\n")
            for name, value in request["headers"].items():
                out.write(f"            {name}: {value}\n")
            body = json.dumps(request["body"], indent=2, ensure_ascii=False)
            out.write("".join(f"            {line}\n" for line in body.splitlines()))
        if item.fields:
            width = max(len(row["target"]) for row in item.fields)
            _block(out, "fields", [_field_text(row, width) for row in item.fields])
        _block(out, "sent on", item.sent or [])
        if item.on_409:
            conflict = item.on_409
            record = "company" if item.operation == Operation.COMPANY.value else "contact"
            out.write(
                f"  on 409    {conflict['outcome']}: "
                f"{'final' if conflict['final'] else f'the existing {record} is updated instead'}\n"
            )
            for step in conflict["then"]:
                out.write(f"            {step}\n")


def _field_text(row: Mapping[str, Any], width: int) -> str:
    how = "".join(f"{name} {row[name]}, " for name in ("convert", "policy") if row[name])
    return f"{row['target']:<{width}}  {row['rule']}; {how}on {' and '.join(SENT_ON[s] for s in row['sent_on'])}"


def _block(out: TextIO, label: str, lines: list[str]) -> None:
    for number, line in enumerate(lines):
        out.write(f"  {label if number == 0 else '':<8}  {line}\n")


def render_json(out: TextIO, kind: str, explanations: list[Explanation], settings: Settings, domain: str) -> None:
    out.write(
        json.dumps(
            {
                "input": kind,
                "mapping": {"origin": settings.mapping.origin, "extends": settings.mapping.extends},
                "consent_mode": settings.consent_mode,
                "region": settings.default_phone_region,
                "domain": domain,
                "events": [e.as_dict() for e in explanations],
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


def main(
    argv: list[str] | None = None,
    *,
    out: TextIO | None = None,
    stdin: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    out = out or sys.stdout
    env = dict(os.environ if env is None else env)
    parser = argparse.ArgumentParser(
        prog="python -m signal_freshdesk_dev.explain", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument("file", metavar="FILE", help="a JSON file, or - for standard input")
    parser.add_argument(
        "--mapping",
        metavar="PATH",
        help="a mapping file, or default for the built-in Default preset (default: MAPPING_FILE, else"
        " layers/connector/mapping.json when it exists, else the Default preset)",
    )
    parser.add_argument("--domain", help="your Freshdesk subdomain (default: FRESHDESK_DOMAIN, else a placeholder)")
    parser.add_argument(
        "--consent-mode",
        choices=("require", "tag_only", "off"),
        help="override CONSENT_MODE (default: the environment's, else require)",
    )
    parser.add_argument("--region", help="override DEFAULT_PHONE_REGION (default: the environment's, else GB)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    if args.mapping:
        env["MAPPING_FILE"] = args.mapping
    if args.consent_mode:
        env["CONSENT_MODE"] = args.consent_mode
    if args.region:
        env["DEFAULT_PHONE_REGION"] = args.region
    try:
        settings = Settings.from_env(env)
        raw_domain = args.domain or env.get("FRESHDESK_DOMAIN", "").strip()
        domain = normalise_domain(raw_domain) if raw_domain else PLACEHOLDER_DOMAIN
    except ConfigError as exc:
        print(f"explain: {str(exc).replace(DOMAIN_IN_SECRET, '--domain / FRESHDESK_DOMAIN')}", file=sys.stderr)
        return 2
    try:
        if args.file == "-":
            text = (stdin or sys.stdin).read()
        else:
            with open(args.file, encoding="utf-8") as handle:
                text = handle.read()
        kind, events = signal_events(text, settings)
    except (OSError, UnicodeDecodeError, InputError) as exc:
        print(f"explain: {exc}", file=sys.stderr)
        return 2
    explanations = [explain_event(label, event, settings, domain) for label, event in events]
    try:
        if args.json:
            render_json(out, kind, explanations, settings, domain)
        else:
            render_text(out, kind, explanations, settings)
        out.flush()
    except BrokenPipeError:  # piped into head or less and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
