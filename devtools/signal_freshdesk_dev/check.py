"""Check the Freshdesk domain and API key with one read-only call; nothing is created.

    python -m signal_freshdesk_dev.check                      FRESHDESK_DOMAIN + FRESHDESK_API_KEY   (or: make check)
    python -m signal_freshdesk_dev.check --stack NAME [--region R]      the deployed stack's secret
    python -m signal_freshdesk_dev.check --local                         the secret of a running `make serve`
    python -m signal_freshdesk_dev.check --sandbox                       the local Freshdesk sandbox (to try it)

One read-only request, GET /api/v2/contact_fields, with the configured domain and key (no test
contact is created). Reports 200, 401, 403 or 404 with the README troubleshooting table's fix, a
connection or TLS failure, and whether the `signup_method` contact field exists. Exit status 0 when
all is good, 1 otherwise. The API key is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from signal_freshdesk.adapters.freshdesk import FreshdeskClient
from signal_freshdesk.core.credentials import Credentials, parse_credentials
from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.model import Answer

from .apigw import LOCAL_WEBHOOK_TOKEN
from .sandbox import FreshdeskSandbox
from .serve import STATE_FILE, ServeError, read_state, serve_client

SIGNUP_FIELD = "signup_method"

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


def run_check(target: Target, *, out: TextIO, client: FreshdeskClient | None = None) -> int:
    client = client or FreshdeskClient(base_url_override=target.base_url_override)
    creds = target.credentials
    url = creds.base_url(target.base_url_override) + "/api/v2/contact_fields"
    out.write("Freshdesk credentials check (read-only: nothing is created)\n")
    out.write(f"  credentials  {target.source}\n")
    out.write(f"  request      GET {url}\n")
    answer = client.list_contact_fields(creds)
    good = _report(answer, out)
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
    names = {str(f.get("name", "")).removeprefix("cf_") for f in answer.body if isinstance(f, dict)}
    if SIGNUP_FIELD in names:
        _line(out, "ok", f"contact field {SIGNUP_FIELD} exists (Signed Up sends custom_fields.{SIGNUP_FIELD})")
        return True
    _line(
        out,
        "WARN",
        f"contact field {SIGNUP_FIELD} does not exist: Freshdesk would reject Signed Up events' "
        f"custom_fields.{SIGNUP_FIELD} (400 invalid_field)",
    )
    _line(
        out,
        "",
        "the connector then re-sends the contact without that field, logs a warning and counts "
        f"invalid_field_dropped_{SIGNUP_FIELD}; create it in Admin > Contact Fields",
    )
    return False


def _line(out: TextIO, label: str, text: str) -> None:
    out.write(f"  {label:<11}  {text}\n")


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


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


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m signal_freshdesk_dev.check", description=__doc__.strip().splitlines()[0]
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", metavar="NAME", help="read the secret of this deployed stack (its SecretArn output)")
    where.add_argument("--local", action="store_true", help="read the secret of the running make serve")
    where.add_argument("--sandbox", action="store_true", help="start the Freshdesk sandbox and check against it")
    parser.add_argument("--region", help="AWS region of the stack (default: your AWS configuration's)")
    parser.add_argument("--state-file", type=Path, default=STATE_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.region and not args.stack:
        parser.error("--region goes with --stack")
    try:
        if args.sandbox:
            with FreshdeskSandbox() as sandbox:
                creds = Credentials(domain="sandbox", api_key=sandbox.api_key, webhook_token=LOCAL_WEBHOOK_TOKEN)
                return run_check(Target(creds, "the Freshdesk sandbox's own key", sandbox.base_url), out=out)
        if args.stack:
            target = target_from_stack(args.stack, args.region)
        elif args.local:
            target = target_from_serve(args.state_file)
        else:
            target = target_from_env(os.environ)
    except CheckError as exc:
        out.write(f"check: {exc}\n")
        return 1
    return run_check(target, out=out)


if __name__ == "__main__":
    sys.exit(main())
