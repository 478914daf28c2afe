"""Freshdesk's rate limit as the answers tell it: the gate after a 429, and pacing before one.

Freshdesk's budget is per account and per window (a minute), shared by every caller, and each answer
says what is left of it (X-RateLimit-Remaining of X-RateLimit-Total) but not when the window ends. A
window first seen running at time t has ended by t + its length, so a caller that holds back until
then, once the budget is down to `reserve`, stays under the limit instead of spending calls on 429s.
`reserve` leaves room for the other callers' calls in flight. After a 429 anyway, the gate is closed
for Retry-After and every call waits that out instead of spending the budget; Retry-After is then the
authority on when the budget is back, so the guessed window ends with it and nothing is held longer.

The same answers also tell whether Freshdesk is down (5xx, timeouts, connection errors): `OutageGate`
keeps that state, so the retry function lets one event probe while the others wait without a call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..observability import count
from .backoff import retry_after_seconds
from .model import Answer
from .timing import MAX_SQS_DELAY_SECONDS

DEFAULT_RATE_WINDOW_SECONDS = 60.0
# Without a Retry-After, a 429 closes the gate for this long.
GATE_WITHOUT_RETRY_AFTER_SECONDS = 60
# A probe whose answer was never observed (the caller died, or made no call and did not say so) stops
# blocking the next probe after this long: more than a Freshdesk call can take.
PROBE_LEASE_SECONDS = 60.0


class OutageGate:
    """Whether Freshdesk is down, from the answers seen: one probe at a time while it is.

    A 5xx or no answer at all (timeout, connection error) is a failure; any other answer (2xx, 4xx, 429:
    Freshdesk is there and answering) ends the outage. After the first failure the next call may go at
    once, as the probe that tells a one-off error from an outage. After each further failure in a row,
    the next probe waits `base` × 2^(failures − 2) seconds, at most SQS's 900 s, like an event's backoff.
    Callers that may not probe are told how long to hold their event; they make no call.

    Plain state, thread-safe, fed by `RateBudget.observe` (every answer delivery sees), read by the retry
    flow through `admit` and `release_probe`.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.failures = 0
        self.last_status: int | None = None
        self._failed_at = 0.0
        self._probe_started: float | None = None

    @property
    def down(self) -> bool:
        with self._lock:
            return self.failures > 0

    def observe(self, answer: Answer) -> None:
        now = self._clock()
        with self._lock:
            if answer.status is not None and answer.status < 500:
                self.failures, self._probe_started = 0, None
                return
            # One failure per round: the first one, then the probe's. The answers of calls that were
            # already in flight (a batch, the ingest function) say nothing new about the outage, and
            # counting them would push the next probe out by minutes after a few seconds of trouble.
            if self.failures == 0 or self._probe_started is not None:
                self.failures += 1
                self._failed_at = now
            self.last_status = answer.status
            self._probe_started = None

    def admit(self, base: float) -> float:
        """0: call Freshdesk now (it is up, or this caller is the probe and holds it until an answer is
        observed or it calls `release_probe`). Otherwise the seconds to hold the event without a call."""
        now = self._clock()
        with self._lock:
            if self.failures == 0:
                return 0.0
            if self._probe_started is not None and now < self._probe_started + PROBE_LEASE_SECONDS:
                return max(1.0, _probe_interval(self.failures + 1, base))
            probe_at = self._failed_at + _probe_interval(self.failures, base)
            if now >= probe_at:
                self._probe_started = now
                return 0.0
            return probe_at - now

    def release_probe(self) -> None:
        """The admitted caller made no call after all (a drop, the rate gate, no secret): another may probe."""
        with self._lock:
            self._probe_started = None


def _probe_interval(failures: int, base: float) -> float:
    """How long after the last of `failures` failures in a row the next probe may go."""
    if failures <= 1:
        return 0.0
    return float(min(MAX_SQS_DELAY_SECONDS, base * 2 ** min(failures - 2, 16)))


class RateBudget:
    """Thread-safe: the answers of a batch's concurrent calls all pass through `observe`."""

    def __init__(
        self, window: float = DEFAULT_RATE_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._closed_until = 0.0
        self.remaining: int | None = None
        self.total: int | None = None
        self._window_seen_at = 0.0
        self.outage = OutageGate(clock)

    def observe(self, answer: Answer) -> None:
        """Note what one Freshdesk answer says about the budget."""
        now = self._clock()
        self.outage.observe(answer)
        remaining = _header_int(answer, "X-RateLimit-Remaining")
        with self._lock:
            if remaining is not None:
                # A new window: more budget than before (a reset), or the seen window must be over by now.
                # Answers of concurrent calls can arrive out of order; that only makes the wait longer.
                if self.remaining is None or remaining > self.remaining or now >= self._window_seen_at + self._window:
                    self._window_seen_at = now
                self.remaining = remaining
                self.total = _header_int(answer, "X-RateLimit-Total")
                count("freshdesk_rate_remaining", remaining)  # a gauge: the dashboard shows its Minimum
            if answer.status == 429:
                count("freshdesk_429")
                wait = retry_after_seconds(answer)
                wait = GATE_WITHOUT_RETRY_AFTER_SECONDS if wait is None else min(max(wait, 1), MAX_SQS_DELAY_SECONDS)
                self._closed_until = max(self._closed_until, now + wait)
                # Freshdesk said when its budget is back: the window taken to be running ends then, not
                # a guessed window length after this answer. Pacing holds nothing past the gate.
                self._window_seen_at = self._closed_until - self._window

    def rate_limited_for(self) -> float:
        """Seconds left of the wait a 429 asked for; 0 when the gate is open."""
        with self._lock:
            return max(0.0, self._closed_until - self._clock())

    def pacing_delay(self, reserve: int = 1) -> float:
        """Seconds to hold back the next call because the last answer left `reserve` calls or fewer in
        the window: until that window must have ended. 0: the budget allows a call now."""
        with self._lock:
            if self.remaining is None or self.remaining > reserve:
                return 0.0
            return max(0.0, self._window_seen_at + self._window - self._clock())


def _header_int(answer: Answer, name: str) -> int | None:
    raw = answer.header(name)
    try:
        return max(0, int(raw.strip())) if raw is not None else None
    except ValueError:
        return None
