"""The benchmark's naive baseline: the ingest handler as it is commonly first written (bench only).

Same work as the connector's ingest handler for the benchmark's events (check the bearer token, read
the body, map each event with the same Default preset, POST it to Freshdesk, queue a 429/5xx in SQS,
log one line and count a metric per event), built the usual way: Powertools Logger, Metrics and
Tracer, and boto3 with its Secrets Manager and SQS clients all created at import, the secret read with
boto3 on the first invocation, events of a batch delivered one after the other.

Needs the `bench` extra of signal-freshdesk-dev (aws-lambda-powertools[tracer]).
"""

from __future__ import annotations

import base64
import hmac
import json
import os

import boto3
import urllib3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from signal_freshdesk.core.mapping import plan_event
from signal_freshdesk.core.model import Drop

SERVICE = "signal-freshdesk-naive"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="SignalFreshdeskNaive", service=SERVICE)
tracer = Tracer(service=SERVICE)
secrets_client = boto3.client("secretsmanager")
sqs_client = boto3.client("sqs")
http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=3.05, read=10.0))

_secret: dict | None = None


def _read_secret() -> dict:
    global _secret
    if _secret is None:
        answer = secrets_client.get_secret_value(SecretId=os.environ["FRESHDESK_SECRET_ID"])
        _secret = json.loads(answer["SecretString"])
    return _secret


def _answer(status: int, body: dict) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


@metrics.log_metrics
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event, context):
    secret = _read_secret()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    expected = f"Bearer {secret['webhook_token']}".encode()
    if not hmac.compare_digest(headers.get("authorization", "").encode(), expected):
        return _answer(401, {"outcome": "unauthorized"})
    body = json.loads(event.get("body") or "null")
    batch = isinstance(body, list) or (isinstance(body, dict) and "batch" in body)
    events = body if isinstance(body, list) else body.get("batch", [body]) if isinstance(body, dict) else []
    results = [_deliver(item, secret) for item in events]
    if not batch:
        return _answer(results[0]["status"], results[0])
    queued = any(r["outcome"] == "queued" for r in results)
    return _answer(202 if queued else 200, {"results": results})


def _deliver(item: dict, secret: dict) -> dict:
    plan = plan_event(
        item,
        region=os.environ.get("DEFAULT_PHONE_REGION", "GB"),
        consent_mode=os.environ.get("CONSENT_MODE", "require"),
    )
    if isinstance(plan, Drop):
        result = {"messageId": plan.message_id, "outcome": "dropped", "status": 200, "reason": plan.reason.value}
    else:
        base = os.environ.get("FRESHDESK_BASE_URL") or f"https://{secret['domain']}.freshdesk.com"
        auth = base64.b64encode(f"{secret['api_key']}:X".encode()).decode()
        response = http.request(
            "POST",
            base + "/api/v2/contacts",
            body=json.dumps(plan.contact).encode(),
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )
        if response.status == 201:
            result = {
                "messageId": plan.message_id,
                "outcome": "delivered",
                "status": 201,
                "contact_id": json.loads(response.data).get("id"),
            }
        elif response.status == 429 or response.status >= 500:
            sqs_client.send_message(
                QueueUrl=os.environ["RETRY_QUEUE_URL"],
                MessageBody=json.dumps({"attempts": 1, "event": item}),
                DelaySeconds=min(int(response.headers.get("Retry-After", "10")), 900),
            )
            result = {"messageId": plan.message_id, "outcome": "queued", "status": 202}
        else:
            result = {"messageId": plan.message_id, "outcome": "rejected", "status": response.status}
    logger.info("event processed", extra={"messageId": result["messageId"], "outcome": result["outcome"]})
    metrics.add_metric(name=result["outcome"], unit=MetricUnit.Count, value=1)
    return result
