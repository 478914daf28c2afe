"""How long a queued event waits before its next attempt."""

from __future__ import annotations

import random

from .model import Answer
from .timing import MAX_SQS_DELAY_SECONDS

BACKOFF_BASE_SECONDS = 10


def retry_after_seconds(answer: Answer) -> int | None:
    raw = answer.header("Retry-After")
    if raw is None:
        return None
    try:
        return max(0, int(float(raw.strip())))
    except (ValueError, OverflowError):  # "nan", "inf", an HTTP date
        return None


def backoff_delay(
    attempt: int, retry_after: int | None = None, rng: random.Random | None = None, base: int = BACKOFF_BASE_SECONDS
) -> int:
    """Seconds to wait before attempt `attempt + 1`: Retry-After when given, else exponential with jitter.

    Capped at SQS's per-message delay.
    """
    if retry_after is not None:
        return min(max(retry_after, 1), MAX_SQS_DELAY_SECONDS)
    ceiling = min(MAX_SQS_DELAY_SECONDS, base * 2 ** min(max(attempt - 1, 0), 16))
    draw = (rng or random).uniform(ceiling / 2, ceiling)
    return max(1, min(MAX_SQS_DELAY_SECONDS, round(draw)))
