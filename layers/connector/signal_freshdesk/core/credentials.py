"""The connector's credentials: parsed from the secret, validated, and cached per container."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ConfigError, SecretUnavailable

PLACEHOLDER_PREFIX = "REPLACE_WITH"

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_FRESHDESK_URL = re.compile(r"^https?://([^./:]+)\.freshdesk\.com/?$", re.IGNORECASE)


@dataclass(frozen=True)
class Credentials:
    domain: str
    api_key: str = field(repr=False)
    webhook_token: str = field(repr=False)
    # Optional: when set, callers must also sign the raw body (HMAC-SHA256) with a fresh timestamp.
    signing_secret: str = field(default="", repr=False)
    # Optional: the identity map's HMAC key; derived from the webhook token when absent.
    identity_key: str = field(default="", repr=False)

    def base_url(self, override: str = "") -> str:
        return override or f"https://{self.domain}.freshdesk.com"


def normalise_domain(raw: object) -> str:
    """Reduce a configured Freshdesk domain to its subdomain, refusing anything that could point elsewhere."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError("the secret's 'domain' is missing: set it to your Freshdesk subdomain, e.g. acme")
    value = raw.strip()
    if value.startswith(PLACEHOLDER_PREFIX):
        raise ConfigError("the secret's 'domain' still holds its placeholder: set it to your Freshdesk subdomain")
    url = _FRESHDESK_URL.match(value)
    if url:
        value = url.group(1)
    value = value.lower()
    if not _DNS_LABEL.match(value):
        raise ConfigError(
            "the secret's 'domain' must be only your Freshdesk subdomain (letters, digits, hyphens), "
            "e.g. acme for https://acme.freshdesk.com"
        )
    return value


def parse_credentials(secret: object) -> Credentials:
    if not isinstance(secret, dict):
        raise ConfigError("the secret must be a JSON object with domain, api_key and webhook_token")
    domain = normalise_domain(secret.get("domain"))
    api_key = secret.get("api_key")
    if not isinstance(api_key, str) or not api_key.strip():
        raise ConfigError("the secret's 'api_key' is missing: paste the API key from your Freshdesk profile")
    if api_key.strip().startswith(PLACEHOLDER_PREFIX):
        raise ConfigError("the secret's 'api_key' still holds its placeholder: paste your Freshdesk API key")
    token = secret.get("webhook_token")
    if not isinstance(token, str) or len(token.strip()) < 16:
        raise ConfigError("the secret's 'webhook_token' is missing or shorter than 16 characters")
    signing = secret.get("signing_secret") or ""
    if not isinstance(signing, str) or (signing.strip() and len(signing.strip()) < 16):
        raise ConfigError("the secret's 'signing_secret', when set, must be text of at least 16 characters")
    identity = secret.get("identity_key") or ""
    if not isinstance(identity, str) or (identity.strip() and len(identity.strip()) < 16):
        raise ConfigError("the secret's 'identity_key', when set, must be text of at least 16 characters")
    return Credentials(
        domain=domain,
        api_key=api_key.strip(),
        webhook_token=token.strip(),
        signing_secret=signing.strip(),
        identity_key=identity.strip(),
    )


# How long a configuration error (a placeholder or malformed secret) is answered from memory before the
# secret is read again: requests meanwhile cost no Secrets Manager call. A fix is seen within this time.
CONFIG_ERROR_TTL_SECONDS = 30.0


class SecretSource(Protocol):
    """The port the secret is read through (Secrets Manager, or the Parameters and Secrets extension)."""

    def read_secret(self, *, force: bool = False) -> Any:
        """The secret's JSON value. `force` skips every cache on the way (a key rotated after a 401).

        Raises ConfigError (the secret is missing or malformed) or SecretUnavailable."""
        ...


class CredentialStore:
    """Thread-safe cache in front of a SecretSource.

    `refresh(stale)` re-reads once, past every cache, however many threads saw the same stale key fail
    with 401.

    A ConfigError (the secret holds a placeholder or is malformed) is remembered for `error_ttl` seconds:
    it will not mend by itself within seconds, and re-reading it for each request only adds Secrets
    Manager calls and latency. A SecretUnavailable (throttling, a network or permission failure) is not
    remembered: it is usually transient, each request needs the secret anyway (Lambda runs one request
    per container at a time, so there is no stampede to absorb), and remembering it would turn a
    one-call blip into seconds of 503s.
    """

    def __init__(
        self,
        source: SecretSource,
        *,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        error_ttl: float = CONFIG_ERROR_TTL_SECONDS,
    ) -> None:
        self._source = source
        self._max_age = max_age
        self._clock = clock
        self._error_ttl = error_ttl
        self._lock = threading.Lock()
        self._cached: Credentials | None = None
        self._read_at = 0.0
        self._error: str | None = None
        self._error_at = 0.0

    def get(self) -> Credentials:
        with self._lock:
            if self._cached is None or self._clock() - self._read_at >= self._max_age:
                if self._error is not None and self._clock() - self._error_at < self._error_ttl:
                    raise ConfigError(self._error)
                return self._load(force=False)
            return self._cached

    def refresh(self, stale: Credentials) -> Credentials:
        with self._lock:
            if self._cached is stale or self._cached is None:
                return self._load(force=True)
            return self._cached

    def _load(self, *, force: bool) -> Credentials:
        try:
            credentials = parse_credentials(self._source.read_secret(force=force))
        except ConfigError as exc:
            self._error, self._error_at = str(exc), self._clock()
            raise
        self._cached, self._read_at = credentials, self._clock()
        self._error = None
        return credentials


__all__ = [
    "CONFIG_ERROR_TTL_SECONDS",
    "ConfigError",
    "CredentialStore",
    "Credentials",
    "SecretUnavailable",
    "normalise_domain",
    "parse_credentials",
]
