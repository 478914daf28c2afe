"""The stack's AWS resources (one secret, a retry queue, its DLQ) on moto: in-process or on loopback."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from .apigw import LOCAL_WEBHOOK_TOKEN

REGION = "eu-west-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def local_secret(
    domain: str = "sandbox", api_key: str = "sandbox-api-key", webhook_token: str = LOCAL_WEBHOOK_TOKEN
) -> dict[str, str]:
    return {"domain": domain, "api_key": api_key, "webhook_token": webhook_token}


@dataclass(frozen=True)
class StackResources:
    secret_arn: str
    retry_queue_url: str
    dlq_url: str
    idempotency_table: str = ""
    identity_map_table: str = ""

    def environment(self, *, freshdesk_base_url: str = "", **extra: str) -> dict[str, str]:
        """The functions' environment, as the template sets it, pointed at these resources."""
        env = {
            "FRESHDESK_SECRET_ID": self.secret_arn,
            "RETRY_QUEUE_URL": self.retry_queue_url,
            "DLQ_URL": self.dlq_url,
            "DEFAULT_PHONE_REGION": "GB",
            "CONSENT_MODE": "require",
            "POWERTOOLS_SERVICE_NAME": "signal-freshdesk",
            "POWERTOOLS_METRICS_NAMESPACE": "SignalFreshdesk",
        }
        if self.idempotency_table:
            env["IDEMPOTENCY_TABLE"] = self.idempotency_table
        if self.identity_map_table:
            env["IDENTITY_MAP_TABLE"] = self.identity_map_table
        if freshdesk_base_url:
            env["FRESHDESK_BASE_URL"] = freshdesk_base_url
        env.update(extra)
        return env


def provision(
    secret: dict[str, Any],
    *,
    endpoint_url: str | None = None,
    name: str = "signal-freshdesk-local",
    visibility_timeout: int = 360,
    max_receive_count: int = 5,
    idempotency: bool = True,
    identity_map: bool = True,
) -> StackResources:
    """Create what template.yaml creates. Works under `moto.mock_aws` (endpoint_url None) or against a server."""
    import boto3

    kwargs = {"region_name": REGION, "endpoint_url": endpoint_url}
    secrets = boto3.client("secretsmanager", **kwargs)
    sqs = boto3.client("sqs", **kwargs)
    secret_arn = secrets.create_secret(Name=f"{name}/freshdesk", SecretString=json.dumps(secret))["ARN"]
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    retry_url = sqs.create_queue(
        QueueName=f"{name}-retry",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    dynamodb = boto3.client("dynamodb", **kwargs)

    def create_table(table: str) -> str:
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
        )
        return table

    return StackResources(
        secret_arn,
        retry_url,
        dlq_url,
        create_table(f"{name}-idempotency") if idempotency else "",
        create_table(f"{name}-identity-map") if identity_map else "",
    )


class LocalAws:
    """moto as a server on 127.0.0.1, so the handlers' boto3 talks to it over HTTP as it would to AWS."""

    def __init__(self) -> None:
        self._server = None
        self.endpoint_url = ""

    def start(self) -> LocalAws:
        from moto.server import ThreadedMotoServer

        for key, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(key, value)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def environment(self) -> dict[str, str]:
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url}

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
