"""Freshdesk's rate limit as the answers tell it: the gate after a 429, and pacing before one.

Freshdesk's budget is per account and per window (a minute), shared by every caller, and each answer
says what is left of it (X-RateLimit-Remaining of X-RateLimit-Total) but not when the window ends. A
window first seen running at time t has ended by t + its length, so a caller that holds back until
then, once the budget is down to `reserve`, stays under the limit instead of spending calls on 429s.
`reserve` leaves room for the other callers' calls in flight. After a 429 anyway, the gate is closed
for Retry-After and every call waits that out instead of spending the budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .backoff import retry_after_seconds
from .model import Answer
from .timing import MAX_SQS_DELAY_SECONDS

DEFAULT_RATE_WINDOW_SECONDS = 60.0
# Without a Retry-After, a 429 closes the gate for this long.
GATE_WITHOUT_RETRY_AFTER_SECONDS = 60


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

    def observe(self, answer: Answer) -> None:
        """Note what one Freshdesk answer says about the budget."""
        now = self._clock()
        if answer.status == 429:
            wait = retry_after_seconds(answer)
            wait = GATE_WITHOUT_RETRY_AFTER_SECONDS if wait is None else min(max(wait, 1), MAX_SQS_DELAY_SECONDS)
            with self._lock:
                self._closed_until = max(self._closed_until, now + wait)
        remaining = _header_int(answer, "X-RateLimit-Remaining")
        if remaining is None:
            return
        with self._lock:
            # A new window: more budget than before (a reset), or the seen window must be over by now.
            # Answers of concurrent calls can arrive out of order; that only makes the wait longer.
            if self.remaining is None or remaining > self.remaining or now >= self._window_seen_at + self._window:
                self._window_seen_at = now
            self.remaining = remaining
            self.total = _header_int(answer, "X-RateLimit-Total")

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
