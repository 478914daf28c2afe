"""The local run: every sample event through the real handlers, with a Freshdesk sandbox and moto on loopback.

    python -m signal_freshdesk_dev.demo        (or: make demo)

No AWS account, no Docker, no internet: Freshdesk is the project's sandbox, AWS is moto as a server.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .apigw import LambdaContext
from .event_source import SqsEventSource
from .handlers import ingest_handler, load_event, retry_handler, signal_events_of
from .local_aws import REGION, LocalAws, local_secret, provision
from .logcapture import LogCapture, processed_summary, redirect_streams, restore_streams
from .sandbox import FreshdeskSandbox

SAMPLES = ["signed-up", "identified", "page-view", "anonymous-track", "consent-denied", "batch"]
# The sandbox answers 503 once to this sample, so the run shows the retry queue at work.
FLAKY_SAMPLE = "identified"


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


def run(out: TextIO, log_path: Path) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path.open("w")
    with FreshdeskSandbox() as sandbox, LocalAws() as aws:
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

        out.write(
            f"signal-freshdesk local run\n  Freshdesk sandbox: {sandbox.base_url}\n"
            f"  AWS (moto):        {aws.endpoint_url}  (secret, retry queue, DLQ)\n\n"
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


def print_contacts(out: TextIO, contacts: list[dict[str, Any]]) -> None:
    out.write(f"\nContacts the Freshdesk sandbox now holds: {len(contacts)}\n")
    headings = ("id", "name", "email", "phone", "unique_external_id", "job_title", "tags", "signup_method")
    cells = [headings] + [
        (
            str(c.get("id")),
            c.get("name") or "",
            c.get("email") or "",
            c.get("phone") or "",
            c.get("unique_external_id") or "",
            c.get("job_title") or "",
            ",".join(c.get("tags") or []),
            (c.get("custom_fields") or {}).get("signup_method") or "",
        )
        for c in contacts
    ]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(headings))]
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
