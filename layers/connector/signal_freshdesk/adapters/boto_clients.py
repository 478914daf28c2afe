"""boto3 clients, created on first use and kept while the container is warm.

boto3 costs about 200 ms to import, so nothing imports it until a queue or Secrets Manager is needed.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def boto3_client(service: str) -> Any:
    with _lock:
        if service not in _clients:
            import boto3

            _clients[service] = boto3.client(service)
        return _clients[service]


def reset_clients() -> None:
    """Forget the clients (tests, and local runs that change AWS_ENDPOINT_URL)."""
    with _lock:
        _clients.clear()
