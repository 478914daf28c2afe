"""python -m signal_freshdesk_dev.ledger [--events 1000] [--seed N]: a ledger run against a Freshdesk
sandbox and moto, both on loopback; prints the tally, exits 1 when the ledger finds a problem."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import uuid

from .config import LEDGER_ENV, LedgerConfig
from .run import run_ledger


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m signal_freshdesk_dev.ledger",
        description="Push a large faulty stream through the handlers and account for every event.",
    )
    parser.add_argument("--events", type=int, default=int(os.environ.get("LEDGER_EVENTS") or 1000))
    parser.add_argument("--seed", type=int, default=None, help="default: LEDGER_SEED, else random (printed)")
    args = parser.parse_args(argv)

    import boto3

    from signal_freshdesk.runtime import reset_runtime

    from ..local_aws import REGION, LocalAws, local_secret, provision
    from ..sandbox import FreshdeskSandbox

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's access log
    env = dict(os.environ)
    if args.seed is not None:
        env["LEDGER_SEED"] = str(args.seed)
    env["LEDGER_EVENTS"] = str(args.events)
    config = LedgerConfig.from_env(env)
    print(f"ledger: {config.events} events, seed {config.seed}", flush=True)
    saved = dict(os.environ)
    try:
        with LocalAws() as aws, FreshdeskSandbox(api_key="sandbox-api-key") as sandbox:
            os.environ.update(aws.environment())
            resources = provision(
                local_secret(api_key="sandbox-api-key"),
                endpoint_url=aws.endpoint_url,
                visibility_timeout=2,
                name=f"ledger{uuid.uuid4().hex[:8]}",
            )
            os.environ.update(resources.environment(freshdesk_base_url=sandbox.base_url, **LEDGER_ENV))
            reset_runtime()
            sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws.endpoint_url)
            # Powertools prints a metric set once a metric holds 100 values, even with metrics disabled.
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                report, _ = run_ledger(config, resources=resources, sandbox=sandbox, sqs_client=sqs)
            reset_runtime()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    print(report.tally)
    if not report.ok:
        print(report.failure_text(), file=sys.stderr)
        return 1
    print("every accepted event is accounted for")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
