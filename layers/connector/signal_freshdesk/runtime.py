"""The composition root: builds the adapters once per container and hands them to the core as ports."""

from __future__ import annotations

import threading

from .adapters import secrets_extension
from .adapters.boto_clients import reset_clients
from .adapters.dynamodb import DynamoDBClient, DynamoDBIdempotencyStore, DynamoDBIdentityMap
from .adapters.freshdesk import FreshdeskClient
from .adapters.secrets_manager import SecretsManagerSource
from .adapters.sqs import SqsQueues
from .core.credentials import CredentialStore
from .core.pacing import RateBudget
from .core.ports import Runtime, SecretSource, SystemClock
from .core.settings import Settings

_runtime: Runtime | None = None
_lock = threading.Lock()


def build_runtime(settings: Settings) -> Runtime:
    clock = SystemClock()
    dynamodb = DynamoDBClient() if settings.idempotency_table or settings.identity_map_table else None
    return Runtime(
        settings=settings,
        credentials=build_credentials(settings),
        freshdesk=FreshdeskClient(
            base_url_override=settings.base_url_override,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            pool_size=max(10, settings.batch_concurrency),
            min_call_seconds=settings.timing.min_call_seconds,
        ),
        queues=SqsQueues(settings.retry_queue_url, settings.dlq_url),
        idempotency=(
            DynamoDBIdempotencyStore(settings.idempotency_table, dynamodb, ttl_seconds=settings.idempotency_ttl_seconds)
            if settings.idempotency_table and dynamodb is not None
            else None
        ),
        identity_map=(
            DynamoDBIdentityMap(
                settings.identity_map_table, dynamodb, ttl_seconds=settings.identity_map_ttl_days * 86_400
            )
            if settings.identity_map_table and dynamodb is not None
            else None
        ),
        clock=clock,
        rate=RateBudget(window=settings.rate_window_seconds, clock=clock.monotonic),
    )


def build_secret_source(settings: Settings) -> SecretSource:
    """The secret through the Parameters and Secrets extension when it is attached (no boto3 on a cold
    start), else from Secrets Manager with boto3. A 401 re-read always goes to Secrets Manager."""
    if secrets_extension.extension_enabled(settings.secrets_extension):
        return secrets_extension.ExtensionSecretSource(settings.secret_id, port=settings.secrets_extension_port)
    return SecretsManagerSource(settings.secret_id)


def build_credentials(settings: Settings) -> CredentialStore:
    return CredentialStore(build_secret_source(settings), max_age=settings.secret_max_age_seconds)


def get_runtime() -> Runtime:
    """Raises ConfigError when the environment is wrong; the entry modules turn that into a clear answer."""
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
