"""The benchmark's stand-ins for what the functions talk to, in a process of their own (bench only).

Freshdesk (the sandbox), AWS (moto as a server: the secret, the retry queue, the DLQ) and the
Parameters and Secrets extension run here, so the processes being measured share no interpreter (no GIL, no
imports) with them, as on Lambda. The parent drives the
sandbox (delay, rate limit, reset, seeded contacts, request log) through a pipe.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from dataclasses import asdict
from typing import Any

from ..local_aws import FAKE_CREDENTIALS, REGION, LocalAws, local_secret, provision

API_KEY = "bench-api-key"
# What the benchmark reads of a contact (contact_summaries, seed_contacts).
CONTACT_KEYS = (
    "id",
    "unique_external_id",
    "email",
    "name",
    "job_title",
    "mobile",
    "tags",
    "company_id",
    "custom_fields",
)


def _serve(conn: Any) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for key, value in FAKE_CREDENTIALS.items():
        os.environ[key] = value
    from ..sandbox import FreshdeskSandbox
    from .extension import ExtensionStandIn, boto3_lookup

    sandbox = FreshdeskSandbox(api_key=API_KEY).start()
    aws = LocalAws().start()
    resources = provision(
        local_secret(api_key=API_KEY), endpoint_url=aws.endpoint_url, name="bench", visibility_timeout=360
    )
    extension = ExtensionStandIn(
        boto3_lookup(aws.endpoint_url, REGION), token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"]
    ).start()
    conn.send(
        {
            "freshdesk_url": sandbox.base_url,
            "aws_endpoint": aws.endpoint_url,
            "resources": asdict(resources),
            "extension_port": extension.port,
        }
    )
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                conn.send(None)
                break
            if command == "reset":
                sandbox.reset()
                answer: Any = None
            elif command == "delay":
                sandbox.delay(*args)
                answer = None
            elif command == "rate_limit":
                sandbox.set_rate_limit(*args)
                answer = None
            elif command == "contacts":
                answer = len(sandbox.contacts())
            elif command == "requests":
                answer = [(r["status"], r["time"], r["path"]) for r in sandbox.requests()]
            elif command == "request_log":  # every API call since the last reset, as the sandbox logged it
                answer = [
                    {key: r.get(key) for key in ("method", "path", "query", "status", "time")}
                    for r in sandbox.requests()
                ]
            elif command == "stats":  # the sandbox's own counters, where it has them
                answer = {
                    **(sandbox.stats() if hasattr(sandbox, "stats") else {}),
                    **({"list_calls": sandbox.list_calls()} if hasattr(sandbox, "list_calls") else {}),
                }
            elif command == "contact_summaries":  # what the calls figures check of each contact
                answer = [{key: c.get(key) for key in CONTACT_KEYS} for c in sandbox.contacts()]
            elif command == "seed_contacts":  # contacts as agents made them (not logged, no rate budget)
                try:
                    seeded = [sandbox.seed_contact(**fields) for fields in args[0]]
                    answer = [{key: c.get(key) for key in CONTACT_KEYS} for c in seeded]
                except ValueError as error:
                    answer = error
            elif command == "company_summaries":
                answer = [
                    {key: c.get(key) for key in ("id", "name", "domains", "industry", "account_tier")}
                    for c in sandbox.companies()
                ]
            elif command == "custom_fields":  # declare typed and dropdown custom contact fields (kept by reset)
                types, choices = args
                for name, values in choices.items():
                    sandbox.set_custom_field_choices(name, values)
                for name, field_type in types.items():
                    sandbox.set_custom_field_type(name, field_type)
                answer = None
            elif command == "extension_hits":
                answer = extension.hits
            else:
                answer = ValueError(f"unknown command {command!r}")
            conn.send(answer)
    finally:
        extension.stop()
        aws.stop()
        sandbox.stop()


class BenchServices:
    """Start with `with BenchServices() as services:`; `services.info` has the URLs and resources."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._conn, child = self._context.Pipe()
        self._child_conn = child
        self._process = None
        self.info: dict[str, Any] = {}

    def start(self) -> BenchServices:
        self._process = self._context.Process(
            target=_serve, args=(self._child_conn,), name="bench-services", daemon=True
        )
        self._process.start()
        ends = time.monotonic() + 60
        while not self._conn.poll(0.2):
            if not self._process.is_alive() or time.monotonic() > ends:
                raise RuntimeError("the benchmark's services did not start (see the error above)")
        self.info = self._conn.recv()
        return self

    def call(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            self.call("stop")
        except (EOFError, OSError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
        self._process = None

    def __enter__(self) -> BenchServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
