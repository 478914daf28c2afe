"""Credentials read from the secret once per container, cached with a maximum age."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .config import ConfigError, Credentials, parse_credentials


class SecretUnavailable(Exception):
    """The secret could not be read (network, permissions, missing); the message holds no secret value."""


class CredentialStore:
    """Thread-safe cache in front of a secret reader.

    `refresh(stale)` re-reads once however many threads saw the same stale key fail with 401.
    """

    def __init__(self, read_secret: Callable[[], Any], *, max_age: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read_secret = read_secret
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: Credentials | None = None
        self._read_at = 0.0

    def get(self) -> Credentials:
        with self._lock:
            if self._cached is None or self._clock() - self._read_at >= self._max_age:
                self._load()
            assert self._cached is not None
            return self._cached

    def refresh(self, stale: Credentials) -> Credentials:
        with self._lock:
            if self._cached is stale or self._cached is None:
                self._load()
            assert self._cached is not None
            return self._cached

    def _load(self) -> None:
        raw = self._read_secret()
        self._cached = parse_credentials(raw)
        self._read_at = self._clock()


__all__ = ["ConfigError", "CredentialStore", "SecretUnavailable"]
