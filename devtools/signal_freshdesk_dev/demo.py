"""The local run: every sample event through the real handlers, with a Freshdesk sandbox and moto on loopback.

    python -m signal_freshdesk_dev.demo        (or: make demo)

No AWS account, no Docker, no internet: Freshdesk is the project's sandbox, AWS is moto as a server.
The run uses the mapping MAPPING_FILE names, else your layers/connector/mapping.json, else the example
mapping (docs/mapping.example.json: custom contact fields and company fields); the sandbox declares the
custom contact fields that mapping fills, with their types and dropdown choices.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.rules import ContactMapping, bundled_mapping_path
from signal_freshdesk.core.settings import mapping_from_env

from .apigw import LambdaContext
from .check import sandbox_fields
from .event_source import SqsEventSource
from .handlers import REPO_ROOT, ingest_handler, load_event, retry_handler, signal_events_of
from .local_aws import REGION, LocalAws, local_secret, provision
from .logcapture import LogCapture, processed_summary, redirect_streams, restore_streams
from .sandbox import FreshdeskSandbox

SAMPLES = [
    "signed-up",
    "identified",
    "page-view",
    "anonymous-track",
    "consent-denied",
    "batch",
    "group",
    "identify-with-company",
]
# The sandbox answers 503 once to this sample, so the run shows the retry queue at work.
FLAKY_SAMPLE = "identified"
# The mapping of the run when MAPPING_FILE is not set and there is no layers/connector/mapping.json: ten
# fields of an account's own (custom fields among them) and company fields.
EXAMPLE_MAPPING = REPO_ROOT / "docs" / "mapping.example.json"
# Companies the account holds before the run, as agents would have created them (ids 1 and 2):
# events/identified.json names company_id 2.
SEEDED_COMPANIES = (
    {"name": "Globex Corporation", "domains": ["globex.example"], "industry": "Manufacturing"},
    {"name": "Initech", "domains": ["initech.example"], "industry": "Software"},
)


@dataclass
class Row:
    source: str
    event: str
    message_id: str
    outcome: str
    status: Any
    reason: str = ""


def describe(event: dict[str, Any]) -> str:
    kind = str(event.get("type", "?"))
    return str(event.get("event") or event.get("name") or kind) if kind in ("track", "page") else kind


def shown_path(value: str) -> str:
    """A mapping file as the user would name it: relative to the repository when it is in it."""
    path = Path(value)
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return value


def choose_mapping(env: MutableMapping[str, str]) -> ContactMapping:
    """The run's mapping: MAPPING_FILE when the user set it, else the user's mapping file, else the example
    mapping. Set in `env`, so the functions read the same. Raises ConfigError for a file the functions could
    not use."""
    env.setdefault("MAPPING_FILE", str(bundled_mapping_path() or EXAMPLE_MAPPING))
    return mapping_from_env(env)


def run(out: TextIO, log_path: Path) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    try:
        mapping = choose_mapping(os.environ)
    except ConfigError as exc:
        out.write(f"demo: {exc}\n")
        return 1
    field_types, field_choices = sandbox_fields(mapping)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("w")
    sandbox = FreshdeskSandbox(
        custom_fields=(), custom_field_types=field_types, custom_field_choices=field_choices, company_ids=()
    )
    with sandbox, LocalAws() as aws:
        for company in SEEDED_COMPANIES:
            sandbox.seed_company(**company)
        resources = provision(
            local_secret(api_key=sandbox.api_key), endpoint_url=aws.endpoint_url, visibility_timeout=10
        )
        os.environ.update(aws.environment())
        os.environ.update(
            resources.environment(
                freshdesk_base_url=sandbox.base_url,
                RETRY_BASE_SECONDS="1",
                POWERTOOLS_LOG_LEVEL="INFO",
                POWERTOOLS_METRICS_DISABLED="true",
            )
        )
        from signal_freshdesk.runtime import reset_runtime

        reset_runtime()
        ingest, retry = ingest_handler(), retry_handler()
        streams = redirect_streams(log_file)
        tap = LogCapture(processed_summary).attach()  # the "processed" records, as CloudWatch would receive them

        chosen = os.environ["MAPPING_FILE"]
        declared = ", ".join(
            f"{name} ({'dropdown' if name in field_choices else field_types[name].removeprefix('custom_')})"
            for name in sandbox.custom_fields
        )
        out.write(
            f"signal-freshdesk local run\n  Freshdesk sandbox: {sandbox.base_url}\n"
            f"  AWS (moto):        {aws.endpoint_url}  (secret, retry queue, DLQ)\n"
            f"  Mapping:           {'default' if chosen.lower() == 'default' else shown_path(chosen)} (MAPPING_FILE)\n"
            f"  Custom fields:     {declared or '(none)'}\n\n"
        )
        rows: list[Row] = []
        for sample in SAMPLES:
            request = load_event(sample)
            if sample == FLAKY_SAMPLE:
                sandbox.fail_next(503, count=1)
            answer = ingest(request, LambdaContext(function_name="signal-freshdesk-ingest"))
            body = json.loads(answer["body"])
            results = body.get("results", [body])
            for event, result in zip(signal_events_of(request), results, strict=False):
                rows.append(
                    Row(
                        f"{sample}.json",
                        describe(event),
                        str(result.get("messageId", ""))[:8],
                        result.get("outcome", "?"),
                        result.get("status"),
                        result.get("reason", ""),
                    )
                )
            if len(results) == 1 and "results" not in body:
                rows[-1].status = f"{answer['statusCode']}"
        print_table(out, "Webhook answers: each sample POSTed to /events through the real ingest handler", rows)

        import boto3

        sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws.endpoint_url)
        before = len(tap.records)
        source = SqsEventSource(sqs, resources.retry_queue_url, retry)
        stats = source.drain(timeout=90)
        retried = [
            Row("retry queue", "", str(r["messageId"] or "")[:8], r["outcome"], r["status"], r["reason"] or "")
            for r in tap.records[before:]
        ]
        out.write(
            f"\nRetry queue drained by the real retry handler: {stats.invocations} invocation(s), "
            f"{stats.records} record(s), {source.pending()} left\n"
        )
        if retried:
            print_table(out, "", retried)

        parked = sqs.get_queue_attributes(QueueUrl=resources.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
        out.write(f"\nDead-letter queue: {parked} parked\n")
        print_companies(out, sandbox.companies())
        print_contacts(out, sandbox.contacts())
        out.write(f"\nThe functions' log lines (JSON, as CloudWatch would hold them): {log_path}\n")
        tap.detach()
        restore_streams(streams)
        left = source.pending()
    log_file.close()
    return 0 if left == 0 else 1


def print_table(out: TextIO, title: str, rows: list[Row]) -> None:
    if title:
        out.write(title + "\n")
    headings = ("sample", "event", "messageId", "outcome", "HTTP", "reason")
    cells = [headings] + [
        (r.source, r.event, r.message_id, r.outcome, str(r.status if r.status is not None else "-"), r.reason)
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headings))]
    for line in cells:
        out.write("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() + "\n")


def print_companies(out: TextIO, companies: list[dict[str, Any]]) -> None:
    out.write(f"\nCompanies the Freshdesk sandbox now holds: {len(companies)}\n")
    headings = ("id", "name", "domains", "industry", "account_tier")
    cells = [headings] + [
        (
            str(c.get("id")),
            c.get("name") or "",
            ",".join(c.get("domains") or []),
            c.get("industry") or "",
            c.get("account_tier") or "",
        )
        for c in companies
    ]
    write_cells(out, cells)


def custom_values(contact: dict[str, Any]) -> str:
    """The custom fields a contact has a value in, as `name=value`."""
    custom = contact.get("custom_fields") or {}
    return ", ".join(f"{name}={value}" for name, value in custom.items() if value is not None and value != "")


def print_contacts(out: TextIO, contacts: list[dict[str, Any]]) -> None:
    out.write(f"\nContacts the Freshdesk sandbox now holds: {len(contacts)}\n")
    headings = (
        "id",
        "name",
        "email",
        "phone",
        "unique_external_id",
        "job_title",
        "tags",
        "company_id",
        "custom_fields",
    )
    cells = [headings] + [
        (
            str(c.get("id")),
            c.get("name") or "",
            c.get("email") or "",
            c.get("phone") or "",
            c.get("unique_external_id") or "",
            c.get("job_title") or "",
            ",".join(c.get("tags") or []),
            str(c["company_id"]) if c.get("company_id") is not None else "",
            custom_values(c),
        )
        for c in contacts
    ]
    write_cells(out, cells)


def write_cells(out: TextIO, cells: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(cells[0]))]
    for line in cells:
        out.write("  " + "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)).rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--log-file",
        type=Path,
        default=Path(".local/demo-logs.jsonl"),
        help="where the functions' JSON log lines go (default: .local/demo-logs.jsonl)",
    )
    args = parser.parse_args(argv)
    return run(sys.stdout, args.log_file)


if __name__ == "__main__":
    sys.exit(main())
