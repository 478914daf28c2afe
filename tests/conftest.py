"""Fixtures: the Freshdesk sandbox on loopback and the stack's AWS resources in moto (in-process)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from signal_freshdesk.runtime import reset_runtime
from signal_freshdesk_dev.apigw import LOCAL_WEBHOOK_TOKEN, LambdaContext, http_api_event
from signal_freshdesk_dev.event_source import DrainStats, SqsEventSource
from signal_freshdesk_dev.handlers import EVENTS_DIR, ingest_handler, load_event, retry_handler
from signal_freshdesk_dev.local_aws import REGION, LocalAws, local_secret, provision
from signal_freshdesk_dev.sandbox import FreshdeskSandbox

pytest_plugins = ["tests.security.log_privacy"]

SANDBOX_KEY = "sandbox-api-key"


@pytest.fixture(scope="session")
def sandbox_server():
    with FreshdeskSandbox(api_key=SANDBOX_KEY) as server:
        yield server


@pytest.fixture
def freshdesk(sandbox_server):
    """The sandbox, emptied and restored to its defaults around each test."""

    def restore():
        sandbox_server.reset()
        sandbox_server.api_key = SANDBOX_KEY
        sandbox_server.custom_fields = ("signup_method",)
        sandbox_server.unique_external_id_enabled = True
        sandbox_server.set_rate_limit(400, 60)

    restore()
    yield sandbox_server
    restore()


@dataclass
class Stack:
    """The deployed stack, locally: resources in moto, handlers called as Lambda would call them."""

    resources: Any
    sqs: Any
    secrets: Any
    freshdesk: FreshdeskSandbox
    dynamodb: Any = None

    def post(
        self,
        body: Any,
        *,
        token: str | None = LOCAL_WEBHOOK_TOKEN,
        headers: dict | None = None,
        context: LambdaContext | None = None,
    ) -> tuple[int, Any]:
        """POST /events through the real ingest handler; `body` is a sample name, a JSON value or raw text/bytes."""
        if isinstance(body, str) and len(body) < 64 and (EVENTS_DIR / f"{body}.json").is_file():
            request = load_event(body)
            request["headers"] = {k: v for k, v in request["headers"].items() if k != "authorization"}
        else:
            raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
            request = http_api_event(raw, {"Content-Type": "application/json"})
        if token is not None:
            request["headers"]["authorization"] = f"Bearer {token}"
        request["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
        answer = ingest_handler()(request, context or LambdaContext(function_name="ingest"))
        assert answer["headers"]["Content-Type"] == "application/json"
        return answer["statusCode"], json.loads(answer["body"])

    def event_source(self) -> SqsEventSource:
        return SqsEventSource(self.sqs, self.resources.retry_queue_url, retry_handler())

    def drain(self, timeout: float = 30.0) -> DrainStats:
        return self.event_source().drain(timeout=timeout, idle_sleep=0.1)

    def queue_depth(self, url: str | None = None) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.resources.retry_queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return {k.removeprefix("ApproximateNumberOfMessages") or "Visible": int(v) for k, v in attrs.items()}

    def parked(self) -> list[dict[str, Any]]:
        """Every message in the DLQ. Receiving hides them for 30 s: call once per test, or use dlq.list_parked."""
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.resources.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30
            ).get("Messages", [])
            if not messages:
                break
            found.extend(json.loads(m["Body"]) for m in messages)
        return found

    def forget_people(self) -> None:
        """Empty the identity map, as for a new Freshdesk account (its entries would name contacts that
        an emptied sandbox no longer has: the connector copes, with a 404 and a create, but tests that
        count calls want a clean start)."""
        table = self.resources.identity_map_table
        if not table or self.dynamodb is None:
            return
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="id"):
            for item in page.get("Items", []):
                self.dynamodb.delete_item(TableName=table, Key={"id": item["id"]})

    def set_secret(self, **changes: str) -> None:
        secret = json.loads(self.secrets.get_secret_value(SecretId=self.resources.secret_arn)["SecretString"])
        secret.update(changes)
        self.secrets.put_secret_value(SecretId=self.resources.secret_arn, SecretString=json.dumps(secret))


@pytest.fixture(scope="session")
def moto_server():
    """moto as a server on loopback: the handlers' boto3 and our own DynamoDB client reach it over HTTP."""
    server = LocalAws().start()
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, moto_server):
    for key, value in moto_server.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server.endpoint_url


@pytest.fixture
def stack(aws_env, monkeypatch, freshdesk):
    """A fresh copy of the stack's resources (unique names) on the shared moto server."""
    resources = provision(
        local_secret(api_key=SANDBOX_KEY), endpoint_url=aws_env, visibility_timeout=2, name=f"t{uuid.uuid4().hex[:12]}"
    )
    env = resources.environment(
        freshdesk_base_url=freshdesk.base_url,
        RETRY_BASE_SECONDS="1",
        POWERTOOLS_METRICS_DISABLED="true",
        FRESHDESK_READ_TIMEOUT="2",
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_runtime()
    yield Stack(
        resources,
        boto3.client("sqs", region_name=REGION, endpoint_url=aws_env),
        boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws_env),
        freshdesk,
        boto3.client("dynamodb", region_name=REGION, endpoint_url=aws_env),
    )
    reset_runtime()


@pytest.fixture
def configure(monkeypatch):
    """Change the functions' environment mid-test and rebuild their cached runtime."""

    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reset_runtime()

    return apply
