"""Settings from the environment: plain data, validated once per container."""

from __future__ import annotations

import ipaddress
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import phonenumbers

from .backoff import backoff_delay
from .errors import ConfigError
from .rules import DEFAULT_MAPPING, ContactMapping, bundled_mapping_path, mapping_from
from .timing import TimingPolicy

CONSENT_MODES = ("require", "tag_only", "off")
SECRETS_EXTENSION_MODES = ("auto", "on", "off")

DEFAULT_MAX_RETRY_AGE_SECONDS = 86_400


class _ShortestDraws(random.Random):
    """Every backoff draw at the low end of its jitter range: the quickest a failing event can retry."""

    def uniform(self, a: float, b: float) -> float:
        return a


def attempts_to_outlast(age_seconds: float, base: int = 1) -> int:
    """The fewest attempts an event that fails every time (5xx, timeouts) cannot make within
    `age_seconds`, however its backoff jitter falls: the smallest n whose n − 1 shortest backoff delays
    add up to `age_seconds` or more. As the attempt bound, it leaves ending retries to the age bound.

    With base 1 (the lowest RETRY_BASE_SECONDS) the delays are 1, 1, 2, 4 … 256 s (512 s in all after
    ten attempts), then 450 s each (half of SQS's 900 s cap): 24 h takes 202 attempts. A larger base
    reaches the cap sooner and needs fewer (199 with the default 10 s).
    """
    rng = _ShortestDraws()
    attempts, elapsed = 1, 0.0
    while elapsed < age_seconds:
        elapsed += backoff_delay(attempts, rng=rng, base=base)
        attempts += 1
    return attempts


# 202: no RETRY_BASE_SECONDS lets backoff spend this many attempts within the default 24 h, so by
# default the age bound (MAX_RETRY_AGE_SECONDS), not the attempt count, ends an event's retries.
DEFAULT_MAX_ATTEMPTS = attempts_to_outlast(DEFAULT_MAX_RETRY_AGE_SECONDS, base=1)


@dataclass(frozen=True)
class Settings:
    secret_id: str = ""
    retry_queue_url: str = ""
    dlq_url: str = ""
    base_url_override: str = ""
    default_phone_region: str = "GB"
    consent_mode: str = "require"
    # The mapping events go through (MAPPING_FILE; docs/mapping.md): the Default preset when there is none.
    mapping: ContactMapping = DEFAULT_MAPPING
    # An explicit bound (MAX_ATTEMPTS); by default too high to reach before the age bound.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_retry_age_seconds: int = DEFAULT_MAX_RETRY_AGE_SECONDS
    retry_base_seconds: int = 10
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    # A batch of 100 at 150 ms per Freshdesk answer in about 1.6 s (bench/results.md); at most the
    # size of the connection pools (10), so no connection is opened only to be thrown away.
    batch_concurrency: int = 10
    timing: TimingPolicy = field(default_factory=TimingPolicy)
    secret_max_age_seconds: float = 300.0
    max_body_bytes: int = 1024 * 1024
    max_batch_events: int = 100
    # Performance settings (see docs/performance.md): where the secret is read from, and how the
    # retry function paces itself under Freshdesk's per-account, per-window rate limit.
    secrets_extension: str = "auto"
    secrets_extension_port: int = 2773
    rate_window_seconds: float = 60.0
    retry_rate_reserve: int = 1
    retry_pacing_max_wait_seconds: float = 10.0
    idempotency_table: str = ""
    idempotency_ttl_seconds: int = 86_400
    identity_map_table: str = ""
    identity_map_ttl_days: int = 400
    signature_header: str = "X-Signal-Signature"
    timestamp_header: str = "X-Signal-Timestamp"
    signature_tolerance_seconds: float = 300.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        consent_mode = env.get("CONSENT_MODE", "require").strip().lower() or "require"
        if consent_mode not in CONSENT_MODES:
            raise ConfigError(f"CONSENT_MODE must be one of {', '.join(CONSENT_MODES)}, not {consent_mode!r}")
        region = env.get("DEFAULT_PHONE_REGION", "GB").strip().upper() or "GB"
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(f"DEFAULT_PHONE_REGION must be a two-letter ISO region such as GB, not {region!r}")
        return cls(
            secret_id=env.get("FRESHDESK_SECRET_ID", "").strip(),
            retry_queue_url=env.get("RETRY_QUEUE_URL", "").strip(),
            dlq_url=env.get("DLQ_URL", "").strip(),
            base_url_override=_loopback_base_url(env),
            default_phone_region=region,
            consent_mode=consent_mode,
            mapping=mapping_from_env(env),
            max_attempts=_int(env, "MAX_ATTEMPTS", cls.max_attempts, minimum=1),
            max_retry_age_seconds=_int(env, "MAX_RETRY_AGE_SECONDS", cls.max_retry_age_seconds, minimum=60),
            retry_base_seconds=_int(env, "RETRY_BASE_SECONDS", cls.retry_base_seconds, minimum=1),
            connect_timeout=_float(env, "FRESHDESK_CONNECT_TIMEOUT", cls.connect_timeout),
            read_timeout=_float(env, "FRESHDESK_READ_TIMEOUT", cls.read_timeout),
            batch_concurrency=_int(env, "BATCH_CONCURRENCY", cls.batch_concurrency, minimum=1),
            secret_max_age_seconds=_float(env, "SECRET_MAX_AGE_SECONDS", cls.secret_max_age_seconds),
            secrets_extension=_choice(env, "SECRETS_EXTENSION", SECRETS_EXTENSION_MODES, cls.secrets_extension),
            secrets_extension_port=_int(
                env, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", cls.secrets_extension_port, minimum=1
            ),
            rate_window_seconds=_float(env, "FRESHDESK_RATE_WINDOW_SECONDS", cls.rate_window_seconds),
            retry_rate_reserve=_int(env, "RETRY_RATE_RESERVE", cls.retry_rate_reserve, minimum=0),
            retry_pacing_max_wait_seconds=_float(
                env, "RETRY_PACING_MAX_WAIT_SECONDS", cls.retry_pacing_max_wait_seconds
            ),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", "").strip(),
            identity_map_table=env.get("IDENTITY_MAP_TABLE", "").strip(),
            identity_map_ttl_days=_int(env, "IDENTITY_MAP_TTL_DAYS", cls.identity_map_ttl_days, minimum=1),
            idempotency_ttl_seconds=_int(env, "IDEMPOTENCY_TTL_SECONDS", cls.idempotency_ttl_seconds, minimum=60),
            signature_header=env.get("WEBHOOK_SIGNATURE_HEADER", "").strip() or cls.signature_header,
            timestamp_header=env.get("WEBHOOK_TIMESTAMP_HEADER", "").strip() or cls.timestamp_header,
            signature_tolerance_seconds=_float(
                env, "WEBHOOK_SIGNATURE_TOLERANCE_SECONDS", cls.signature_tolerance_seconds
            ),
        )


# FRESHDESK_BASE_URL replaces https://{domain}.freshdesk.com, and every call to it carries the API key: it is
# honoured only for a Freshdesk on this machine (the sandbox, the tests, make serve), never for another host.
_LOOPBACK_NAMES = ("localhost",)
# Under `sam local` (which sets AWS_SAM_LOCAL=true in its containers) the machine running the sandbox is
# reachable from inside Docker only by this name (events/env.local.json); a deployed function never has it.
_SAM_LOCAL_HOST = "host.docker.internal"


def _loopback_base_url(env: Mapping[str, str]) -> str:
    raw = env.get("FRESHDESK_BASE_URL", "").strip().rstrip("/")
    if not raw:
        return ""
    refusal = (
        "FRESHDESK_BASE_URL may only point at a Freshdesk stand-in on this machine (http://127.0.0.1:PORT, "
        "localhost or [::1]); leave it empty to use https://{domain}.freshdesk.com"
    )
    try:
        url = urlsplit(raw)
        host = (url.hostname or "").lower()
        url.port  # noqa: B018 - validates the port: ValueError when it is not a number in range
    except ValueError:
        raise ConfigError(f"{refusal}; the value is not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise ConfigError(f"{refusal}; the scheme must be http or https, not {url.scheme or '(none)'!r}")
    if url.username is not None or url.password is not None:
        raise ConfigError(f"{refusal}; the URL must not hold credentials")
    if host in _LOOPBACK_NAMES or _is_loopback_ip(host):
        return raw
    if host == _SAM_LOCAL_HOST and env.get("AWS_SAM_LOCAL", "").strip().lower() == "true":
        return raw
    raise ConfigError(f"{refusal}; host {host or '(none)'!r} is not loopback")


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value


__all__ = [
    "CONSENT_MODES",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_RETRY_AGE_SECONDS",
    "SECRETS_EXTENSION_MODES",
    "ConfigError",
    "Settings",
    "attempts_to_outlast",
]


def mapping_from_env(env: Mapping[str, str]) -> ContactMapping:
    """`MAPPING_FILE`: a path, or `default` for the built-in mapping; unset: the mapping file shipped with
    the package (`mapping.json`) when there is one, else the built-in mapping. Raises MappingError (a
    ConfigError) naming the line of a file the connector cannot use: the functions do not start with it."""
    chosen = env.get("MAPPING_FILE", "").strip()
    if chosen.lower() == "default":
        return DEFAULT_MAPPING
    return mapping_from(chosen or bundled_mapping_path())
