"""Amazon DynamoDB over its JSON API with urllib3 and our SigV4 signer (a few calls, no botocore import),
and the idempotency table on it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import urllib3

from ..core.errors import StoreUnavailable
from ..core.identity import Known
from ..core.ports import DONE, IN_PROGRESS, NEW, Claim
from .sigv4 import AwsCredentials, signed_headers

TARGET_PREFIX = "DynamoDB_20120810."


class DynamoDBError(Exception):
    def __init__(self, code: str, message: str = "", body: Any = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.body = body


def dynamodb_endpoint(region: str) -> str:
    """`AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` as boto3 honours them, else the regional endpoint."""
    return (
        os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
        or os.environ.get("AWS_ENDPOINT_URL")
        or f"https://dynamodb.{region}.amazonaws.com"
    ).rstrip("/") + "/"


class DynamoDBClient:
    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        pool: urllib3.PoolManager | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.endpoint = endpoint or dynamodb_endpoint(self.region)
        self._pool = pool or urllib3.PoolManager(
            maxsize=10,
            retries=urllib3.Retry(
                total=2,
                connect=2,
                read=1,
                status=2,
                backoff_factor=0.05,
                status_forcelist=(500, 503),
                allowed_methods=None,
                raise_on_status=False,
            ),
        )
        self._timeout = urllib3.Timeout(connect=1.0, read=timeout)

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = signed_headers(
            url=self.endpoint,
            body=body,
            region=self.region,
            service="dynamodb",
            credentials=AwsCredentials.from_env(),
            headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET_PREFIX + operation},
        )
        try:
            response = self._pool.request("POST", self.endpoint, body=body, headers=headers, timeout=self._timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise DynamoDBError("ConnectionError", type(exc).__name__) from None
        try:
            answer: dict[str, Any] = json.loads(response.data or b"{}")
        except ValueError:
            answer = {}
        if response.status != 200:
            code = str(answer.get("__type", f"HTTP{response.status}")).rpartition("#")[2]
            raise DynamoDBError(code, str(answer.get("message") or answer.get("Message") or ""), answer)
        return answer


class DynamoDBIdempotencyStore:
    """The core's IdempotencyStore port on a DynamoDB table: one item per messageId, expired by TTL."""

    def __init__(
        self,
        table: str,
        client: DynamoDBClient,
        *,
        ttl_seconds: int = 86_400,
        in_progress_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
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
            self.client.call(
                "PutItem",
                {
                    "TableName": self.table,
                    "Item": {
                        "id": {"S": key},
                        "status": {"S": IN_PROGRESS},
                        "expiration": {"N": str(now + self.ttl_seconds)},
                        "in_progress_until": {"N": str(now + hold)},
                    },
                    "ConditionExpression": (
                        "attribute_not_exists(id) OR expiration < :now OR "
                        "(#status = :in_progress AND in_progress_until < :now)"
                    ),
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {":now": {"N": str(now)}, ":in_progress": {"S": IN_PROGRESS}},
                },
            )
            return Claim(NEW)
        except DynamoDBError as exc:
            if exc.code != "ConditionalCheckFailedException":
                raise StoreUnavailable(str(exc)) from None
        return self.read(key) or Claim(NEW)

    def read(self, key: str) -> Claim | None:
        try:
            item = self.client.call(
                "GetItem", {"TableName": self.table, "Key": {"id": {"S": key}}, "ConsistentRead": True}
            ).get("Item")
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
            self.client.call(
                "PutItem",
                {
                    "TableName": self.table,
                    "Item": {
                        "id": {"S": key},
                        "status": {"S": DONE},
                        "summary": {"S": json.dumps(summary, separators=(",", ":"), default=str)},
                        "expiration": {"N": str(now + self.ttl_seconds)},
                    },
                },
            )
        except DynamoDBError as exc:
            raise StoreUnavailable(str(exc)) from None

    def release(self, key: str) -> None:
        """Forget a claim whose event could not be secured, so Signal's retry is processed afresh."""
        try:
            self.client.call("DeleteItem", {"TableName": self.table, "Key": {"id": {"S": key}}})
        except DynamoDBError as exc:
            raise StoreUnavailable(str(exc)) from None


class DynamoDBIdentityMap:
    """The core's IdentityMap port on a DynamoDB table: one item per identifier key (an HMAC), expired by TTL.

    A person with several identifiers has an item under each, so whichever the next event carries finds
    them. Reads are one BatchGetItem, writes one BatchWriteItem (at most three keys each).
    """

    def __init__(
        self,
        table: str,
        client: DynamoDBClient,
        *,
        ttl_seconds: int = 400 * 86_400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def find(self, keys: list[str]) -> Known | None:
        if not keys:
            return None
        try:
            answer = self.client.call(
                "BatchGetItem",
                {
                    "RequestItems": {
                        self.table: {
                            "Keys": [{"id": {"S": key}} for key in dict.fromkeys(keys)],
                            "ConsistentRead": True,
                        }
                    }
                },
            )
        except DynamoDBError as exc:
            raise StoreUnavailable(str(exc)) from None
        now = int(self.clock())
        items = {
            item["id"]["S"]: item
            for item in answer.get("Responses", {}).get(self.table, [])
            if int(item.get("expiration", {}).get("N", "0")) >= now and "claimed_until" not in item
        }
        for key in keys:
            if key in items:
                return _known_from_item(items[key])
        return None

    def remember(self, keys: list[str], known: Known) -> None:
        item = _item_from_known(known, expiration=int(self.clock()) + self.ttl_seconds)
        self._write([{"PutRequest": {"Item": {"id": {"S": key}, **item}}} for key in dict.fromkeys(keys)])

    def forget(self, keys: list[str]) -> None:
        self._write([{"DeleteRequest": {"Key": {"id": {"S": key}}}} for key in dict.fromkeys(keys)])

    def claim(self, keys: list[str], hold_seconds: float) -> bool:
        if not keys:
            return True
        now = int(self.clock())
        try:
            self.client.call(
                "PutItem",
                {
                    "TableName": self.table,
                    "Item": {
                        "id": {"S": keys[0]},
                        "claimed_until": {"N": str(now + max(1, int(hold_seconds) + 1))},
                        "expiration": {"N": str(now + self.ttl_seconds)},
                    },
                    "ConditionExpression": (
                        "attribute_not_exists(id) OR expiration < :now OR claimed_until < :now"
                        " OR (attribute_not_exists(contact_id) AND attribute_not_exists(claimed_until))"
                    ),
                    "ExpressionAttributeValues": {":now": {"N": str(now)}},
                },
            )
        except DynamoDBError as exc:
            if exc.code == "ConditionalCheckFailedException":
                return False
            raise StoreUnavailable(str(exc)) from None
        return True

    def _write(self, requests: list[dict[str, Any]]) -> None:
        if not requests:
            return
        try:
            self.client.call("BatchWriteItem", {"RequestItems": {self.table: requests}})
        except DynamoDBError as exc:
            raise StoreUnavailable(str(exc)) from None


def _item_from_known(known: Known, *, expiration: int) -> dict[str, Any]:
    item: dict[str, Any] = {"expiration": {"N": str(expiration)}, "deleted": {"BOOL": known.deleted}}
    if known.contact_id is not None:
        item["contact_id"] = {"N": str(known.contact_id)}
    if known.newest:
        item["newest"] = {"S": known.newest}
    if known.has_tag is not None:
        item["has_tag"] = {"BOOL": known.has_tag}
    if known.external_id is not None:
        item["external_id"] = {"S": known.external_id}
    if known.digest:
        item["digest"] = {"S": known.digest}
    return item


def _known_from_item(item: dict[str, Any]) -> Known:
    contact_id = item.get("contact_id", {}).get("N")
    has_tag = item.get("has_tag", {}).get("BOOL")
    external_id = item.get("external_id", {}).get("S")
    return Known(
        contact_id=int(contact_id) if contact_id is not None else None,
        newest=item.get("newest", {}).get("S", ""),
        has_tag=has_tag if isinstance(has_tag, bool) else None,
        external_id=external_id if isinstance(external_id, str) else None,
        digest=item.get("digest", {}).get("S", ""),
        deleted=item.get("deleted", {}).get("BOOL") is True,
    )
