"""A stand-in for Lambda's SQS event source mapping: receive, invoke the handler, delete what succeeded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .apigw import LambdaContext


@dataclass
class DrainStats:
    invocations: int = 0
    records: int = 0
    failures: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)


class SqsEventSource:
    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        handler: Callable[[dict, Any], dict],
        *,
        batch_size: int = 10,
        function_timeout: float = 60.0,
        region: str = "eu-west-1",
    ) -> None:
        self.sqs = sqs_client
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.function_timeout = function_timeout
        self.region = region
        attributes = sqs_client.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"]
        )["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.visibility_timeout = int(attributes.get("VisibilityTimeout", "30"))

    def poll_once(self, stats: DrainStats | None = None, wait_seconds: int = 0) -> int:
        """One receive and one invocation, as the event source mapping does. Returns records handled."""
        stats = stats or DrainStats()
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        context = LambdaContext(function_name="signal-freshdesk-retry", timeout_seconds=self.function_timeout)
        holding = self._hold_invisible(messages)
        try:
            answer = self.handler(event, context) or {}
            failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        except Exception:
            failed = {m["MessageId"] for m in messages}  # an invocation error returns the whole batch
        finally:
            holding.set()
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        stats.invocations += 1
        stats.records += len(messages)
        stats.failures += len(failed)
        return len(messages)

    def _hold_invisible(self, messages: list[dict[str, Any]]) -> threading.Event:
        """Keep the batch invisible while its invocation runs.

        The template sizes the queue's visibility timeout at six times the function timeout, so in AWS
        no record reappears while its invocation is still running. Local queues use a short visibility
        timeout so failed records come back quickly; extending it during the invocation keeps that
        guarantee. Failed records still reappear one visibility timeout after the invocation.
        """
        done = threading.Event()
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.visibility_timeout}
            for i, m in enumerate(messages)
        ]

        def extend() -> None:
            while not done.wait(max(0.2, self.visibility_timeout / 2)):
                try:
                    self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
                except Exception:
                    pass

        threading.Thread(target=extend, daemon=True, name="visibility-heartbeat").start()
        return done

    def pending(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def drain(
        self, timeout: float = 120.0, idle_sleep: float = 0.25, on_wait: Callable[[int], None] | None = None
    ) -> DrainStats:
        """Poll until the queue holds nothing (visible, in flight or delayed) or the timeout passes."""
        stats = DrainStats()
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            if self.poll_once(stats):
                continue
            left = self.pending()
            if left == 0:
                # The three counts are not one snapshot (moto computes each at its own instant), so a
                # message whose delay or visibility timeout ends during the read is in none of them.
                # Such a message is visible by now: empty only if one more receive also finds nothing.
                if self.poll_once(stats):
                    continue
                break
            if on_wait:
                on_wait(left)
            time.sleep(idle_sleep)
        return stats

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {
            k: {
                "stringValue": v.get("StringValue"),
                "dataType": v.get("DataType", "String"),
                "stringListValues": [],
                "binaryListValues": [],
            }
            for k, v in message.get("MessageAttributes", {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }
