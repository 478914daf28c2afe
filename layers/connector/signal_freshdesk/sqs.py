"""Amazon SQS: the retry queue and the dead-letter queue. boto3 is imported on first use only."""

from __future__ import annotations

import json
from typing import Any

from .boto_clients import boto3_client


class QueueError(Exception):
    """A message could not be sent; the event is not secured."""


class RetryQueues:
    def __init__(self, retry_queue_url: str, dlq_url: str) -> None:
        self.retry_queue_url = retry_queue_url
        self.dlq_url = dlq_url

    def send_retry(self, envelope: dict[str, Any], delay_seconds: int) -> None:
        self._send(self.retry_queue_url, "RETRY_QUEUE_URL", envelope, min(max(int(delay_seconds), 0), 900))

    def park(self, envelope: dict[str, Any]) -> None:
        self._send(self.dlq_url, "DLQ_URL", envelope, 0)

    def _send(self, url: str, setting: str, envelope: dict[str, Any], delay: int) -> None:
        if not url:
            raise QueueError(f"{setting} is not set")
        attributes = {
            "outcome": envelope.get("outcome") or "queued",
            "messageId": envelope.get("messageId") or "-",
            "status": str((envelope.get("last_error") or {}).get("status") or "none"),
        }
        try:
            boto3_client("sqs").send_message(
                QueueUrl=url,
                MessageBody=json.dumps(envelope, separators=(",", ":"), default=str),
                DelaySeconds=delay,
                MessageAttributes={k: {"DataType": "String", "StringValue": str(v)[:256]} for k, v in attributes.items()},
            )
        except Exception as exc:  # botocore raises many kinds; every one means "not secured"
            raise QueueError(f"SQS SendMessage failed: {type(exc).__name__}") from None
