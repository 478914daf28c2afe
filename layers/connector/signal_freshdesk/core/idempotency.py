"""At most one Freshdesk delivery per Signal `messageId` within the retry horizon: the one guard that
both the webhook and the retry function use.

Signal re-sends a webhook call that timed out and SQS delivers at least once, so the same event can
arrive twice; Freshdesk's per-account rate limit is the scarcest thing the user has. A record per
messageId is claimed before delivery and completed with the outcome (ids and statuses only, never
contact data). If the store itself fails, events are processed without it: a duplicate call costs
less than a lost event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..observability import count, logger
from .errors import StoreUnavailable
from .model import Outcome, Result
from .ports import DONE, IN_PROGRESS, IdempotencyStore

# Outcomes after which a re-delivered retry message needs no further work. `rejected` is not one of them:
# a parked event comes back only when someone replays it from the DLQ, and then it must be tried again.
HANDLED_OUTCOMES = frozenset(
    {
        "delivered",
        "updated",
        "conflict",
        "dropped",
        "unchanged",
        "stale",
        "consent_withdrawn",
        "deleted_in_freshdesk",
        "identity_mismatch",
    }
)


@dataclass(frozen=True)
class Ticket:
    """What `begin` decided for one event."""

    message_id: str
    guarded: bool  # this invocation holds the event's claim
    earlier: Result | None = None  # handled, or being handled, elsewhere: answer this instead


class IdempotencyGuard:
    def __init__(self, store: IdempotencyStore | None) -> None:
        self._store = store

    def begin(self, message_id: str, *, hold_seconds: float) -> Ticket:
        """Claim the event for `hold_seconds` (the claiming invocation's remaining lifetime): a claim left
        by an invocation that died expires with it, so Signal's next re-send is processed."""
        if self._store is None or not message_id:
            return Ticket(message_id, guarded=False)
        try:
            claim = self._store.claim(message_id, hold_seconds=hold_seconds)
        except StoreUnavailable as exc:
            _store_failed("idempotency store unavailable; processing without it", message_id, exc)
            return Ticket(message_id, guarded=False)
        if claim.state == DONE:
            return Ticket(message_id, guarded=False, earlier=result_from_summary(message_id, claim.summary or {}))
        if claim.state == IN_PROGRESS:
            # Another invocation holds this event; Signal retries the 503 once that one has finished.
            return Ticket(
                message_id,
                guarded=False,
                earlier=Result(message_id, Outcome.FAILED, reason="in_progress_elsewhere", duplicate=True),
            )
        return Ticket(message_id, guarded=True)

    def finish(self, ticket: Ticket, result: Result) -> None:
        """Record the outcome, or release the claim of an event that could not be secured, so Signal's
        retry is processed afresh."""
        if not ticket.guarded or self._store is None:
            return
        try:
            if result.outcome is Outcome.FAILED:
                self._store.release(ticket.message_id)
            else:
                self._store.complete(ticket.message_id, summary_of(result))
        except StoreUnavailable as exc:
            _store_failed("idempotency record not written", ticket.message_id, exc)

    def handled_before(self, message_id: str, *, replay: bool) -> bool:
        """Whether SQS is delivering again a message whose event was already taken to a final state.

        A rejection counts only for a message that was queued for retry: a `replay` (parked, then sent
        back from the DLQ on purpose) is tried again.
        """
        if self._store is None or not message_id:
            return False
        try:
            claim = self._store.read(message_id)
        except StoreUnavailable:
            return False
        if not claim or claim.state != DONE:
            return False
        outcome = (claim.summary or {}).get("outcome")
        return outcome in HANDLED_OUTCOMES or (outcome == "rejected" and not replay)

    def remember(self, message_id: str, result: Result) -> None:
        """Record the outcome of a retried event (the retry function holds no claim)."""
        if self._store is None or not message_id or result.outcome is Outcome.FAILED:
            return
        try:
            self._store.complete(message_id, summary_of(result))
        except StoreUnavailable as exc:
            _store_failed("idempotency record not written", message_id, exc)


def summary_of(result: Result) -> dict[str, Any]:
    """What the idempotency record keeps of an outcome: ids and statuses, never contact data."""
    return {
        "outcome": result.outcome.value,
        "status": result.status,
        "contact_id": result.contact_id,
        "reason": result.reason,
    }


def result_from_summary(message_id: str, summary: dict[str, Any]) -> Result:
    try:
        outcome = Outcome(str(summary.get("outcome")))
    except ValueError:
        outcome = Outcome.QUEUED
    status = summary.get("status")
    contact_id = summary.get("contact_id")
    return Result(
        message_id,
        outcome,
        status if isinstance(status, int) else None,
        reason=str(summary.get("reason") or ""),
        contact_id=contact_id if isinstance(contact_id, int) else None,
        duplicate=True,
    )


def _store_failed(message: str, message_id: str, exc: Exception) -> None:
    logger.warning(message, extra={"messageId": message_id, "error": str(exc)})
    count("idempotency_unavailable")
