"""The ledger's reading of a retry message SQS redrove to the DLQ (issue 10).

The retry function secures an event (its next retry message sent, or the event recorded delivered)
before SQS deletes the message it came in: Lambda deletes a batch only when the invocation succeeds.
An invocation that crashes after its work, or is killed mid-batch, returns the whole batch, so the
message comes back beside the copy it already sent; a batch returned five times is moved to the DLQ by
SQS, raw, without any invocation seeing it again, while the copy delivers the event. Seen in ledger
runs (seed 13): one batch of ten returned by five injected crashes and kills in a row, three of its
events delivered by copies, their original messages redriven. That copy is not a contradiction; a
poison message (one that breaks the retry function every time) of a delivered event still is, as is
any redriven message the run did not see returned by injected crashes or kills.
"""

from __future__ import annotations

import json

from signal_freshdesk_dev.ledger import LedgerConfig, Observed, reconcile
from signal_freshdesk_dev.ledger.reconcile import (
    BATCH_CRASHED,
    BATCH_KILLED,
    BATCH_RAISED,
    BROKE_THE_RETRY_FUNCTION,
    DELETED,
    RECORD_RETURNED,
)
from signal_freshdesk_dev.ledger.stream import Planned

MID = "7c094da4-06a5-410a-921e-449b27d04a0b"
SQS_ID = "e7f7c5a5-0000-4000-8000-000000000001"
COPY_ID = "75c2c3f7-0000-4000-8000-000000000002"
# The batch's five receives in the seed-13 run: crash, kill, kill, crash, kill.
FIVE_CRASHES = [BATCH_CRASHED, BATCH_KILLED, BATCH_KILLED, BATCH_CRASHED, BATCH_KILLED]


def observed(endings: list[str], *, broke: bool = False, delivered: bool = True, dropped: bool = False) -> Observed:
    event = {"type": "track", "event": "Signed Up", "messageId": MID, "userId": "usr_1"}
    planned = {MID: Planned(MID, "signed_up", "deliver", event)}  # no person: no per-person checks
    seen = Observed(LedgerConfig(events=1, seed=13), planned, [], [])
    seen.max_receive_count = 5
    envelope = {
        "v": 1,
        "messageId": MID,
        "outcome": "queued",
        "attempts": 1,
        "last_error": {"status": 503, "reason": "freshdesk_unavailable"},
        "event": event,
    }
    seen.logs = [
        {"message": "event processed", "messageId": MID, "outcome": "queued", "status": 503},
        {"message": "retry processed", "messageId": MID, "outcome": "queued", "status": None, "attempts": 1},
    ]
    if broke:
        seen.logs += [{"message": BROKE_THE_RETRY_FUNCTION, "sqsMessageId": SQS_ID}] * len(endings)
    if delivered:  # by the copy the first crashed invocation had sent
        seen.logs.append({"message": "retry processed", "messageId": MID, "outcome": "delivered", "status": 201})
        seen.calls.append(
            {"messageId": MID, "method": "POST", "path": "/api/v2/contacts", "status": 201, "error": "", "started": 1.0}
        )
        seen.receipts.append({"sqsMessageId": COPY_ID, "messageId": MID, "receive_count": 1, "ended": DELETED})
    if dropped:  # a withdrawal whose lookup, in the retry function, found no contact
        seen.logs.append(
            {"message": "retry processed", "messageId": MID, "outcome": "dropped", "reason": "consent_denied"}
        )
    seen.receipts += [
        {"sqsMessageId": SQS_ID, "messageId": MID, "receive_count": n, "ended": ended}
        for n, ended in enumerate(endings, start=1)
    ]
    seen.dlq = [{"sqsMessageId": SQS_ID, "body": envelope, "raw": json.dumps(envelope), "receive_count": 5}]
    return seen


def test_a_copy_redriven_with_its_crashed_batch_is_not_a_contradiction():
    report = reconcile(observed(FIVE_CRASHES))
    assert report.ok, report.failure_text()
    assert report.states[MID] == {("success", "delivered")}
    assert (
        "redriven copies of events delivered or dropped (returned with crashed or killed batches): 1 (1 events)"
        in report.tally
    )


def test_a_redriven_message_returned_on_its_own_between_crashes_is_a_copy_too():
    # A receive that could not secure the event (an injected SQS send failure) returns the record alone.
    report = reconcile(observed([RECORD_RETURNED, *FIVE_CRASHES[1:]]))
    assert report.ok, report.failure_text()


def test_a_poison_message_of_a_delivered_event_is_still_a_contradiction():
    report = reconcile(observed([RECORD_RETURNED] * 5, broke=True))
    assert report.problems["contradictory"], report.tally
    # Even when crashes returned its batch too: it broke the retry function on its own.
    report = reconcile(observed(FIVE_CRASHES, broke=True))
    assert report.problems["contradictory"], report.tally


def test_a_redriven_message_not_seen_returned_by_injected_crashes_is_still_a_contradiction():
    for endings in (
        FIVE_CRASHES[:4],  # fewer receives than the redrive policy's: not SQS's redrive as the run saw it
        [RECORD_RETURNED] * 5,  # never crashed: nothing forked it, and the run cannot say why it stayed
        [*FIVE_CRASHES[:4], BATCH_RAISED],  # the handler itself raised
        [DELETED, *FIVE_CRASHES[1:]],  # deleted once: SQS cannot have redriven that message
        [],  # a DLQ message the run's event source never received
    ):
        report = reconcile(observed(endings))
        assert report.problems["contradictory"], (endings, report.tally)


def test_a_copy_of_an_event_dropped_in_the_retry_function_is_not_a_contradiction_either():
    report = reconcile(observed(FIVE_CRASHES, delivered=False, dropped=True))
    assert not report.problems["contradictory"], report.tally
    assert report.states[MID] == {("dropped", "consent_denied")}
    report = reconcile(observed([RECORD_RETURNED] * 5, delivered=False, dropped=True, broke=True))
    assert report.problems["contradictory"], report.tally


def test_a_redriven_message_of_an_event_never_delivered_is_its_parking():
    report = reconcile(observed(FIVE_CRASHES, delivered=False))
    assert report.states[MID] == {("parked", "redriven")}
    assert not report.problems["contradictory"]
