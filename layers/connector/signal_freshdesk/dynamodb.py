"""Amazon DynamoDB over its JSON API with urllib3 and our SigV4 signer: a few calls, no botocore import."""

from __future__ import annotations

import json
import os
from typing import Any

import urllib3

from .sigv4 import AwsCredentials, signed_headers

TARGET_PREFIX = "DynamoDB_20120810."


class DynamoDBError(Exception):
    def __init__(self, code: str, message: str = "", body: Any = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.body = body


def dynamodb_endpoint(region: str) -> str:
    """`AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` as boto3 honours them, else the regional endpoint."""
    return (os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
            or f"https://dynamodb.{region}.amazonaws.com").rstrip("/") + "/"


class DynamoDBClient:
    def __init__(self, *, region: str | None = None, endpoint: str | None = None,
                 pool: urllib3.PoolManager | None = None, timeout: float = 2.0) -> None:
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.endpoint = endpoint or dynamodb_endpoint(self.region)
        self._pool = pool or urllib3.PoolManager(
            maxsize=10, retries=urllib3.Retry(total=2, connect=2, read=1, status=2, backoff_factor=0.05,
                                              status_forcelist=(500, 503), allowed_methods=None,
                                              raise_on_status=False))
        self._timeout = urllib3.Timeout(connect=1.0, read=timeout)

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = signed_headers(
            url=self.endpoint, body=body, region=self.region, service="dynamodb",
            credentials=AwsCredentials.from_env(),
            headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET_PREFIX + operation},
        )
        try:
            response = self._pool.request("POST", self.endpoint, body=body, headers=headers, timeout=self._timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise DynamoDBError("ConnectionError", type(exc).__name__) from None
        try:
            answer = json.loads(response.data or b"{}")
        except ValueError:
            answer = {}
        if response.status != 200:
            code = str(answer.get("__type", f"HTTP{response.status}")).rpartition("#")[2]
            raise DynamoDBError(code, str(answer.get("message") or answer.get("Message") or ""), answer)
        return answer
