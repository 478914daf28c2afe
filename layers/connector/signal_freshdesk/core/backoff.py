"""How long a queued event waits before its next attempt."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

from .model import Answer
from .timing import MAX_SQS_DELAY_SECONDS

BACKOFF_BASE_SECONDS = 10


def retry_after_seconds(answer: Answer, *, now: float | None = None) -> int | None:
    """Freshdesk's `Retry-After` in whole seconds, rounded up (waiting a fraction too little earns another
    429), or None when there is none or it cannot be read.

    Both forms of RFC 9110 are read: delay-seconds ("34", "34.9" → 35) and an HTTP-date, which is
    measured from the answer's own `Date` header when it has one (so the two clocks' skew cancels out),
    else from `now` (Unix seconds; this function's clock when not given). A time already past is 0.
    """
    raw = answer.header("Retry-After")
    if raw is None:
        return None
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_date(text, answer, now)
    if not math.isfinite(seconds):  # "nan", "inf", "1e400"
        return None
    return max(0, math.ceil(seconds))


def _http_date(text: str) -> float | None:
    """Unix seconds of an HTTP-date (IMF-fixdate, and the obsolete RFC 850 and asctime forms), or None."""
    if not text or not any(ch.isalpha() for ch in text):
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # HTTP dates are always GMT
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _seconds_until_date(text: str, answer: Answer, now: float | None) -> int | None:
    retry_at = _http_date(text)
    if retry_at is None:
        return None
    reference = _http_date((answer.header("Date") or "").strip())
    if reference is None:
        reference = time.time() if now is None else now
    return max(0, math.ceil(retry_at - reference))


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
