"""The per-container objects both handlers share, built on first use and kept while warm."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from . import secrets_manager, sqs
from .config import Settings
from .credentials import CredentialStore
from .freshdesk import FreshdeskClient
from .sqs import RetryQueues


@dataclass
class Runtime:
    settings: Settings
    credentials: CredentialStore
    freshdesk: FreshdeskClient
    queues: RetryQueues


_runtime: Runtime | None = None
_lock = threading.Lock()


def build_runtime(settings: Settings) -> Runtime:
    return Runtime(
        settings=settings,
        credentials=CredentialStore(lambda: secrets_manager.read_secret_json(settings.secret_id),
                                    max_age=settings.secret_max_age_seconds),
        freshdesk=FreshdeskClient(base_url_override=settings.base_url_override,
                                  connect_timeout=settings.connect_timeout,
                                  read_timeout=settings.read_timeout,
                                  pool_size=max(10, settings.batch_concurrency)),
        queues=RetryQueues(settings.retry_queue_url, settings.dlq_url),
    )


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
    secrets_manager.reset_client()
    sqs.reset_client()
