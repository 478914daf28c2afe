"""List what is parked in the dead-letter queue, and replay it to the retry queue once the account is fixed.

    python -m signal_freshdesk_dev.dlq list   (--stack NAME [--region R] | --local) [--json]
    python -m signal_freshdesk_dev.dlq replay (--stack NAME [--region R] | --local)
                                              [--status 400] [--outcome rejected] [--message-id ID] [--dry-run]

`list` shows each parked event's messageId, outcome, Freshdesk status, error codes, attempts and age,
never the event's contact data or Freshdesk's message texts. `replay` sends each matching envelope back
to the retry queue with a fresh retry budget (attempts 0, first_seen now; last_error kept) and deletes
it from the DLQ only once that send succeeded. Unreadable messages are listed, never replayed; so are
envelopes that were too large for SQS and kept no event (listed with their ids, outcome `unreadable`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from signal_freshdesk.core import envelope as envelope_format
from signal_freshdesk.core.envelope import parse_envelope, parse_incomplete

from .serve import STATE_FILE, ServeError, read_state, serve_client

# How long a listed message stays hidden from other readers while a pass is under way.
LIST_VISIBILITY_SECONDS = 30
REPLAY_VISIBILITY_SECONDS = 120
DEFAULT_LIMIT = 1000
# Freshdesk's codes and field names are identifiers; its summary text is a short phrase. Anything else
# (an email, a phone number, an echoed value) is withheld.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.\[\]-]{1,64}$")
_PHRASE = re.compile(r"^[A-Za-z][A-Za-z .,'()-]{0,79}$")


@dataclass(frozen=True)
class Parked:
    """One DLQ message, described without the event's contact data."""

    sqs_message_id: str
    receipt_handle: str
    message_id: str
    outcome: str
    status: int | None
    reason: str
    freshdesk: str
    attempts: int | None
    first_seen: float | None
    parked_at: float | None
    envelope: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def replayable(self) -> bool:
        return self.envelope is not None and self.outcome != "unreadable"

    def summary(self, now: float) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "outcome": self.outcome,
            "status": self.status,
            "reason": self.reason,
            "freshdesk": self.freshdesk,
            "attempts": self.attempts,
            "age_seconds": _seconds_since(self.first_seen, now),
            "parked_seconds": _seconds_since(self.parked_at, now),
            "replayable": self.replayable,
            "sqsMessageId": self.sqs_message_id,
        }


@dataclass
class ReplayReport:
    replayed: list[Parked] = field(default_factory=list)
    unreadable: list[Parked] = field(default_factory=list)
    not_matching: int = 0
    failed: list[tuple[Parked, str]] = field(default_factory=list)
    dry_run: bool = False


# -- reading the DLQ ---------------------------------------------------------------------------
def describe_parked(message: dict[str, Any]) -> Parked:
    envelope = parse_envelope(message.get("Body"))
    attributes = message.get("Attributes") or {}
    sent = attributes.get("SentTimestamp")
    parked_at = int(sent) / 1000 if isinstance(sent, str) and sent.isdigit() else None
    base = {
        "sqs_message_id": message.get("MessageId", ""),
        "receipt_handle": message.get("ReceiptHandle", ""),
        "parked_at": parked_at,
    }
    incomplete = parse_incomplete(message.get("Body")) if envelope is None else None
    if incomplete is not None:
        # Reduced to fit SQS without its event: its ids and last error, but nothing to replay.
        last_error = incomplete.get("last_error") if isinstance(incomplete.get("last_error"), dict) else {}
        status, attempts = last_error.get("status"), incomplete.get("attempts")
        return Parked(
            message_id=str(incomplete.get("messageId") or ""),
            outcome="unreadable",
            status=status if isinstance(status, int) and not isinstance(status, bool) else None,
            reason="event_not_kept",
            freshdesk=freshdesk_summary(None, last_error.get("error")),
            attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else None,
            first_seen=_number(incomplete.get("first_seen")),
            envelope=None,
            **base,
        )
    if envelope is None or envelope.get("outcome") == "unreadable":
        # Not an envelope, or one the retry function parked because it could not read it.
        first_seen = envelope.get("first_seen") if envelope else None
        return Parked(
            message_id="",
            outcome="unreadable",
            status=None,
            reason="unreadable_message",
            freshdesk="",
            attempts=None,
            first_seen=_number(first_seen),
            envelope=None,
            **base,
        )
    last_error = envelope.get("last_error") if isinstance(envelope.get("last_error"), dict) else {}
    status = last_error.get("status")
    attempts = envelope.get("attempts")
    return Parked(
        message_id=str(envelope.get("messageId") or ""),
        outcome=str(envelope.get("outcome") or "?"),
        status=status if isinstance(status, int) and not isinstance(status, bool) else None,
        reason=_safe(last_error.get("reason"), _IDENTIFIER),
        freshdesk=freshdesk_summary(last_error.get("body"), last_error.get("error")),
        attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else None,
        first_seen=_number(envelope.get("first_seen")),
        envelope=envelope,
        **base,
    )


def freshdesk_summary(body: Any, error: Any = "") -> str:
    """Freshdesk's error, by code, description and field names only: its message texts can echo input."""
    if isinstance(body, dict):
        parts = []
        description = _safe(body.get("description"), _PHRASE)
        if description:
            parts.append(description)
        code = _safe(body.get("code"), _IDENTIFIER)
        if code:
            parts.append(code)
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        details = []
        for item in errors:
            if isinstance(item, dict):
                name, item_code = _safe(item.get("field"), _IDENTIFIER), _safe(item.get("code"), _IDENTIFIER)
                if name or item_code:
                    details.append(f"{name or '?'}:{item_code or '?'}")
        if details:
            parts.append(", ".join(details))
        return ": ".join(parts) if parts else "(no code)"
    if isinstance(body, str) and body:
        return "(a non-JSON body, not shown)"
    if isinstance(error, str) and error:
        return error[:80]  # our own transport or configuration error: never contact data
    return ""


def receive_all(
    sqs: Any, queue_url: str, *, visibility_timeout: int, wait_seconds: int = 1, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """Receive every message (up to `limit`), each hidden for `visibility_timeout` seconds."""
    found: dict[str, dict[str, Any]] = {}
    while len(found) < limit:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(found)),
            VisibilityTimeout=visibility_timeout,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            found[message["MessageId"]] = message  # a repeat carries the newest receipt handle
    return list(found.values())


def release(sqs: Any, queue_url: str, parked: Iterable[Parked]) -> None:
    """Make messages visible again at once."""
    items = [p for p in parked if p.receipt_handle]
    for start in range(0, len(items), 10):
        chunk = items[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": p.receipt_handle, "VisibilityTimeout": 0} for i, p in enumerate(chunk)
            ],
        )


def list_parked(sqs: Any, dlq_url: str, *, wait_seconds: int = 1, limit: int = DEFAULT_LIMIT) -> list[Parked]:
    """Everything parked in the DLQ, oldest first; the messages stay where they are."""
    parked = [
        describe_parked(m)
        for m in receive_all(
            sqs, dlq_url, visibility_timeout=LIST_VISIBILITY_SECONDS, wait_seconds=wait_seconds, limit=limit
        )
    ]
    release(sqs, dlq_url, parked)
    return sorted(parked, key=lambda p: (p.parked_at or 0, p.message_id))


# -- replaying ---------------------------------------------------------------------------------
def matches(
    parked: Parked, *, status: int | None = None, outcome: str | None = None, message_ids: Iterable[str] = ()
) -> bool:
    wanted = set(message_ids)
    return (
        (status is None or parked.status == status)
        and (outcome is None or parked.outcome == outcome)
        and (not wanted or parked.message_id in wanted)
    )


def replay(
    sqs: Any,
    dlq_url: str,
    retry_queue_url: str,
    *,
    status: int | None = None,
    outcome: str | None = None,
    message_ids: Iterable[str] = (),
    dry_run: bool = False,
    now: float | None = None,
    wait_seconds: int = 1,
    limit: int = DEFAULT_LIMIT,
) -> ReplayReport:
    """Send the matching parked envelopes back to the retry queue; delete each from the DLQ once sent."""
    report = ReplayReport(dry_run=dry_run)
    message_ids = tuple(message_ids)
    keep: list[Parked] = []
    messages = receive_all(
        sqs, dlq_url, visibility_timeout=REPLAY_VISIBILITY_SECONDS, wait_seconds=wait_seconds, limit=limit
    )
    for parked in map(describe_parked, messages):
        if not matches(parked, status=status, outcome=outcome, message_ids=message_ids):
            report.not_matching += 1
            keep.append(parked)
            continue
        if not parked.replayable:
            report.unreadable.append(parked)
            keep.append(parked)
            continue
        if dry_run:
            report.replayed.append(parked)
            keep.append(parked)
            continue
        envelope = envelope_format.replay_envelope(parked.envelope or {}, now=time.time() if now is None else now)
        message = envelope_format.sqs_message(envelope)
        try:
            sqs.send_message(
                QueueUrl=retry_queue_url,
                DelaySeconds=0,
                MessageBody=message.body,
                MessageAttributes=message.attributes,
            )
        except Exception as exc:
            report.failed.append((parked, f"SendMessage failed: {type(exc).__name__}"))
            keep.append(parked)
            continue
        try:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=parked.receipt_handle)
        except Exception as exc:
            # Sent but still parked: a later replay would deliver it twice (a 409 then, not a duplicate).
            report.failed.append((parked, f"sent, but DeleteMessage failed: {type(exc).__name__}"))
            continue
        report.replayed.append(parked)
    release(sqs, dlq_url, keep)
    return report


# -- output ------------------------------------------------------------------------------------
def print_parked(out: TextIO, parked: list[Parked], *, now: float | None = None, where: str = "") -> None:
    now = time.time() if now is None else now
    out.write(f"Dead-letter queue: {len(parked)} parked{f'  ({where})' if where else ''}\n")
    if not parked:
        return
    headings = ("messageId", "outcome", "status", "reason", "freshdesk", "attempts", "age", "parked")
    rows = [headings] + [
        (
            p.message_id or "-",
            p.outcome,
            _text(p.status),
            p.reason or "-",
            p.freshdesk or "-",
            _text(p.attempts),
            _age(p.first_seen, now),
            _age(p.parked_at, now),
        )
        for p in parked
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headings))]
    for row in rows:
        out.write("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")
    unreadable = sum(1 for p in parked if not p.replayable)
    if unreadable:
        out.write(f"  {unreadable} unreadable message(s): listed, never replayed\n")


def print_replay(out: TextIO, report: ReplayReport) -> None:
    verb = "Would replay" if report.dry_run else "Replayed"
    out.write(
        f"{verb} {len(report.replayed)} message(s) to the retry queue"
        f"{'' if report.dry_run else ' (attempts reset to 0, last error kept)'}\n"
    )
    for parked in report.replayed:
        out.write(f"  {parked.message_id or '-'}  {parked.outcome}  {_text(parked.status)}  {parked.reason or '-'}\n")
    for parked, error in report.failed:
        out.write(f"  FAILED {parked.message_id or '-'}: {error}\n")
    out.write(
        f"Left in the DLQ: {report.not_matching} not matching the filters, "
        f"{len(report.unreadable)} unreadable (never replayed), {len(report.failed)} failed\n"
    )


def _text(value: Any) -> str:
    return "-" if value is None else str(value)


def _age(since: float | None, now: float) -> str:
    seconds = _seconds_since(since, now)
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _seconds_since(since: float | None, now: float) -> int | None:
    return None if since is None else max(0, int(now - since))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _safe(value: Any, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not value:
        return ""
    return value if pattern.match(value) else "(withheld)"


# -- where the queues are ----------------------------------------------------------------------
class QueueLookupError(Exception):
    pass


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack).get("Stacks") or []
    if not stacks:
        raise QueueLookupError(f"stack {stack} not found")
    return {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs") or []}


def queues_of_stack(stack: str, region: str | None) -> tuple[Any, str, str]:
    import boto3

    session = boto3.session.Session(region_name=region)
    outputs = stack_outputs(session.client("cloudformation"), stack)
    retry_url, dlq_url = outputs.get("RetryQueueUrl"), outputs.get("DeadLetterQueueUrl")
    if not retry_url or not dlq_url:
        raise QueueLookupError(
            f"stack {stack} has no RetryQueueUrl / DeadLetterQueueUrl outputs: is it a signal-freshdesk stack?"
        )
    return session.client("sqs"), retry_url, dlq_url


def queues_of_serve(state_path: Path) -> tuple[Any, str, str]:
    try:
        state = read_state(state_path)
    except ServeError as exc:
        raise QueueLookupError(str(exc)) from None
    sqs = serve_client(state, "sqs")
    return sqs, state["retry_queue_url"], state["dlq_url"]


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="python -m signal_freshdesk_dev.dlq", description=__doc__.strip().splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--stack", metavar="NAME", help="the deployed stack (its RetryQueueUrl / DeadLetterQueueUrl outputs)"
    )
    where.add_argument("--local", action="store_true", help="the queues of the running make serve")
    common.add_argument("--region", help="AWS region of the stack (default: your AWS configuration's)")
    common.add_argument("--state-file", type=Path, default=STATE_FILE, help=argparse.SUPPRESS)
    listing = commands.add_parser("list", parents=[common], help="list the parked events (no contact data)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    again = commands.add_parser("replay", parents=[common], help="send parked events back to the retry queue")
    again.add_argument("--status", type=int, help="only those Freshdesk answered with this status")
    again.add_argument(
        "--outcome",
        choices=("rejected", "exhausted", "queued", "unreadable"),
        help="only those parked with this outcome",
    )
    again.add_argument(
        "--message-id",
        action="append",
        default=[],
        dest="message_ids",
        metavar="ID",
        help="only this event (repeatable)",
    )
    again.add_argument("--dry-run", action="store_true", help="show what would be replayed; change nothing")
    args = parser.parse_args(argv)
    if args.region and not args.stack:
        parser.error("--region goes with --stack")

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if args.stack:
            sqs, retry_url, dlq_url = queues_of_stack(args.stack, args.region)
            where_text = f"stack {args.stack}"
        else:
            sqs, retry_url, dlq_url = queues_of_serve(args.state_file)
            where_text = "local make serve"
        if args.command == "list":
            parked = list_parked(sqs, dlq_url)
            if args.json:
                now = time.time()
                for item in parked:
                    out.write(json.dumps(item.summary(now)) + "\n")
            else:
                print_parked(out, parked, where=where_text)
            return 0
        report = replay(
            sqs,
            dlq_url,
            retry_url,
            status=args.status,
            outcome=args.outcome,
            message_ids=args.message_ids,
            dry_run=args.dry_run,
        )
        print_replay(out, report)
        return 1 if report.failed else 0
    except QueueLookupError as exc:
        out.write(f"dlq: {exc}\n")
        return 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        out.write(f"dlq: AWS refused: {error.get('Code', 'ClientError')}: {error.get('Message', '')}\n")
        return 1
    except BotoCoreError as exc:
        out.write(f"dlq: AWS could not be reached: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
