"""Explain what the Default preset does with an event, and the exact Freshdesk request it would send.

    python -m signal_freshdesk_dev.explain FILE|-  [--domain acme] [--consent-mode M] [--region R] [--json]
    make explain EVENT=events/signed-up.json

The input is a Signal event, a batch (a JSON array or {"batch": [...]}), an API Gateway HTTP API request
whose body holds one (the events/*.json samples), or an SQS event for the retry function. The decision
comes from the connector's own code (signal_freshdesk.preset.plan_event, with CONSENT_MODE and
DEFAULT_PHONE_REGION read as the functions read them); nothing is sent anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from signal_freshdesk.adapters.freshdesk import USER_AGENT
from signal_freshdesk.core.credentials import normalise_domain
from signal_freshdesk.core.envelope import parse_envelope, parse_incomplete
from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.mapping import IDENTIFIERS, map_contact, plan_event, read_consent, select_operation
from signal_freshdesk.core.model import Consent, DropReason, Operation, PlannedContact
from signal_freshdesk.core.requests import BadRequest, parse_events, read_body
from signal_freshdesk.core.settings import Settings

PLACEHOLDER_DOMAIN = "<your-domain>"
DOMAIN_IN_SECRET = "the secret's 'domain'"
CONSENT_SOURCE = "context.consent.canonical.marketing (the legacy context.consent.marketing where canonical is absent)"

OPERATIONS = {
    Operation.SIGN_UP: "create the contact, with custom_fields.signup_method from properties.method",
    Operation.IDENTIFY: "create the contact; if it already exists, update it",
}
DROPS = {
    DropReason.PAGE_VIEW: "page and screen events never reach Freshdesk",
    DropReason.UNSUPPORTED_EVENT: "only identify, Identified and Signed Up reach Freshdesk",
    DropReason.CONSENT_DENIED: (
        "marketing consent is false and CONSENT_MODE is require: nothing is created; if the person already"
        " has a contact, our marketing-consent tag is taken off it and nothing else changes (consent_withdrawn)"
    ),
    DropReason.CONSENT_MISSING: "there is no marketing consent value and CONSENT_MODE is require",
    DropReason.ANONYMOUS: "no user id, usable email or usable phone: Freshdesk needs an identifier",
    DropReason.MISSING_NAME: "an identifier but no name (traits.name, first and last name, or a usable email)",
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
    request: dict[str, Any] | None = None
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
            "request": self.request,
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
def explain_event(label: str, event: Any, settings: Settings, domain: str) -> Explanation:
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
    plan = plan_event(event, region=region, consent_mode=mode)
    selected = select_operation(event)
    found = Explanation(label, str(event.get("messageId") or ""), describe_kind(event), "")
    found.consent = consent_text(event, mode, selected)
    if isinstance(plan, PlannedContact):
        found.decision = "deliver"
        found.operation = plan.operation.value
        found.why = OPERATIONS[plan.operation]
        found.identity = {k: plan.contact[k] for k in IDENTIFIERS if k in plan.contact}
        found.name = plan.contact.get("name")
        base = f"https://{domain}.freshdesk.com/api/v2/contacts"
        found.request = {
            "method": "POST",
            "url": base,
            "headers": {
                "Authorization": "Basic <redacted>",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            "body": plan.contact,
        }
        found.on_409 = on_conflict(plan, base)
        return found
    found.decision = "drop"
    found.reason = plan.reason.value
    found.why = DROPS[plan.reason]
    if isinstance(selected, Operation):
        found.operation = selected.value
    if plan.reason is DropReason.UNSUPPORTED_EVENT:
        found.why += f" (this is {found.kind})"
    if plan.reason in (DropReason.ANONYMOUS, DropReason.MISSING_NAME) and isinstance(selected, Operation):
        # What the mapping found, from the preset's own mapping function.
        contact = map_contact(event, operation=selected, region=region, consent=None)
        found.identity = {k: contact[k] for k in IDENTIFIERS if k in contact}
        found.name = contact.get("name")
    return found


def describe_kind(event: Mapping[str, Any]) -> str:
    kind = str(event.get("type") or "?")
    name = event.get("event") if kind == "track" else event.get("name") if kind in ("page", "screen") else None
    return f'{kind} "{name}"' if isinstance(name, str) and name else kind


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


def on_conflict(plan: PlannedContact, base: str) -> dict[str, Any]:
    """What a 409 to this create leads to (signal_freshdesk.delivery and outcomes decide; this describes)."""
    if plan.operation is Operation.SIGN_UP:
        return {
            "outcome": "conflict",
            "final": True,
            "then": ["the contact already exists: recorded as success, never retried"],
        }
    then = [
        "{id} is errors[].additional_info.user_id in the 409 body",
        f"GET {base}/{{id}} to read its tags and unique_external_id (skipped when the identity map knows them)",
        f"PUT {base}/{{id}} with only what the event says: {json.dumps(plan.update, ensure_ascii=False)}"
        + (", plus our tag merged into the contact's own (ignoring case)" if plan.contact.get("tags") else ""),
        "a contact with another unique_external_id keeps it: that field is left out (identity_mismatch)",
        "a 405 (deleted in Freshdesk) ends deleted_in_freshdesk; a 409 naming two contacts ends conflict",
        "with the identity map, a returning person skips the create: one PUT to the known id, no call when"
        " nothing is new (unchanged), and no call for an event older than the newest applied (stale)",
    ]
    return {"outcome": "updated", "final": False, "then": then}


# -- output ------------------------------------------------------------------------------------
def render_text(out: TextIO, kind: str, explanations: list[Explanation], settings: Settings) -> None:
    out.write(
        f"Input: {kind}. Default preset with CONSENT_MODE={settings.consent_mode}, "
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
        if item.request:
            request = item.request
            out.write(f"  request   {request['method']} {request['url']}\n")
            for name, value in request["headers"].items():
                out.write(f"            {name}: {value}\n")
            body = json.dumps(request["body"], indent=2, ensure_ascii=False)
            out.write("".join(f"            {line}\n" for line in body.splitlines()))
        if item.on_409:
            conflict = item.on_409
            out.write(
                f"  on 409    {conflict['outcome']}: "
                f"{'final' if conflict['final'] else 'the existing contact is updated instead'}\n"
            )
            for step in conflict["then"]:
                out.write(f"            {step}\n")


def render_json(out: TextIO, kind: str, explanations: list[Explanation], settings: Settings, domain: str) -> None:
    out.write(
        json.dumps(
            {
                "input": kind,
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
    parser.add_argument("--domain", help="your Freshdesk subdomain (default: FRESHDESK_DOMAIN, else a placeholder)")
    parser.add_argument(
        "--consent-mode",
        choices=("require", "tag_only", "off"),
        help="override CONSENT_MODE (default: the environment's, else require)",
    )
    parser.add_argument("--region", help="override DEFAULT_PHONE_REGION (default: the environment's, else GB)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
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
