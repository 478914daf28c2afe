"""The ledger's settings: the functions' environment for a run, and the run's own configuration."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

DEFAULT_EVENTS = 150
# The functions' settings for the run, on top of the stack's environment.
LEDGER_ENV = {
    # A sandbox delay of 1 s is a timeout. The client still calls Freshdesk with a read timeout this
    # short (tests/reliability/test_found_bugs.py: test_a_short_read_timeout_still_calls_freshdesk).
    "FRESHDESK_READ_TIMEOUT": "0.5",
    "FRESHDESK_CONNECT_TIMEOUT": "0.5",
    "SECRET_MAX_AGE_SECONDS": "1",  # the secret is re-read every second: its failures matter
    "SECRETS_EXTENSION": "off",
    "MAX_ATTEMPTS": "4",  # with RETRY_BASE_SECONDS 1: exhausted after ~7 s of failures
    "RETRY_BASE_SECONDS": "1",
    "FRESHDESK_RATE_WINDOW_SECONDS": "2",  # the sandbox's storms use 2 s windows
    "CONSENT_MODE": "require",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


@dataclass
class FaultRates:
    """Probabilities. Sandbox faults are drawn once per Signal request; the others per occurrence."""

    freshdesk_5xx: float = 0.10  # fail_next(5xx, 1-3 calls)
    freshdesk_429: float = 0.05  # fail_next(429, 2-6 calls, Retry-After 1-2 s)
    freshdesk_timeout: float = 0.06  # delay(1 s > read timeout, 1-2 calls)
    freshdesk_slow: float = 0.06  # delay(0.05-0.3 s, 1-4 calls)
    freshdesk_drop: float = 0.05  # drop_next(1-2 connections)
    rate_storm: float = 0.02  # the account's limit down to 3-6 calls per 2 s, for 2-4 s
    field_toggle: float = 0.03  # the signup_method custom field removed / restored
    outages: int = 1  # every Freshdesk call 503 for 5-7 s (MAX_ATTEMPTS 4 span ~5 s)
    secret_failure: float = 0.10  # per read of the secret
    sqs_send_failure: float = 0.04  # per SendMessage (retry queue and DLQ)
    ingest_crash: float = 0.04  # per ingest invocation, after its work
    retry_crash: float = 0.08  # per retry invocation, after its work
    retry_kill: float = 0.02  # per retry record, after Freshdesk answered, before securing
    poison: float = 0.02  # per deliverable event: each retry message of it fails in the
    # retry function, every time (redriven raw to the DLQ)
    signal_resend_2xx: float = 0.08  # per request that got 2xx: re-sent again later
    signal_concurrent_copy: float = 0.03  # per request of at most 10 events: sent twice at once


@dataclass
class LedgerConfig:
    events: int = DEFAULT_EVENTS
    seed: int = 0
    max_batch: int = 100
    signal_attempts: int = 5  # Signal's webhook: 5 attempts with exponential backoff
    signal_backoff: float = 0.1  # seconds before the first re-send, doubled each time
    signal_workers: int = 2
    retry_workers: int = 2
    chaos_tail_seconds: float = 4.0  # faults keep coming this long after Signal's last request
    chaos_tick: float = 0.5  # and a fault may be armed this often, whatever the traffic
    drain_timeout: float = 180.0
    faults: FaultRates = field(default_factory=FaultRates)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> LedgerConfig:
        env = os.environ if env is None else env
        seed_text = env.get("LEDGER_SEED", "").strip()
        seed = int(seed_text) if seed_text else random.SystemRandom().randrange(1, 10**9)
        events = int(env.get("LEDGER_EVENTS", "").strip() or DEFAULT_EVENTS)
        config = cls(events=events, seed=seed)
        if events >= 600:
            config.faults.outages = 3
        for key, value in overrides.items():
            setattr(config, key, value)
        return config
