"""The ledger's settings: the functions' environment for a run, and the run's own configuration."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

from .chaos import FaultRates

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
