"""The per-container objects both handlers share, built on first use and kept while warm."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from . import secrets_extension, secrets_manager
from .boto_clients import reset_clients
from .config import Settings
from .credentials import CredentialStore
from .dynamodb import DynamoDBClient
from .freshdesk import FreshdeskClient
from .idempotency import IdempotencyStore
from .sqs import RetryQueues


@dataclass
class Runtime:
    settings: Settings
    credentials: CredentialStore
    freshdesk: FreshdeskClient
    queues: RetryQueues
    idempotency: IdempotencyStore | None = None


_runtime: Runtime | None = None
_lock = threading.Lock()


def build_runtime(settings: Settings) -> Runtime:
    return Runtime(
        settings=settings,
        credentials=build_credentials(settings),
        freshdesk=FreshdeskClient(base_url_override=settings.base_url_override,
                                  connect_timeout=settings.connect_timeout,
                                  read_timeout=settings.read_timeout,
                                  pool_size=max(10, settings.batch_concurrency),
                                  rate_window=settings.rate_window_seconds),
        queues=RetryQueues(settings.retry_queue_url, settings.dlq_url),
        idempotency=(IdempotencyStore(settings.idempotency_table, DynamoDBClient(),
                                      ttl_seconds=settings.idempotency_ttl_seconds)
                     if settings.idempotency_table else None),
    )


def build_credentials(settings: Settings) -> CredentialStore:
    """The secret through the Parameters and Secrets extension when it is attached (no boto3 on a cold
    start), else from Secrets Manager with boto3. A 401 re-read always goes to Secrets Manager."""
    if secrets_extension.extension_enabled(settings.secrets_extension):
        reader = secrets_extension.ExtensionSecretReader(settings.secret_id, port=settings.secrets_extension_port)
        return secrets_extension.ExtensionCredentialStore(reader, max_age=settings.secret_max_age_seconds)
    return CredentialStore(lambda: secrets_manager.read_secret_json(settings.secret_id),
                           max_age=settings.secret_max_age_seconds)


def get_runtime() -> Runtime:
    """Raises ConfigError when the environment is wrong; the handlers turn that into a clear answer."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(Settings.from_env())
        return _runtime


def reset_runtime() -> None:
    """Forget every cached object (tests, and the local runner after it changes the environment)."""
    global _runtime
    with _lock:
        _runtime = None
    reset_clients()
