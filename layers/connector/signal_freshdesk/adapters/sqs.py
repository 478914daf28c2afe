"""Amazon SQS: the retry queue and the dead-letter queue (the core's `Queues` port).

boto3 is imported on first use only. Every message is measured before it is sent and, when it would
exceed SQS's size limit, reduced by the envelope format (`envelope.sqs_message`) rather than refused.
"""

from __future__ import annotations

from typing import Any

from ..core import envelope as envelope_format
from ..core.errors import QueueError
from ..core.timing import MAX_SQS_DELAY_SECONDS
from .boto_clients import boto3_client


class SqsQueues:
    def __init__(self, retry_queue_url: str, dlq_url: str) -> None:
        self.retry_queue_url = retry_queue_url
        self.dlq_url = dlq_url

    def send_retry(self, envelope: dict[str, Any], delay_seconds: int) -> None:
        delay = min(max(int(delay_seconds), 0), MAX_SQS_DELAY_SECONDS)
        self._send(self.retry_queue_url, "RETRY_QUEUE_URL", envelope, delay)

    def park(self, envelope: dict[str, Any]) -> None:
        self._send(self.dlq_url, "DLQ_URL", envelope, 0)

    def _send(self, url: str, setting: str, envelope: dict[str, Any], delay: int) -> None:
        if not url:
            raise QueueError(f"{setting} is not set")
        message = envelope_format.sqs_message(envelope)
        try:
            boto3_client("sqs").send_message(
                QueueUrl=url,
                MessageBody=message.body,
                DelaySeconds=delay,
                MessageAttributes=message.attributes,
            )
        except Exception as exc:  # botocore raises many kinds; every one means "not secured"
            raise QueueError(f"SQS SendMessage failed: {_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    """The exception's kind, and for an answer from SQS its error code (botocore's Error.Code): which
    says why (InvalidParameterValue, AccessDenied, KMS.*, ...) without the message's content."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    code = error.get("Code") if isinstance(error, dict) else None
    return f"{type(exc).__name__} ({code})" if code else type(exc).__name__
