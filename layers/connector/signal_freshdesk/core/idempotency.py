"""At most one Freshdesk delivery per Signal `messageId` within the retry horizon: the one guard that
both the webhook and the retry function use.

Signal re-sends a webhook call that timed out and SQS delivers at least once, so the same event can
arrive twice; Freshdesk's per-account rate limit is the scarcest thing the user has. A record per
messageId is claimed before delivery and completed with the outcome (ids and statuses only, never
contact data). If the store itself fails, events are processed without it: a duplicate call costs
less than a lost event.

A messageId alone does not make an event the same event: senders reuse ids (a batch of different people
under one id, `77` and `"77"`). So the record keeps a digest of the event (`event_digest`: a SHA-256 of
what the connector reads of it, no contact data in the clear), and an event whose digest differs from
the record's is another event: it is claimed under its own key, `<messageId>#<digest>`, processed, and
counted as `message_id_reused`. That key travels as the envelope's messageId, so the retry function
finds the same record.

The same store also remembers signed requests already admitted (`first_use`), so a captured request
replayed inside the signature window is refused, in every container.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..observability import count, logger
from .envelope import slim_event
from .errors import StoreUnavailable
from .model import Outcome, Result
from .ports import DONE, IN_PROGRESS, NEW, IdempotencyStore

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


MAX_MESSAGE_ID_LENGTH = 128


def event_digest(event: Mapping[str, Any]) -> str:
    """A SHA-256 of the event's canonical JSON, over what a mapping may read of it (the slim event the
    retry queue keeps: type, event name, messageId as given, user id, timestamp, traits, context traits,
    properties, group ids, consent). Transport fields a re-send may change do not count; `77` and `"77"`
    differ."""
    canonical = json.dumps(
        slim_event(event), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True, default=str
    )
    return hashlib.sha256(b"signal-freshdesk/event\x00" + canonical.encode("ascii")).hexdigest()


def reuse_key(message_id: str, digest: str) -> str:
    """The record key of an event that arrived under a messageId another event already holds."""
    return f"{message_id}#{digest}"


@dataclass(frozen=True)
class Ticket:
    """What `begin` decided for one event."""

    message_id: str
    guarded: bool  # this invocation holds the event's claim
    earlier: Result | None = None  # handled, or being handled, elsewhere: answer this instead
    key: str = ""  # the record's key: the messageId, or reuse_key() for another event under a used id
    digest: str = ""
    reused: bool = False  # another event holds this messageId: this one is new under its own key


class IdempotencyGuard:
    def __init__(self, store: IdempotencyStore | None) -> None:
        self._store = store
        self._digests: dict[str, str] = {}  # record key -> the digest its record holds (retry path)

    def begin(self, message_id: str, *, hold_seconds: float, digest: str = "", reused: bool = False) -> Ticket:
        """Claim the event for `hold_seconds` (the claiming invocation's remaining lifetime): a claim left
        by an invocation that died expires with it, so Signal's next re-send is processed.

        `digest` is the event's `event_digest`; a record under the messageId with another digest belongs
        to another event, and this one is claimed under its own key. `reused` says so in advance (an
        earlier event of the same batch holds the messageId).
        """
        key = reuse_key(message_id, digest) if reused and digest else message_id
        if self._store is None or not message_id:
            return Ticket(message_id, guarded=False, key=key, digest=digest, reused=reused)
        try:
            claim = self._store.claim(key, hold_seconds=hold_seconds)
            if claim.state == DONE and not reused and _another_event(claim.summary, digest):
                reused, key = True, reuse_key(message_id, digest)
                claim = self._store.claim(key, hold_seconds=hold_seconds)
        except StoreUnavailable as exc:
            _store_failed("idempotency store unavailable; processing without it", message_id, exc)
            return Ticket(message_id, guarded=False, key=key, digest=digest, reused=reused)
        if claim.state == DONE:
            earlier = result_from_summary(message_id, claim.summary or {})
            return Ticket(message_id, guarded=False, earlier=earlier, key=key, digest=digest)
        if claim.state == IN_PROGRESS:
            # Another invocation holds this event; Signal retries the 503 once that one has finished.
            return Ticket(
                message_id,
                guarded=False,
                earlier=Result(message_id, Outcome.FAILED, reason="in_progress_elsewhere", duplicate=True),
                key=key,
                digest=digest,
            )
        return Ticket(message_id, guarded=True, key=key, digest=digest, reused=reused)

    def finish(self, ticket: Ticket, result: Result) -> None:
        """Record the outcome, or release the claim of an event that could not be secured, so Signal's
        retry is processed afresh."""
        if not ticket.guarded or self._store is None:
            return
        key = ticket.key or ticket.message_id
        try:
            if result.outcome is Outcome.FAILED:
                self._store.release(key)
            else:
                self._store.complete(key, summary_of(result, digest=ticket.digest))
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
        digest = (claim.summary or {}).get("digest")
        if isinstance(digest, str) and digest:
            self._digests[message_id] = digest  # kept when `remember` rewrites the record
        outcome = (claim.summary or {}).get("outcome")
        return outcome in HANDLED_OUTCOMES or (outcome == "rejected" and not replay)

    def remember(self, message_id: str, result: Result) -> None:
        """Record the outcome of a retried event (the retry function holds no claim)."""
        if self._store is None or not message_id or result.outcome is Outcome.FAILED:
            return
        try:
            self._store.complete(message_id, summary_of(result, digest=self._digests.get(message_id, "")))
        except StoreUnavailable as exc:
            _store_failed("idempotency record not written", message_id, exc)


def summary_of(result: Result, *, digest: str = "") -> dict[str, Any]:
    """What the idempotency record keeps of an outcome: ids, statuses and the event's digest, never
    contact data."""
    summary: dict[str, Any] = {
        "outcome": result.outcome.value,
        "status": result.status,
        "contact_id": result.contact_id,
        "reason": result.reason,
    }
    if result.company_id is not None:
        summary["company_id"] = result.company_id
    if digest:
        summary["digest"] = digest
    return summary


def _another_event(summary: Mapping[str, Any] | None, digest: str) -> bool:
    """Whether a record belongs to an event other than the one with `digest`. A record without a digest
    (written before digests were kept) counts as the same event."""
    recorded = (summary or {}).get("digest")
    return bool(digest) and isinstance(recorded, str) and bool(recorded) and recorded != digest


def result_from_summary(message_id: str, summary: dict[str, Any]) -> Result:
    try:
        outcome = Outcome(str(summary.get("outcome")))
    except ValueError:
        outcome = Outcome.QUEUED
    status = summary.get("status")
    contact_id = summary.get("contact_id")
    company_id = summary.get("company_id")
    return Result(
        message_id,
        outcome,
        status if isinstance(status, int) else None,
        reason=str(summary.get("reason") or ""),
        contact_id=contact_id if isinstance(contact_id, int) else None,
        company_id=company_id if isinstance(company_id, int) else None,
        duplicate=True,
    )


def _store_failed(message: str, message_id: str, exc: Exception) -> None:
    logger.warning(message, extra={"messageId": message_id, "error": str(exc)})
    count("idempotency_unavailable")


# -- signed requests already admitted ------------------------------------------------------------
REPLAY_KEY_PREFIX = "signed-request#"


class SeenOnce:
    """Keys remembered until their expiry (Unix seconds), in this container's memory: the fallback when
    there is no idempotency table or it does not answer. Bounded: the oldest keys go first."""

    def __init__(self, limit: int = 50_000) -> None:
        self._until: dict[str, float] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def add(self, key: str, *, until: float, now: float) -> bool:
        """True when `key` was not held yet (it is now, until `until`)."""
        with self._lock:
            held = self._until.get(key)
            if held is not None and held > now:
                return False
            self._until.pop(key, None)
            if len(self._until) >= self._limit:
                for old in [k for k, t in self._until.items() if t <= now]:
                    del self._until[old]
                while len(self._until) >= self._limit:
                    del self._until[next(iter(self._until))]
            self._until[key] = until
            return True

    def discard(self, key: str) -> None:
        with self._lock:
            self._until.pop(key, None)


SEEN_HERE = SeenOnce()


def first_use(store: IdempotencyStore | None, replay_key: str, *, hold_seconds: float, now: float) -> bool:
    """Whether this signed request is admitted for the first time; it is held for `hold_seconds` (until
    its timestamp leaves the window, after which the window refuses it anyway).

    With the idempotency table it is a conditional put shared by every container, so a replay to another
    container is refused too; without it (or while it does not answer) this container's memory.
    """
    key = REPLAY_KEY_PREFIX + replay_key
    if store is not None:
        try:
            return store.claim(key, hold_seconds=hold_seconds).state == NEW
        except StoreUnavailable as exc:
            _store_failed("idempotency store unavailable; signed requests remembered in memory", "", exc)
    return SEEN_HERE.add(key, until=now + hold_seconds, now=now)


def forget_use(store: IdempotencyStore | None, replay_key: str) -> None:
    """Forget an admitted signed request whose answer was a 5xx, so the sender's identical re-send is
    admitted (Signal re-sends what failed; the idempotency record absorbs what was already done)."""
    key = REPLAY_KEY_PREFIX + replay_key
    SEEN_HERE.discard(key)
    if store is not None:
        try:
            store.release(key)
        except StoreUnavailable as exc:
            _store_failed("idempotency store unavailable; signed request not forgotten", "", exc)
