"""A local stand-in for the AWS Parameters and Secrets Lambda Extension (benchmark and tests only).

The real extension is a Lambda layer that serves ``GET /secretsmanager/get?secretId=<id>`` on
localhost (port 2773 by default), checks the ``X-Aws-Parameters-Secrets-Token`` header against the
function's session token, and answers with the GetSecretValue JSON from its own cache. This stand-in
does the same over real HTTP on loopback, the way the sandbox stands in for Freshdesk. Where the
extension's exact error answers are not documented, it answers 4xx with a short text: the connector
treats any answer but 200 alike (it asks Secrets Manager itself).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"

# secret id -> the GetSecretValue answer (a dict with SecretString), or None when there is no such secret
SecretLookup = Callable[[str], "dict[str, Any] | None"]


def static_lookup(secrets: dict[str, str]) -> SecretLookup:
    """A lookup over fixed {secret id: SecretString} pairs."""

    def lookup(secret_id: str) -> dict[str, Any] | None:
        if secret_id not in secrets:
            return None
        return {
            "ARN": secret_id,
            "Name": secret_id.rsplit(":", 1)[-1],
            "SecretString": secrets[secret_id],
            "VersionId": "00000000-0000-0000-0000-000000000001",
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": "2025-01-01T00:00:00.000Z",
        }

    return lookup


def boto3_lookup(endpoint_url: str | None = None, region: str = "eu-west-1") -> SecretLookup:
    """A lookup that asks Secrets Manager (moto, here) as the extension does on a cache miss."""
    import boto3

    client = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)

    def lookup(secret_id: str) -> dict[str, Any] | None:
        try:
            answer = client.get_secret_value(SecretId=secret_id)
        except client.exceptions.ResourceNotFoundException:
            return None
        answer.pop("ResponseMetadata", None)
        created = answer.get("CreatedDate")
        if created is not None and not isinstance(created, str):
            answer["CreatedDate"] = created.isoformat()
        return answer

    return lookup


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        stand_in = self.server.stand_in
        parts = urlsplit(self.path)
        with stand_in.lock:
            stand_in.hits += 1
            forced = stand_in.fail_status
        if parts.path != "/secretsmanager/get":
            return self._answer(404, "not found")
        if forced:
            return self._answer(forced, "injected failure")
        if self.headers.get(TOKEN_HEADER) != stand_in.token:
            return self._answer(401, "missing or wrong X-Aws-Parameters-Secrets-Token")
        secret_id = (parse_qs(parts.query).get("secretId") or [""])[-1]
        if not secret_id:
            return self._answer(400, "secretId is required")
        value = stand_in.get(secret_id)
        if value is None:
            return self._answer(400, "ResourceNotFoundException: Secrets Manager can't find the specified secret")
        return self._answer(200, json.dumps(value), "application/json")

    def _answer(self, status: int, text: str, content_type: str = "text/plain") -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], stand_in: ExtensionStandIn) -> None:
        self.stand_in = stand_in
        super().__init__(address, _Handler)


class ExtensionStandIn:
    """Serve secrets as the extension does, with a cache of `ttl` seconds in front of `lookup`."""

    def __init__(
        self,
        lookup: SecretLookup,
        *,
        token: str = "testing",
        host: str = "127.0.0.1",
        port: int = 0,
        ttl: float = 300.0,
    ) -> None:
        self.lookup = lookup
        self.token = token
        self.host = host
        self.requested_port = port
        self.ttl = ttl
        self.lock = threading.Lock()
        self.hits = 0
        self.fail_status = 0  # answer every request with this status (tests)
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def get(self, secret_id: str) -> dict[str, Any] | None:
        with self.lock:
            cached = self._cache.get(secret_id)
            if cached and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
        value = self.lookup(secret_id)
        if value is not None:
            with self.lock:
                self._cache[secret_id] = (time.monotonic(), value)
        return value

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("stand-in not started")
        return self._server.server_address[1]

    def start(self) -> ExtensionStandIn:
        self._server = _Server((self.host, self.requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="secrets-extension-stand-in",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ExtensionStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
