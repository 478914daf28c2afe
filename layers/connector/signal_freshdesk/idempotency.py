"""At most one Freshdesk delivery per Signal `messageId` within the retry horizon (DynamoDB, TTL).

Signal re-sends a webhook call that timed out and SQS delivers at least once, so the same event can
arrive twice; Freshdesk's per-account rate limit is the scarcest thing the user has. A record per
messageId is claimed with a conditional write before delivery and completed with the outcome (ids and
statuses only, never contact data). If the store itself fails, events are processed without it: a
duplicate call costs less than a lost event.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from .dynamodb import DynamoDBClient, DynamoDBError

IN_PROGRESS = "in_progress"
DONE = "done"
# Outcomes after which a re-delivered retry message needs no further work. `rejected` is not one of them:
# a parked event comes back only when someone replays it from the DLQ, and then it must be tried again.
HANDLED_OUTCOMES = frozenset({"delivered", "updated", "conflict", "dropped"})


@dataclass(frozen=True)
class Claim:
    """`new`: go ahead. `done`: already handled, with its summary. `in_progress`: another call holds it."""

    state: str
    summary: dict[str, Any] | None = None


class StoreUnavailable(Exception):
    pass


class IdempotencyStore:
    def __init__(self, table: str, client: DynamoDBClient, *, ttl_seconds: int = 86_400,
                 in_progress_seconds: int = 60, clock=time.time) -> None:
        self.table = table
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.in_progress_seconds = in_progress_seconds
        self.clock = clock

    def claim(self, key: str, hold_seconds: float | None = None) -> Claim:
        """Take `key` for `hold_seconds` (the claiming invocation's remaining lifetime): a claim left by
        an invocation that died expires with it, so Signal's next re-send is processed."""
        now = int(self.clock())
        hold = self.in_progress_seconds if hold_seconds is None else max(1, int(hold_seconds) + 1)
        try:
            self.client.call("PutItem", {
                "TableName": self.table,
                "Item": {"id": {"S": key}, "status": {"S": IN_PROGRESS},
                         "expiration": {"N": str(now + self.ttl_seconds)},
                         "in_progress_until": {"N": str(now + hold)}},
                "ConditionExpression": ("attribute_not_exists(id) OR expiration < :now OR "
                                        "(#status = :in_progress AND in_progress_until < :now)"),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":now": {"N": str(now)}, ":in_progress": {"S": IN_PROGRESS}},
            })
            return Claim("new")
        except DynamoDBError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise StoreUnavailable(str(exc)) from None
        return self.read(key) or Claim("new")

    def read(self, key: str) -> Claim | None:
        try:
            item = self.client.call("GetItem", {"TableName": self.table, "Key": {"id": {"S": key}},
                                                "ConsistentRead": True}).get("Item")
        except DynamoDBError as exc:
            raise StoreUnavailable(str(exc)) from None
        if not item or int(item.get("expiration", {}).get("N", "0")) < int(self.clock()):
            return None
        state = item.get("status", {}).get("S", "")
        if state == DONE:
            try:
                summary = json.loads(item.get("summary", {}).get("S", "{}"))
            except ValueError:
                summary = {}
            return Claim(DONE, summary)
        return Claim(IN_PROGRESS)

    def complete(self, key: str, summary: dict[str, Any]) -> None:
        now = int(self.clock())
        try:
            self.client.call("PutItem", {
                "TableName": self.table,
                "Item": {"id": {"S": key}, "status": {"S": DONE},
                         "summary": {"S": json.dumps(summary, separators=(",", ":"), default=str)},
                         "expiration": {"N": str(now + self.ttl_seconds)}},
            })
        except DynamoDBError as exc:
            raise StoreUnavailable(str(exc)) from None

    def release(self, key: str) -> None:
        """Forget a claim whose event could not be secured, so Signal's retry is processed afresh."""
        try:
            self.client.call("DeleteItem", {"TableName": self.table, "Key": {"id": {"S": key}}})
        except DynamoDBError as exc:
            raise StoreUnavailable(str(exc)) from None
