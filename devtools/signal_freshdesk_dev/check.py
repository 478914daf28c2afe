"""Check the Freshdesk domain and API key with one read-only call, and the mapping against the account.

    python -m signal_freshdesk_dev.check                      FRESHDESK_DOMAIN + FRESHDESK_API_KEY   (or: make check)
    python -m signal_freshdesk_dev.check --stack NAME [--region R]      the deployed stack's secret
    python -m signal_freshdesk_dev.check --local                         the secret of a running `make serve`
    python -m signal_freshdesk_dev.check --sandbox                       the local Freshdesk sandbox (to try it)
    ... [--mapping PATH]                                                 another mapping than the one in use

One read-only request, GET /api/v2/contact_fields, with the configured domain and key (no test
contact is created). Reports 200, 401, 403 or 404 with the README troubleshooting table's fix, or a
connection or TLS failure. With a 200, the mapping in use (MAPPING_FILE, else
layers/connector/mapping.json, else the Default preset; --mapping overrides) is compared with the
account's contact fields: every mismatch is listed, naming the rule. Exit status 0 when all is good,
1 otherwise. The API key is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from signal_freshdesk.adapters.freshdesk import FreshdeskClient
from signal_freshdesk.core.credentials import Credentials, parse_credentials
from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.model import Answer
from signal_freshdesk.core.rules import DEFAULT_MAPPING, IDENTIFY_CALL, ContactMapping, FieldRule
from signal_freshdesk.core.settings import mapping_from_env

from .apigw import LOCAL_WEBHOOK_TOKEN
from .explain import describe_mapping
from .sandbox import FreshdeskSandbox
from .serve import STATE_FILE, ServeError, read_state, serve_client

CUSTOM = "custom_fields."
# Standard targets the account's contact fields list under another name.
ACCOUNT_FIELD_OF = {"company_id": "company_name", "other_emails": "email", "view_all_tickets": "client_manager"}
# The custom field type a conversion's values need (the other conversions make text).
TYPE_OF_CONVERSION = {"integer": "custom_number", "boolean": "custom_checkbox", "date": "custom_date"}
MADE_BY = {"integer": "a number", "boolean": "true or false", "date": "a date"}
# What the typed custom fields take; every other type takes text.
TAKES = {
    "custom_number": "a whole number (convert integer, or a value table of whole numbers)",
    "custom_checkbox": "true or false (convert boolean, or a value table of true and false)",
    "custom_date": "a date (convert date)",
}
TEXT_TYPES = ("custom_text", "custom_paragraph", "custom_url", "custom_phone_number", "custom_dropdown")

# The README's troubleshooting table ("### Troubleshooting"), row by row: symptom, likely cause, fix.
# tests/devtools/test_check.py holds these to the README's text, so both say the same thing.
TROUBLESHOOTING: dict[int, tuple[str, str, str]] = {
    401: (
        "401 `outcome: rejected`, Freshdesk `invalid_credentials`",
        "wrong or missing API key",
        "copy the key again from Profile Settings, with no trailing spaces, into the secret's `api_key`",
    ),
    403: (
        "403 `access_denied`",
        "the agent's role can't manage contacts",
        "use a key from an agent (or a service agent) with contact-write permission",
    ),
    404: ("404", "wrong Freshdesk domain", "put only the subdomain in the secret (`acme`, not the full URL)"),
}


@dataclass(frozen=True)
class Target:
    """Where the credentials came from, and where the call goes."""

    credentials: Credentials
    source: str
    base_url_override: str = ""


class CheckError(Exception):
    """The credentials could not even be read; the message says what to fix."""


def describe_transport_error(error: str) -> str:
    """What a failed connection means (urllib3 reports the error's kind, never the key)."""
    if "SSL" in error or "Certificate" in error:
        return (
            "the TLS handshake failed: the certificate was not accepted (a proxy that intercepts TLS, "
            "or a wrong system clock?)"
        )
    if "NameResolution" in error or "gaierror" in error:
        return "the host name does not resolve: check the domain (only the subdomain, e.g. acme) and your DNS"
    if "ReadTimeout" in error:
        return "Freshdesk accepted the connection but did not answer in time"
    return "could not connect: check your network, firewall or proxy"


def run_check(
    target: Target,
    *,
    out: TextIO,
    client: FreshdeskClient | None = None,
    mapping: ContactMapping = DEFAULT_MAPPING,
) -> int:
    client = client or FreshdeskClient(base_url_override=target.base_url_override)
    creds = target.credentials
    url = creds.base_url(target.base_url_override) + "/api/v2/contact_fields"
    out.write("Freshdesk credentials check (read-only: nothing is created)\n")
    out.write(f"  credentials  {target.source}\n")
    out.write(f"  request      GET {url}\n")
    answer = client.contact_fields(creds)
    good = _report(answer, out) and _report_mapping(mapping, answer.body, out)
    out.write(f"result: {'all good' if good else 'NOT ready, see above'}\n")
    return 0 if good else 1


def _report(answer: Answer, out: TextIO) -> bool:
    status = answer.status
    if status is None:
        _line(out, "FAIL", f"no answer ({answer.error or 'connection failed'})")
        _line(out, "", describe_transport_error(answer.error))
        return False
    if status in TROUBLESHOOTING:
        _symptom, cause, fix = TROUBLESHOOTING[status]
        code = answer.body.get("code") if isinstance(answer.body, dict) else None
        named = f" (Freshdesk code {code})" if isinstance(code, str) else ""
        _line(out, "FAIL", f"{status} {_phrase(status)}{named}")
        _line(out, "", f"likely cause: {cause}")
        _line(out, "", f"fix: {fix.replace('`', '')}")
        return False
    if status == 429:
        wait = answer.header("Retry-After")
        _line(
            out,
            "FAIL",
            "429 Too Many Requests: the account's per-minute API limit is used up; try again "
            + (f"in {wait} s" if wait else "in a minute"),
        )
        return False
    if status != 200 or not isinstance(answer.body, list):
        _line(out, "FAIL", f"{status} {_phrase(status)}: an unexpected answer to GET /api/v2/contact_fields")
        return False
    _line(out, "ok", "200 OK: the domain and the API key are accepted")
    remaining, total = answer.header("X-RateLimit-Remaining"), answer.header("X-RateLimit-Total")
    if remaining and total:
        _line(out, "info", f"rate limit: {remaining} of {total} calls left this minute (shared by every integration)")
    return True


def _report_mapping(mapping: ContactMapping, contact_fields: list[Any], out: TextIO) -> bool:
    """The mapping against the account's contact fields: the custom fields found, then every mismatch."""
    rules = len(mapping.fields)
    _line(out, "mapping", f"{describe_mapping(mapping)}: {rules} contact field rules")
    fields = account_fields(contact_fields)
    for target in dict.fromkeys(rule.target for rule in mapping.fields if rule.target.startswith(CUSTOM)):
        if target in fields:
            labels = ", ".join(rule.label for rule in mapping.rules_for(target))
            found = fields[target]
            _line(out, "ok", f"contact field {found.name} exists ({found.type}), filled by {labels}")
    mismatches = mapping_mismatches(mapping, contact_fields)
    for mismatch in mismatches:
        _line(out, "MISMATCH", mismatch)
    if mapping.company_fields:
        _line(
            out,
            "info",
            f"{len(mapping.company_fields)} company field rule(s) not checked: this check reads contact fields only",
        )
    if mismatches:
        _line(
            out,
            "FAIL",
            f"mapping: {len(mismatches)} mismatch{'es' if len(mismatches) > 1 else ''} in {rules} rules checked"
            " against the account's contact fields",
        )
        return False
    _line(out, "ok", f"mapping: {rules} rules checked against the account's contact fields; no mismatch")
    return True


def _line(out: TextIO, label: str, text: str) -> None:
    out.write(f"  {label:<11}  {text}\n")


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# -- the mapping against the account's contact fields ------------------------------------------
@dataclass(frozen=True)
class AccountField:
    """One of the account's contact fields, as GET /api/v2/contact_fields lists it."""

    name: str  # without the cf_ prefix Freshdesk may give custom fields
    type: str
    required: bool = False
    choices: tuple[str, ...] = ()


def account_fields(contact_fields: Iterable[Any]) -> dict[str, AccountField]:
    """The account's contact fields by the target that fills them: `custom_fields.<name>` for a custom
    field, the field's own name for a standard one."""
    fields = {}
    for raw in contact_fields:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            continue
        kind = str(raw.get("type") or "")
        custom = kind.startswith("custom_") or raw.get("default") is False
        name = raw["name"].removeprefix("cf_") if custom else raw["name"]
        found = AccountField(name, kind, raw.get("required_for_agents") is True, _choices(raw.get("choices")))
        fields[f"{CUSTOM}{name}" if custom else name] = found
    return fields


def _choices(raw: object) -> tuple[str, ...]:
    """A dropdown's choices: a list of texts, of {"value" or "label"} objects, or an object keyed by them."""
    if isinstance(raw, dict):
        return tuple(str(key) for key in raw)
    if not isinstance(raw, list):
        return ()
    found = []
    for choice in raw:
        if isinstance(choice, dict):
            choice = choice.get("value", choice.get("label"))
        if isinstance(choice, str):
            found.append(choice)
    return tuple(found)


def mapping_mismatches(mapping: ContactMapping, contact_fields: Iterable[Any]) -> list[str]:
    """Everything in `mapping` the account's contact fields do not fit, each naming its rule: a custom field
    the account lacks or whose type the rule's values do not fit, a standard field it does not list, and a
    field it requires for agents that no rule fills."""
    fields = account_fields(contact_fields)
    mismatches = []
    for rule in mapping.fields:
        if rule.target.startswith(CUSTOM):
            found = fields.get(rule.target)
            problem = _type_problem(rule, found) if found is not None else _missing_custom(rule)
        else:
            name = ACCOUNT_FIELD_OF.get(rule.target, rule.target)
            problem = (
                None
                if name in fields
                else f"the account's contact fields do not list {name}: Freshdesk would reject it (400 invalid_field)"
            )
        if problem:
            mismatches.append(f"{rule.label}: {rule.target}: {problem}")
    filled = {rule.target for rule in mapping.fields}
    for target, found in fields.items():
        fillers = {target} | {t for t, name in ACCOUNT_FIELD_OF.items() if name == target}
        if found.required and not fillers & filled:
            mismatches.append(
                f"{mapping.origin}: no rule fills contact field {found.name}, which the account marks required"
                f" for agents: contacts the connector makes lack it (add a rule for {min(fillers)})"
            )
    return mismatches


def _missing_custom(rule: FieldRule) -> str:
    name = rule.target.removeprefix(CUSTOM)
    return (
        f"contact field {name} does not exist: Freshdesk would reject {rule.target} on {_events_of(rule)}"
        " (400 invalid_field); the connector then re-sends the contact without that field, logs a warning and"
        f" counts invalid_field_dropped_{name}; create it in Admin > Contact Fields"
    )


def _events_of(rule: FieldRule) -> str:
    if rule.events is None:
        return "every contact event"
    names = sorted("identify calls" if name == IDENTIFY_CALL else f"{name} events" for name in rule.events)
    return " and ".join(names)


def _type_problem(rule: FieldRule, found: AccountField) -> str | None:
    """Why the values `rule` makes do not fit the custom field `found`, or None when they do."""
    convert, kind = rule.convert, found.type
    field = f"contact field {found.name} is a {kind}"
    needed = TYPE_OF_CONVERSION.get(convert)
    if needed is not None and kind != needed:
        return f"{field}, but the conversion {convert} makes {MADE_BY[convert]}, which only a {needed} takes"
    if convert == "table":
        return _table_problem(rule, found, field)
    if kind == "custom_dropdown":
        return (
            f"{field} (choices {_listed(found.choices)}) filled by the conversion {convert}, not a value table:"
            " its values are not checked against the choices, and Freshdesk rejects any other value"
            " (400 invalid_value); convert with a table whose values are its choices"
        )
    if kind in TAKES and needed is None:
        return f"{field}, which takes {TAKES[kind]}, not text (the conversion {convert})"
    return None


def _table_problem(rule: FieldRule, found: AccountField, field: str) -> str | None:
    kind = found.type
    if kind == "custom_date":
        return f"{field}, which takes {TAKES[kind]}, not a value table"
    fits = {
        "custom_dropdown": lambda value: isinstance(value, str) and value in found.choices,
        "custom_number": lambda value: isinstance(value, int) and not isinstance(value, bool),
        "custom_checkbox": lambda value: isinstance(value, bool),
    }.get(kind, (lambda value: isinstance(value, str)) if kind in TEXT_TYPES else None)
    if fits is None:  # a type this check does not know: nothing to say
        return None
    misfits = [(value, otherwise) for value, otherwise in table_values(rule) if not fits(value)]
    if not misfits:
        return None
    given = ", ".join(json.dumps(value) + (" (otherwise)" if otherwise else "") for value, otherwise in misfits)
    if kind == "custom_dropdown":
        return f"{field}; the value table gives {given}, not among its choices {_listed(found.choices)}"
    return f"{field}, which takes {TAKES.get(kind, 'text')}; the value table gives {given}"


def table_values(rule: FieldRule) -> list[tuple[Any, bool]]:
    """The values a table rule can send, each once, with whether it is the `otherwise` fallback."""
    values = [(value, False) for value in dict.fromkeys((rule.table or {}).values())]
    if rule.otherwise is not None and rule.otherwise not in [value for value, _ in values]:
        values.append((rule.otherwise, True))
    return values


def _listed(choices: tuple[str, ...]) -> str:
    return ", ".join(json.dumps(choice) for choice in choices) if choices else "(none)"


def sandbox_fields(mapping: ContactMapping) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """The custom contact fields a sandbox needs for `mapping` to fit it: typed fields, and dropdowns with
    the choices the value tables give (the first rule for a target decides)."""
    types: dict[str, str] = {}
    choices: dict[str, tuple[str, ...]] = {}
    for rule in mapping.fields:
        name = rule.target.removeprefix(CUSTOM)
        if not rule.target.startswith(CUSTOM) or name in types or name in choices:
            continue
        values = [value for value, _ in table_values(rule)]
        if rule.convert == "table" and all(isinstance(value, str) for value in values):
            choices[name] = tuple(values)
        elif rule.convert == "table":
            numbers = all(isinstance(value, int) and not isinstance(value, bool) for value in values)
            flags = all(isinstance(value, bool) for value in values)
            types[name] = "custom_number" if numbers else "custom_checkbox" if flags else "custom_text"
        else:
            types[name] = TYPE_OF_CONVERSION.get(rule.convert, "custom_text")
    return types, choices


# -- where the credentials come from -----------------------------------------------------------
def target_from_env(env: Mapping[str, str]) -> Target:
    domain, api_key = env.get("FRESHDESK_DOMAIN", ""), env.get("FRESHDESK_API_KEY", "")
    if not domain.strip() and not api_key.strip():
        raise CheckError("set FRESHDESK_DOMAIN and FRESHDESK_API_KEY, or use --stack NAME, --local or --sandbox")
    token = env.get("WEBHOOK_TOKEN", "").strip() or LOCAL_WEBHOOK_TOKEN  # what make serve would put in its secret
    try:
        creds = parse_credentials({"domain": domain, "api_key": api_key, "webhook_token": token})
    except ConfigError as exc:
        raise CheckError(
            str(exc)
            .replace("the secret's 'domain'", "FRESHDESK_DOMAIN")
            .replace("the secret's 'api_key'", "FRESHDESK_API_KEY")
            .replace("the secret's 'webhook_token'", "WEBHOOK_TOKEN")
        ) from None
    return Target(creds, f"FRESHDESK_DOMAIN={creds.domain} and FRESHDESK_API_KEY from the environment")


def target_from_secret_text(text: str | None, source: str, base_url_override: str = "") -> Target:
    try:
        secret = json.loads(text or "")
    except ValueError:
        raise CheckError(f'{source} is not JSON: expected {{"domain", "api_key", "webhook_token"}}') from None
    try:
        creds = parse_credentials(secret)
    except ConfigError as exc:
        raise CheckError(f"{source}: {exc}") from None
    return Target(creds, f"{source} (domain {creds.domain})", base_url_override)


def target_from_stack(stack: str, region: str | None) -> Target:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from .dlq import QueueLookupError, stack_outputs

    try:
        session = boto3.session.Session(region_name=region)
        outputs = stack_outputs(session.client("cloudformation"), stack)
        secret_arn = outputs.get("SecretArn")
        if not secret_arn:
            raise CheckError(f"stack {stack} has no SecretArn output: is it a signal-freshdesk stack?")
        text = session.client("secretsmanager").get_secret_value(SecretId=secret_arn).get("SecretString")
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CheckError(f"AWS refused: {error.get('Code', 'ClientError')}: {error.get('Message', '')}") from None
    except BotoCoreError as exc:
        raise CheckError(f"AWS could not be reached: {exc}") from None
    except QueueLookupError as exc:
        raise CheckError(str(exc)) from None
    return target_from_secret_text(text, f"stack {stack}'s secret")


def target_from_serve(state_path: Path) -> Target:
    try:
        state = read_state(state_path)
    except ServeError as exc:
        raise CheckError(str(exc)) from None
    secrets = serve_client(state, "secretsmanager")
    try:
        text = secrets.get_secret_value(SecretId=state["secret_arn"]).get("SecretString")
    except Exception as exc:  # moto gone: the serve process died without removing its state file
        raise CheckError(f"the local AWS of make serve did not answer ({type(exc).__name__}): is it running?") from None
    return target_from_secret_text(text, "the secret of the running make serve", state.get("freshdesk_base_url", ""))


def main(argv: list[str] | None = None, *, out: TextIO | None = None, env: Mapping[str, str] | None = None) -> int:
    out = out or sys.stdout
    env = dict(os.environ if env is None else env)
    parser = argparse.ArgumentParser(
        prog="python -m signal_freshdesk_dev.check", description=__doc__.strip().splitlines()[0]
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", metavar="NAME", help="read the secret of this deployed stack (its SecretArn output)")
    where.add_argument("--local", action="store_true", help="read the secret of the running make serve")
    where.add_argument("--sandbox", action="store_true", help="start the Freshdesk sandbox and check against it")
    parser.add_argument("--region", help="AWS region of the stack (default: your AWS configuration's)")
    parser.add_argument(
        "--mapping",
        metavar="PATH",
        help="the mapping file to compare with the account, or default for the built-in Default preset"
        " (default: MAPPING_FILE, else layers/connector/mapping.json when it exists, else the Default preset)",
    )
    parser.add_argument("--state-file", type=Path, default=STATE_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.region and not args.stack:
        parser.error("--region goes with --stack")
    if args.mapping:
        env["MAPPING_FILE"] = args.mapping
    try:
        mapping = mapping_from_env(env)
    except ConfigError as exc:
        out.write(f"check: {exc}\n")
        return 1
    try:
        if args.sandbox:
            types, choices = sandbox_fields(mapping)
            with FreshdeskSandbox(custom_fields=(), custom_field_types=types, custom_field_choices=choices) as sandbox:
                creds = Credentials(domain="sandbox", api_key=sandbox.api_key, webhook_token=LOCAL_WEBHOOK_TOKEN)
                source = "the Freshdesk sandbox's own key (its custom contact fields are those the mapping fills)"
                return run_check(Target(creds, source, sandbox.base_url), out=out, mapping=mapping)
        if args.stack:
            target = target_from_stack(args.stack, args.region)
        elif args.local:
            target = target_from_serve(args.state_file)
        else:
            target = target_from_env(env)
    except CheckError as exc:
        out.write(f"check: {exc}\n")
        return 1
    return run_check(target, out=out, mapping=mapping)


if __name__ == "__main__":
    sys.exit(main())
