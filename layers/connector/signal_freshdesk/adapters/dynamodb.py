"""Amazon DynamoDB over its JSON API with urllib3 and our SigV4 signer (a few calls, no botocore import),
and the idempotency table on it.

The store is a help, never a must: its calls keep within the invocation's time (`current_invocation`),
and once DynamoDB fails to answer, the client stops calling it for `down_seconds`, so an outage costs a
batch one timeout, not one per call."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import urllib3

from ..core.errors import StoreUnavailable
from ..core.identity import Known
from ..core.ports import DONE, IN_PROGRESS, NEW, Claim
from ..core.timing import current_invocation
from .freshdesk import CallTimedOut, read_within
from .sigv4 import AwsCredentials, signed_headers

TARGET_PREFIX = "DynamoDB_20120810."
# Answers that say DynamoDB can't serve us now (besides no answer and 5xx): the store is taken as down.
_DOWN_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "InternalServerError"}
)
# No store call starts with less than this left of the invocation.
MIN_STORE_CALL_SECONDS = 0.2


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
    """A few DynamoDB calls. Each is bounded by its own timeouts (connect 1 s, read `timeout`, two retries)
    and, inside an invocation, by the time the invocation has left: then the timeouts shrink to fit and
    retries are dropped unless every attempt would fit. A failure to answer (no answer, a timeout, a 5xx,
    throttling) marks the store down for `down_seconds`: calls fail at once, without the network, until
    then (the rest of any webhook invocation, 30 s by default), and the next call after it probes again."""

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        pool: urllib3.PoolManager | None = None,
        timeout: float = 2.0,
        connect_timeout: float = 1.0,
        down_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.endpoint = endpoint or dynamodb_endpoint(self.region)
        self._retries = urllib3.Retry(
            total=2,
            connect=2,
            read=1,
            status=2,
            backoff_factor=0.05,
            status_forcelist=(500, 503),
            allowed_methods=None,
            raise_on_status=False,
        )
        self._pool = pool or urllib3.PoolManager(maxsize=10, retries=self._retries)
        self._connect_timeout = connect_timeout
        self._read_timeout = timeout
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=timeout)
        self._down_seconds = down_seconds
        self._clock = clock
        self._down_until = float("-inf")
        self._down_lock = threading.Lock()

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self._clock() < self._down_until:
            raise DynamoDBError("StoreDown", "not called: DynamoDB failed to answer moments ago")
        timeout, retries, limit = self._limits()
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = signed_headers(
            url=self.endpoint,
            body=body,
            region=self.region,
            service="dynamodb",
            credentials=AwsCredentials.from_env(),
            headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET_PREFIX + operation},
        )
        started = time.monotonic()
        try:
            options: dict[str, Any] = {} if retries is None else {"retries": retries}
            response = self._pool.request(
                "POST", self.endpoint, body=body, headers=headers, timeout=timeout, preload_content=False, **options
            )
            data = read_within(response, limit - (time.monotonic() - started))
        except (urllib3.exceptions.HTTPError, CallTimedOut, OSError) as exc:
            self._mark_down()
            raise DynamoDBError("ConnectionError", type(exc).__name__) from None
        try:
            answer: dict[str, Any] = json.loads(data or b"{}")
        except ValueError:
            answer = {}
        if response.status != 200:
            code = str(answer.get("__type", f"HTTP{response.status}")).rpartition("#")[2]
            if response.status >= 500 or code in _DOWN_CODES:
                self._mark_down()
            raise DynamoDBError(code, str(answer.get("message") or answer.get("Message") or ""), answer)
        return answer

    def _limits(self) -> tuple[urllib3.Timeout, urllib3.Retry | bool | None, float]:
        """The timeouts, the retries (None: the pool's) and the whole call's time limit."""
        one_attempt = self._connect_timeout + self._read_timeout
        attempts = 1 + int(self._retries.total or 0)
        invocation = current_invocation()
        if invocation is None:
            return self._timeout, None, one_attempt * attempts
        left = invocation.call_seconds()
        if left < MIN_STORE_CALL_SECONDS:
            raise DynamoDBError("DeadlineExceeded", "not called: no time left in this invocation")
        if left >= one_attempt * attempts:
            return self._timeout, None, one_attempt * attempts
        # Little time left: one attempt, cut to fit.
        timeout = urllib3.Timeout(
            connect=min(self._connect_timeout, left), read=min(self._read_timeout, left), total=left
        )
        return timeout, False, left

    def _mark_down(self) -> None:
        with self._down_lock:
            self._down_until = self._clock() + self._down_seconds


def _store_call(client: DynamoDBClient, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One call of a store: whatever DynamoDB says went wrong, the core hears StoreUnavailable."""
    try:
        return client.call(operation, payload)
    except DynamoDBError as exc:
        raise StoreUnavailable(str(exc)) from None


def _conditional(client: DynamoDBClient, operation: str, payload: dict[str, Any]) -> bool:
    """A conditional write: False when its condition refused it; any other failure is StoreUnavailable."""
    try:
        client.call(operation, payload)
    except DynamoDBError as exc:
        if exc.code == "ConditionalCheckFailedException":
            return False
        raise StoreUnavailable(str(exc)) from None
    return True


def _take_all(keys: list[str], take: Callable[[str], bool], let_go: Callable[[list[str]], None]) -> bool:
    """Take every key, or none: on a refusal the keys already taken are let go."""
    taken: list[str] = []
    for key in dict.fromkeys(keys):
        if not take(key):
            if taken:
                let_go(taken)
            return False
        taken.append(key)
    return True


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
        invocation = current_invocation()
        if invocation is not None and not invocation.may_claim():
            # Too late to deliver it: the core queues the event, and the retry function records it.
            raise StoreUnavailable("not claimed: too little time left to deliver the event")
        now = int(self.clock())
        hold = self.in_progress_seconds if hold_seconds is None else max(1, int(hold_seconds) + 1)
        claimed = _conditional(
            self.client,
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
        return Claim(NEW) if claimed else (self.read(key) or Claim(NEW))

    def read(self, key: str) -> Claim | None:
        item = _store_call(
            self.client, "GetItem", {"TableName": self.table, "Key": {"id": {"S": key}}, "ConsistentRead": True}
        ).get("Item")
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
        _store_call(
            self.client,
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

    def release(self, key: str) -> None:
        """Forget a claim whose event could not be secured, so Signal's retry is processed afresh."""
        _store_call(self.client, "DeleteItem", {"TableName": self.table, "Key": {"id": {"S": key}}})


class DynamoDBIdentityMap:
    """The core's IdentityMap port on a DynamoDB table: one item per identifier key (an HMAC), expired by TTL.

    A person with several identifiers has an item under each, so whichever the next event carries finds
    them. Reads are one BatchGetItem, writes one BatchWriteItem (at most three keys each); a hold is one
    conditional write per key, taken for all of a person's keys or none.
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
        answer = _store_call(
            self.client,
            "BatchGetItem",
            {
                "RequestItems": {
                    self.table: {"Keys": [{"id": {"S": key}} for key in dict.fromkeys(keys)], "ConsistentRead": True}
                }
            },
        )
        now = int(self.clock())
        items = {
            item["id"]["S"]: item
            for item in answer.get("Responses", {}).get(self.table, [])
            # A known person has a contact id, or was looked up and has none; an item that only holds
            # a person (being created or changed) is nobody.
            if int(item.get("expiration", {}).get("N", "0")) >= now
            and ("contact_id" in item or item.get("no_contact", {}).get("BOOL") is True)
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
        """Hold a person nobody knows yet (each key's hold replaces what stood there)."""
        return _take_all(keys, lambda key: self._claim_one(key, hold_seconds), self.forget)

    def lock(self, keys: list[str], hold_seconds: float) -> bool:
        """Hold a known person: a key without an entry gets one holding only the lock (and a TTL)."""
        return _take_all(keys, lambda key: self._lock_one(key, hold_seconds), self.unlock)

    def unlock(self, keys: list[str]) -> None:
        for key in dict.fromkeys(keys):
            _conditional(
                self.client,
                "UpdateItem",
                {
                    "TableName": self.table,
                    "Key": {"id": {"S": key}},
                    "UpdateExpression": "REMOVE claimed_until",
                    "ConditionExpression": "attribute_exists(id)",
                },
            )

    def _claim_one(self, key: str, hold_seconds: float) -> bool:
        now = int(self.clock())
        return _conditional(
            self.client,
            "PutItem",
            {
                "TableName": self.table,
                "Item": {
                    "id": {"S": key},
                    "claimed_until": {"N": str(now + max(1, int(hold_seconds) + 1))},
                    "expiration": {"N": str(now + self.ttl_seconds)},
                },
                # Free: no item, an expired one, a hold that ran out, or "looked up, no contact".
                "ConditionExpression": (
                    "attribute_not_exists(id) OR expiration < :now OR claimed_until < :now"
                    " OR (attribute_not_exists(contact_id) AND attribute_not_exists(claimed_until))"
                ),
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
            },
        )

    def _lock_one(self, key: str, hold_seconds: float) -> bool:
        now = int(self.clock())
        return _conditional(
            self.client,
            "UpdateItem",
            {
                "TableName": self.table,
                "Key": {"id": {"S": key}},
                "UpdateExpression": "SET claimed_until = :until, expiration = if_not_exists(expiration, :exp)",
                "ConditionExpression": "attribute_not_exists(claimed_until) OR claimed_until < :now",
                "ExpressionAttributeValues": {
                    ":now": {"N": str(now)},
                    ":until": {"N": str(now + max(1, int(hold_seconds) + 1))},
                    ":exp": {"N": str(now + self.ttl_seconds)},
                },
            },
        )

    def _write(self, requests: list[dict[str, Any]]) -> None:
        if requests:
            _store_call(self.client, "BatchWriteItem", {"RequestItems": {self.table: requests}})


def _item_from_known(known: Known, *, expiration: int) -> dict[str, Any]:
    item: dict[str, Any] = {"expiration": {"N": str(expiration)}, "deleted": {"BOOL": known.deleted}}
    if known.contact_id is not None:
        item["contact_id"] = {"N": str(known.contact_id)}
    else:
        item["no_contact"] = {"BOOL": True}
    if known.newest:
        item["newest"] = {"S": known.newest}
    if known.has_tag is not None:
        item["has_tag"] = {"BOOL": known.has_tag}
    if known.external_id is not None:
        item["external_id"] = {"S": known.external_id}
    if known.digest:
        item["digest"] = {"S": known.digest}
    if known.filled:
        item["filled"] = {"SS": sorted(known.filled)}
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
        filled=tuple(sorted(name for name in item.get("filled", {}).get("SS", []) if isinstance(name, str))),
    )
