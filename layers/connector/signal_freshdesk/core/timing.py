"""One timing policy: how much of an invocation's time the connector spends, and what it keeps back.

Every wait and every "is there still time?" question in the core goes through a `Deadline`, and every
margin is a field of `TimingPolicy`, so the numbers live in one place.

The adapters whose calls the core does not hand a deadline (the idempotency store and the identity map)
read the invocation under way from `current_invocation()`: the entry modules set it with `invocation()`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# SQS accepts at most 15 minutes of delay per message (DelaySeconds).
MAX_SQS_DELAY_SECONDS = 900


@dataclass(frozen=True)
class TimingPolicy:
    # API Gateway's HTTP API gives up after 30 s; the webhook plans for a second less.
    webhook_seconds: float = 29.0
    # Kept back from the webhook's deadline to queue what was not delivered in time.
    ingest_reserve_seconds: float = 4.0
    # Kept back from the retry function's timeout to re-queue or return what is left.
    retry_reserve_seconds: float = 5.0
    # An event is queued, not sent, when less than this is left: a Freshdesk call would not finish.
    min_delivery_window_seconds: float = 1.5
    # No Freshdesk call starts with less than this left.
    min_call_seconds: float = 0.5
    # Without a Lambda context (tests, local tools) the retry function assumes this timeout.
    retry_default_seconds: float = 60.0


class Deadline:
    """A point on a monotonic clock by which work must end."""

    def __init__(self, at: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.at = at
        self._clock = clock

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + max(0.0, seconds), clock)

    def remaining(self) -> float:
        return self.at - self._clock()

    def earlier_by(self, seconds: float) -> Deadline:
        return Deadline(self.at - seconds, self._clock)

    def has(self, seconds: float) -> bool:
        """Whether at least `seconds` are left."""
        return self.remaining() >= seconds


def lambda_remaining_seconds(context: Any, default: float) -> float:
    """What the Lambda context says is left of the invocation, or `default` without one."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return float(remaining()) / 1000 if callable(remaining) else default


def ingest_deadline(policy: TimingPolicy, context: Any, clock: Callable[[], float] = time.monotonic) -> Deadline:
    """When the webhook stops delivering and starts queueing: inside API Gateway's and Lambda's limits."""
    budget = min(policy.webhook_seconds, lambda_remaining_seconds(context, policy.webhook_seconds))
    return Deadline.after(budget - policy.ingest_reserve_seconds, clock)


def retry_deadline(policy: TimingPolicy, context: Any, clock: Callable[[], float] = time.monotonic) -> Deadline:
    """When the retry function stops starting work: its timeout less the reserve."""
    budget = lambda_remaining_seconds(context, policy.retry_default_seconds)
    return Deadline.after(budget - policy.retry_reserve_seconds, clock)


@dataclass(frozen=True, eq=False)
class Invocation:
    """The time of one Lambda invocation, as the adapters see it: `deadline` is the core's (when delivery
    stops), `reserve` what is kept after it to secure what is left (queue it, record it), and
    `min_delivery_window` what an event needs before `deadline` to be sent at all."""

    deadline: Deadline
    reserve: float
    min_delivery_window: float

    def call_seconds(self) -> float:
        """How long a call may still take: until the end of the reserve."""
        return self.deadline.remaining() + self.reserve

    def may_claim(self) -> bool:
        """Whether an event claimed now could still be delivered (else it is queued, and needs no claim)."""
        return self.deadline.has(self.min_delivery_window)


_current_invocation: ContextVar[Invocation | None] = ContextVar("signal_freshdesk_invocation", default=None)
_active: list[Invocation] = []
_active_lock = threading.Lock()


@contextmanager
def invocation(deadline: Deadline, *, reserve: float, min_delivery_window: float) -> Iterator[Invocation]:
    """Mark the invocation under way, for the adapters' calls made on its behalf (the entry modules)."""
    current = Invocation(deadline, reserve, min_delivery_window)
    token = _current_invocation.set(current)
    with _active_lock:
        _active.append(current)
    try:
        yield current
    finally:
        with _active_lock:
            _active.remove(current)
        _current_invocation.reset(token)


def current_invocation() -> Invocation | None:
    """The invocation this thread works for: its context's, else the active one that ends last.

    The fallback serves a batch's worker threads, which do not inherit the context of the thread that
    started them. Lambda runs one invocation at a time per container, so there it is exact; where one
    process runs several at once (the local tools), the latest end is used, which never cuts a call
    shorter than its own invocation would.
    """
    found = _current_invocation.get()
    if found is not None:
        return found
    with _active_lock:
        return max(_active, key=lambda item: item.deadline.at + item.reserve, default=None)
