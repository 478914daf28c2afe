"""Reconciliation: every event of a ledger run accounted for, from what the run observed.

What "accounted for" means
--------------------------
An event is *accepted* when the webhook secured it at least once: an answer Signal received, or an
`event processed` log line of the ingest function, reports for its messageId an outcome other than
`failed` (delivered, updated, conflict, dropped, rejected or queued; an answer from the idempotency
record counts, as it repeats an earlier first-hand outcome).

After the drain (retry queue empty: nothing visible, in flight or delayed), an event's *terminal
states* are gathered from first-hand evidence only:
- `success`: an `event processed` (ingest) or `retry processed` (retry) log line, not answered from
  the idempotency record, with a final success outcome: delivered, updated, conflict, and the outcomes
  of safe sync: unchanged, stale, consent_withdrawn, deleted_in_freshdesk, identity_mismatch;
- `dropped(reason)`: such a line with outcome dropped and a reason (`already_handled`, a re-delivered
  retry message of an event already final, is an absorbed duplicate, not a state);
- `parked(kind)`: a message in the DLQ whose envelope names the messageId: `rejected` or `exhausted`
  as the connector parks them (with `last_error`), or `redriven`, a retry-queue envelope moved there
  raw by SQS's redrive policy after maxReceiveCount receives (read from its body; outcome `queued`).
  One redriven message is not a state: a *redriven copy* of an event that has a success (or a drop,
  such as `consent_denied` after a lookup in the retry function), a message that never broke the
  retry function but was returned with its whole batch by injected crashes or kills until SQS moved
  it, while the copy it had sent before the crash (or the work it had done) took the event to its
  final state (`redriven_copy` says exactly when; a poison message is never one). The connector
  cannot see such a move, and a replay of the copy is answered `already_handled`; they are tallied.
A `rejected` log line must be matched by a parked envelope (else the event is reported parked but
is not).

An accepted event is *accounted for* when it has at least one terminal state, all of them in one
class (success, dropped, parked: several success outcomes, or several parkings, are consistent; they
are tallied as repeat deliveries / repeat parkings), and that class fits what the event is (a page view
dropped `page_view`; a deliverable event a success or parked `exhausted`/`redriven`, never dropped or
rejected by Freshdesk; an event naming a company that does not exist delivered without its company_id;
a withdrawal of consent `consent_withdrawn`, or dropped `consent_denied` while the person has no contact),
and each success outcome fits the person: `deleted_in_freshdesk` only for a contact an agent deleted (and
nothing else that writes for them), `identity_mismatch` only for a contact with its own other
unique_external_id, `consent_withdrawn` only for a withdrawal.

The run FAILS on any of:
- lost: an accepted event with no terminal state;
- contradictory: terminal states in two classes (delivered and parked; dropped and delivered; two
  drop reasons);
- unexpected: a terminal class that does not fit the event;
- refused to the end: an event never accepted, although Signal re-sent it on every 5xx / no answer;
- stuck: the retry queue not empty at the end (an event whose last attempt was held by the outage gate,
  delayed past the end of the drain, is reported here, not as lost);
- created twice: two 201 creations in Freshdesk for one event, two sandbox contacts sharing an email
  or a unique_external_id, or two contacts for one phone-only person (Freshdesk does not enforce unique
  phones; the connector looks such a contact up before creating it);
- phantom success: a success without the Freshdesk answer it rests on (201 / 200 / 409 to a call made
  for this event), or whose contact is not in the sandbox. Outcomes the identity map answers without a
  call (a Signed Up `conflict` with reason `known_contact`, `consent_withdrawn` with reason
  `tag_already_absent`, `unchanged`, `stale`, `identity_mismatch`, `deleted_in_freshdesk`) rest on
  the person's contact being in the sandbox;
- a dropped event that called Freshdesk (a withdrawal dropped `consent_denied` may look the person up:
  GET calls only, at most one contacts-list lookup per attempt);
- per person, from the sandbox's final contacts (people named by a clash event left out):
  - newest values lost: the contact's name or job_title is not the one of the person's newest applied
    event that says one (applied: delivered, updated, identity_mismatch, unchanged; a `stale` event
    never counts, and an event whose traits have no name leaves the name alone), nor the seeded value
    when no applied event says one, nor a value a write whose answer was lost (timeout, dropped
    connection) or never acknowledged may have left there;
  - name replaced by an email: the same, where the contact's name is an email address;
  - consent tag wrong: our `marketing-consent` tag (any spelling) present iff the newest of the
    person's consent-bearing events granted it (applied events grant; `consent_withdrawn` and a
    withdrawal dropped `consent_denied` withdraw), again allowing for lost answers;
  - older grant after a withdrawal: the precise case of the above where the newest event, a withdrawal,
    was dropped `consent_denied` after its lookup found no contact, and an older granting event (retried)
    then created the contact, or updated it, with our tag;
  - tag damaged: an agent's tag gone, or our tag in two spellings;
  - external id changed: a seeded contact's own unique_external_id changed, or a contact's set to
    something other than the person's user id;
  - deleted contact revived: a contact an agent deleted is no longer deleted;
  - created twice: two contacts holding one person's identifiers;
- a parked envelope without its error, an unreadable message in the DLQ, a messageId nobody sent;
- a handler that raised on its own (not an injected crash): API Gateway would answer 502, or the
  whole retry batch would return;
- a vacuous run: fewer than a quarter of the deliverable events delivered, or no Freshdesk rejection parked
  out of 3 or more events Freshdesk refuses (the faults, or a setting, kept Freshdesk out of reach).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .config import LedgerConfig
from .stream import KINDS, Person, Planned, SignalRequest

SUCCESS = frozenset(
    {
        "delivered",
        "updated",
        "conflict",
        "unchanged",
        "stale",
        "consent_withdrawn",
        "deleted_in_freshdesk",
        "identity_mismatch",
    }
)
# The success outcomes that leave the event's values on the contact (unchanged: they are there already).
APPLIED = frozenset({"delivered", "updated", "identity_mismatch", "unchanged"})
OUR_TAG = "marketing-consent"
NON_EVENT_OUTCOMES = frozenset({"failed"})
PROBLEMS = (
    "lost",
    "contradictory",
    "unexpected",
    "refused to the end",
    "stuck",
    "created twice",
    "phantom success",
    "dropped but called Freshdesk",
    "newest values lost",
    "name replaced by an email",
    "consent tag wrong",
    "older grant after a withdrawal",
    "tag damaged",
    "external id changed",
    "deleted contact revived",
    "rejected but not parked",
    "parked without its error",
    "unreadable in the DLQ",
    "unknown messageId",
    "handler raised",
    "vacuous run",
)
# The Freshdesk answers each success outcome rests on: 201 (or a 2xx), 200 to the update, 409 (or 200 to
# a lookup that found the contact), 200 to the PUT that took our tag off. The other outcomes, and these
# with a reason in NO_CALL_REASONS, may come from the identity map without a call.
SUCCESS_BACKING = {"delivered": {201, 200}, "updated": {200}, "conflict": {409, 200}, "consent_withdrawn": {200}}
NO_CALL_REASONS = {"conflict": "known_contact", "consent_withdrawn": "tag_already_absent"}
CLASS_OF = {"success": "success", "dropped": "dropped", "parked": "parked"}
LIST_LOOKUP = "/api/v2/contacts?"
HELD_FOR_OUTAGE = "not sent: Freshdesk is down"
BROKE_THE_RETRY_FUNCTION = "unexpected error in the retry function; the record returns to the queue"
# How one receive of a retry message ended (run.py notes them, by SQS MessageId).
DELETED = "deleted"
RECORD_RETURNED = "returned on its own"  # a batch item failure
BATCH_CRASHED = "returned with its batch: crash after the work (injected)"
BATCH_KILLED = "returned with its batch: killed mid-batch (injected)"
BATCH_RAISED = "returned with its batch: the handler raised"
INJECTED_BATCH_RETURNS = frozenset({BATCH_CRASHED, BATCH_KILLED})
DROPPED_FIELDS_WARNING = "Freshdesk refused optional fields; delivered without them"


@dataclass
class Observed:
    """Everything the run saw, for reconcile()."""

    config: LedgerConfig
    planned: dict[str, Planned]
    requests: list[SignalRequest]
    persons: list[Person]
    answers: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    sends: Counter = field(default_factory=Counter)
    dlq: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    sandbox_requests: list[dict[str, Any]] = field(default_factory=list)
    pending_at_end: dict[str, int] = field(default_factory=dict)
    receipts: list[dict[str, Any]] = field(default_factory=list)  # each receive of a retry message, as it ended
    max_receive_count: int = 0  # the retry queue's redrive policy
    handler_errors: list[str] = field(default_factory=list)
    signal: Counter = field(default_factory=Counter)
    retry: Counter = field(default_factory=Counter)
    armed: Counter = field(default_factory=Counter)
    injected: Counter = field(default_factory=Counter)
    elapsed: float = 0.0


@dataclass
class LedgerReport:
    seed: int
    events: int
    states: dict[str, set[tuple[str, str]]]
    problems: dict[str, list[str]]
    tally: str

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def failure_text(self, limit: int = 8) -> str:
        lines = [f"the ledger found problems (seed {self.seed}, LEDGER_SEED={self.seed} to replay the stream):"]
        for name, items in self.problems.items():
            if items:
                lines.append(f"  {name}: {len(items)}")
                lines.extend(f"    - {item}" for item in items[:limit])
        return "\n".join(lines)


@dataclass
class Evidence:
    """What reconcile() gathers from the observations, and the problems it finds."""

    planned: dict[str, Planned]
    problems: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in PROBLEMS})
    states: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    accepted: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)
    duplicate_answers: int = 0
    # the log lines
    rejected_logged: Counter[str] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))  # (outcome, reason)
    attempts: Counter[str] = field(default_factory=Counter)  # processed lines (not duplicates) and kills
    dropped_fields: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # from the answers
    fields_dropped: set[str] = field(default_factory=set)  # events logged as delivered without some fields
    last_line: dict[str, dict[str, Any]] = field(default_factory=dict)  # each event's last processed line
    absorbed: Counter[str] = field(default_factory=Counter)
    retry_outcomes: Counter[str] = field(default_factory=Counter)
    # the DLQ
    parked_count: Counter[str] = field(default_factory=Counter)
    parked_kinds: Counter[str] = field(default_factory=Counter)
    redriven_copies: Counter[str] = field(default_factory=Counter)  # see redriven_copy()
    # Freshdesk, as the connector called it
    created: Counter[str] = field(default_factory=Counter)
    companies_created: Counter[str] = field(default_factory=Counter)
    blind: set[str] = field(default_factory=set)  # events with a Freshdesk answer lost
    called: set[str] = field(default_factory=set)
    answered: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    calls_of: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    writes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))  # POST / PUT

    def note_unknown(self, mid: Any) -> None:
        if mid not in self.planned:
            self.unknown.add(str(mid))


def reconcile(seen: Observed) -> LedgerReport:
    evidence = Evidence(seen.planned)
    read_answers(seen, evidence)
    read_logs(seen, evidence)
    read_dlq(seen, evidence)
    check_rejections_parked(evidence)
    read_freshdesk_calls(seen, evidence)
    check_created_once(seen, evidence)
    for mid, item in seen.planned.items():
        check_event(seen, evidence, mid, item)
    check_people(seen, evidence)
    check_run(seen, evidence)
    tally = format_tally(seen, evidence)
    return LedgerReport(seen.config.seed, len(seen.planned), dict(evidence.states), evidence.problems, tally)


# -- what the run observed -----------------------------------------------------------------------
def read_answers(seen: Observed, ev: Evidence) -> None:
    """The webhook's answers as Signal received them: accepted and refused events."""
    for record in seen.answers:
        if record["status"] is None or record["status"] >= 500:
            ev.refused.update(record["message_ids"])
        for result in record["results"]:
            mid = result.get("messageId")
            ev.note_unknown(mid)
            if result.get("outcome") not in NON_EVENT_OUTCOMES:
                ev.accepted.add(mid)
            if result.get("duplicate"):
                ev.duplicate_answers += 1
            if isinstance(result.get("dropped_fields"), list):
                ev.dropped_fields[mid].update(str(f) for f in result["dropped_fields"])


def read_logs(seen: Observed, ev: Evidence) -> None:
    """The functions' "processed" log lines: success and dropped states, duplicates absorbed, rejections."""
    for line in seen.logs:
        if line["message"] == DROPPED_FIELDS_WARNING and line.get("messageId"):
            ev.fields_dropped.add(line["messageId"])
        if line["message"] not in ("event processed", "retry processed"):
            continue
        mid, outcome, reason = line.get("messageId"), line.get("outcome"), line.get("reason") or ""
        ev.note_unknown(mid)
        side = "ingest" if line["message"] == "event processed" else "retry"
        if side == "retry":
            ev.retry_outcomes[outcome if not line.get("duplicate") else f"{outcome} ({reason}, duplicate)"] += 1
        if line.get("duplicate"):
            ev.absorbed[f"{side}: {reason or 'answered from the idempotency record'}"] += 1
            if side == "ingest" and outcome not in NON_EVENT_OUTCOMES:
                ev.accepted.add(mid)
            continue
        if side == "ingest" and outcome not in NON_EVENT_OUTCOMES:
            ev.accepted.add(mid)
        ev.attempts[mid] += 1
        ev.last_line[mid] = line
        if outcome in SUCCESS:
            ev.states[mid].add(("success", outcome))
            ev.reasons[mid].add((outcome, reason))
            ev.successes[mid] += 1
        elif outcome == "dropped":
            ev.states[mid].add(("dropped", reason))
        elif outcome == "rejected":
            ev.rejected_logged[mid] += 1


def read_dlq(seen: Observed, ev: Evidence) -> None:
    """The DLQ: parked states, each envelope with the error it was parked for."""
    problems = ev.problems
    for message in seen.dlq:
        body = message["body"]
        if not isinstance(body, dict) or body.get("outcome") == "unreadable" or not body.get("messageId"):
            problems["unreadable in the DLQ"].append(str(message["raw"])[:120])
            continue
        mid, outcome = body["messageId"], body.get("outcome")
        ev.note_unknown(mid)
        kind = "redriven" if outcome == "queued" else str(outcome)
        if kind == "redriven" and redriven_copy(seen, ev, mid, message):
            ev.redriven_copies[mid] += 1
            continue
        ev.states[mid].add(("parked", kind))
        ev.parked_count[mid] += 1
        ev.parked_kinds[kind] += 1
        error = body.get("last_error") or {}
        rejected_without = kind == "rejected" and not (
            isinstance(error.get("status"), int) and error.get("body") is not None
        )
        exhausted_without = kind == "exhausted" and not (error.get("reason") or error.get("status"))
        if rejected_without or exhausted_without:
            problems["parked without its error"].append(f"{mid}: {error}")
        elif kind not in ("rejected", "exhausted", "redriven"):
            problems["parked without its error"].append(f"{mid}: outcome {outcome!r}")


def redriven_copy(seen: Observed, ev: Evidence, mid: str, message: dict[str, Any]) -> bool:
    """Whether a retry message SQS redrove to the DLQ is a copy of an event taken to a final state all the
    same (delivered, or dropped after a lookup), which the connector could not have known about: not a
    terminal state.

    The retry function secures an event (sends its next retry message, or records it delivered) before
    SQS deletes the message it came in, as Lambda deletes a batch only when its invocation succeeds. An
    invocation that crashes after its work, or is killed mid-batch, returns its whole batch: the
    message comes back beside the copy it already sent (or after it delivered the event), and a batch
    that is returned maxReceiveCount times is moved to the DLQ by SQS without any invocation seeing it
    again. Its event was delivered by the copy (a replay of it is answered `already_handled`).

    Only on first-hand evidence, for the very message (its SQS MessageId): the event has a success or a
    drop, the run's event source saw the message received at least maxReceiveCount times, never deleted,
    never breaking the retry function (a poison message does, every time: an `unexpected error` line
    names it), never with a batch the handler itself raised on, and returned with its whole batch by an
    injected crash or kill at least once. Anything else stays a parking (and contradicts a success or a
    drop).
    """
    if not any(cls in ("success", "dropped") for cls, _ in ev.states.get(mid, ())):
        return False
    sqs_id = message.get("sqsMessageId")
    receipts = [r for r in seen.receipts if sqs_id and r["sqsMessageId"] == sqs_id]
    if not seen.max_receive_count or len(receipts) < seen.max_receive_count:
        return False
    if any(r["messageId"] != mid for r in receipts):
        return False
    ended = {r["ended"] for r in receipts}
    if not ended <= {RECORD_RETURNED, *INJECTED_BATCH_RETURNS} or not ended & INJECTED_BATCH_RETURNS:
        return False
    return not any(
        line["message"] == BROKE_THE_RETRY_FUNCTION and line.get("sqsMessageId") == sqs_id for line in seen.logs
    )


def check_rejections_parked(ev: Evidence) -> None:
    """A `rejected` log line must be matched by a parked envelope."""
    for mid, _count in ev.rejected_logged.items():
        if not ev.parked_count[mid]:
            ev.problems["rejected but not parked"].append(mid)


def read_freshdesk_calls(seen: Observed, ev: Evidence) -> None:
    """Freshdesk as the connector called it: the events that called it, its answers, creations, lost answers."""
    for call in seen.calls:
        mid = call["messageId"]
        if mid:
            ev.called.add(mid)
            ev.calls_of[mid].append(call)
            if call["status"] is not None:
                ev.answered[mid].add(call["status"])
            if call.get("body") is not None:
                ev.writes[mid].append(call)
        if call["method"] == "POST" and call["path"] == "/api/v2/companies" and call["status"] == 201:
            ev.companies_created[call.get("body", {}).get("name", "")] += 1
        if call["method"] == "POST" and call["path"] == "/api/v2/contacts":
            if call["status"] == 201:
                ev.created[mid] += 1
            elif call["status"] is None:
                ev.blind.add(mid)
    for kill in seen.kills:
        ev.attempts[kill["messageId"]] += 1
        if kill["attempted"]:
            ev.blind.add(kill["messageId"])


# -- the checks ----------------------------------------------------------------------------------
def check_created_once(seen: Observed, ev: Evidence) -> None:
    """No event created twice, and no two contacts in the sandbox for one person."""
    problems = ev.problems
    for mid, count in ev.created.items():
        if count > 1:
            problems["created twice"].append(f"{mid}: {count} creations answered 201")
    for name, count in ev.companies_created.items():
        if count > 1:
            problems["created twice"].append(f"company {name!r}: {count} creations answered 201")
    by_email: dict[str, list[int]] = defaultdict(list)
    by_external: dict[str, list[int]] = defaultdict(list)
    by_phone: dict[str, list[int]] = defaultdict(list)
    for contact in seen.contacts:
        if contact.get("email"):
            by_email[contact["email"].lower()].append(contact["id"])
        if contact.get("unique_external_id"):
            by_external[contact["unique_external_id"]].append(contact["id"])
        if contact.get("phone") and not contact.get("email") and not contact.get("unique_external_id"):
            by_phone[contact["phone"]].append(contact["id"])
    for label, index in (("email", by_email), ("unique_external_id", by_external)):
        for ids in index.values():
            if len(ids) > 1:
                problems["created twice"].append(f"{len(ids)} contacts {ids} share one {label}")
    check_phone_only_people(seen, ev, by_phone)


def check_phone_only_people(seen: Observed, ev: Evidence, by_phone: dict[str, list[int]]) -> None:
    """Freshdesk does not refuse a second contact with the same phone: the connector looks a phone-only
    contact up before creating it, so each phone-only person (one event each) is one contact."""
    person_events: dict[str, list[str]] = defaultdict(list)
    for mid, item in seen.planned.items():
        if item.person is not None:
            person_events[item.person.key].append(mid)
    phone_people = {p.phone: p for p in seen.persons if p.phone_only}
    for phone, ids in by_phone.items():
        if len(ids) < 2:
            continue
        person = phone_people.get(phone)
        mids = person_events.get(person.key, []) if person else []
        lost_answer = (
            "after a create whose answer was lost" if any(mid in ev.blind for mid in mids) else "with no lost answer"
        )
        ev.problems["created twice"].append(
            f"{mids[0] if mids else phone[:6] + '...'}: {len(ids)} contacts {ids} "
            f"for one phone-only person, {lost_answer}"
        )


def check_event(seen: Observed, ev: Evidence, mid: str, item: Planned) -> None:
    """One planned event: accepted, with terminal states of one class that fits it, each success backed."""
    problems = ev.problems
    found = ev.states.get(mid, set())
    if mid not in ev.accepted:
        if found:
            ev.accepted.add(mid)  # secured in an invocation whose answer was lost
        else:
            problems["refused to the end"].append(f"{mid} ({item.kind})")
            return
    if not found:
        last = ev.last_line.get(mid, {})
        if seen.pending_at_end.get("MessagesDelayed") and str(last.get("error", "")).startswith(HELD_FOR_OUTAGE):
            # Not lost: still in the retry queue, delayed by the outage gate past the drain's end.
            problems["stuck"].append(
                f"{mid} ({item.kind}): held by the outage gate (last: {last.get('message')}, {last.get('error')})"
            )
        else:
            problems["lost"].append(f"{mid} ({item.kind}): accepted, no terminal state")
        return
    classes = {CLASS_OF[c] for c, _ in found}
    drop_reasons = {r for c, r in found if c == "dropped"}
    if len(classes) > 1 or len(drop_reasons) > 1:
        problems["contradictory"].append(f"{mid} ({item.kind}): {sorted(found)}")
        return
    (cls,) = classes
    check_expected_class(ev, mid, item, cls, found, drop_reasons)
    if cls == "dropped" and mid in ev.called:
        check_dropped_calls(ev, mid, item, drop_reasons)
    check_success_backed(seen, ev, mid, item, cls, found)


def check_dropped_calls(ev: Evidence, mid: str, item: Planned, drop_reasons: set[str]) -> None:
    """A dropped event calls Freshdesk only to look up a person withdrawing consent: GET calls (at most one
    contacts-list lookup per attempt, a read of a known id), or a PUT that met 404 (the id had gone)."""
    calls = ev.calls_of.get(mid, [])
    if drop_reasons == {"consent_denied"} and item.consent is False:
        others = [c for c in calls if c["method"] != "GET" and not (c["method"] == "PUT" and c["status"] == 404)]
        lookups = sum(1 for c in calls if c["path"].startswith(LIST_LOOKUP))
        attempts = max(1, ev.attempts[mid])
        if not others and lookups <= attempts:
            return
        detail = f"{lookups} lookups in {attempts} attempts, other calls {[(c['method'], c['status']) for c in others]}"
    else:
        detail = f"{[(c['method'], c['path'], c['status']) for c in calls]}"
    ev.problems["dropped but called Freshdesk"].append(f"{mid} ({item.kind}, {sorted(drop_reasons)}): {detail}")


def check_expected_class(
    ev: Evidence, mid: str, item: Planned, cls: str, found: set[tuple[str, str]], drop_reasons: set[str]
) -> None:
    """The terminal class fits the event: dropped for its reason, a withdrawal withdrawn (or dropped while the
    person has no contact), or delivered (not dropped or rejected); each success outcome fits the person."""
    unexpected = ev.problems["unexpected"]
    outcomes = {o for c, o in found if c == "success"}
    rejected = any(c == "parked" and k == "rejected" for c, k in found)
    if item.expect.startswith("drop:"):
        if cls != "dropped" or drop_reasons != {item.expect[5:]}:
            unexpected.append(f"{mid} ({item.kind}) expected {item.expect}: {sorted(found)}")
        return
    if item.expect == "company":
        if cls != "success" or outcomes - {"delivered", "updated", "unchanged", "stale"}:
            unexpected.append(f"{mid} ({item.kind}) expected the company upserted: {sorted(found)}")
        return
    if item.expect == "withdraw":
        if (
            (cls == "dropped" and drop_reasons != {"consent_denied"})
            or rejected
            or outcomes - {"consent_withdrawn", "stale", "deleted_in_freshdesk"}
        ):
            unexpected.append(f"{mid} ({item.kind}) expected consent_withdrawn or consent_denied: {sorted(found)}")
        elif "deleted_in_freshdesk" in outcomes and not fits_deleted(item):
            unexpected.append(f"{mid} ({item.kind}): deleted_in_freshdesk for a contact nobody deleted")
        return
    if cls == "dropped" or rejected:
        unexpected.append(f"{mid} ({item.kind}) expected delivery: {sorted(found)}")
        return
    person = item.person
    tainted = person is None or person.tainted
    if "consent_withdrawn" in outcomes:
        unexpected.append(f"{mid} ({item.kind}): consent_withdrawn for an event that grants consent")
    if "deleted_in_freshdesk" in outcomes and not fits_deleted(item):
        unexpected.append(f"{mid} ({item.kind}): deleted_in_freshdesk for a contact nobody deleted")
    if person is not None and person.agent_deleted and outcomes & {"delivered", "updated", "identity_mismatch"}:
        unexpected.append(
            f"{mid} ({item.kind}): {sorted(outcomes)} for a person whose contact an agent deleted "
            f"(contact {person.seed_id}): expected deleted_in_freshdesk"
        )
    if "identity_mismatch" in outcomes and not tainted and not other_external_id(person):
        unexpected.append(f"{mid} ({item.kind}): identity_mismatch, but the contact has no other external id")
    if item.kind == "bad_company" and outcomes & {"delivered", "updated"}:
        said = ev.dropped_fields.get(mid)
        if said is not None and "company_id" not in said:
            unexpected.append(f"{mid} ({item.kind}): delivered, dropped_fields {sorted(said)} without company_id")


def fits_deleted(item: Planned) -> bool:
    return item.person is None or item.person.tainted or item.person.agent_deleted


def other_external_id(person: Person | None) -> bool:
    """Whether the person's seeded contact carries its own unique_external_id, not the person's user id."""
    seeded = (person.seed or {}).get("unique_external_id") if person is not None else None
    return bool(seeded) and person is not None and seeded != person.user_id


def check_success_backed(
    seen: Observed, ev: Evidence, mid: str, item: Planned, cls: str, found: set[tuple[str, str]]
) -> None:
    """Each success rests on a Freshdesk answer to this event (or, where the identity map answers without a
    call, on the person's contact), and its contact is in the sandbox."""
    phantom = ev.problems["phantom success"]
    answered = ev.answered.get(mid, set())
    for outcome, reason in sorted(ev.reasons.get(mid, ())):
        backing = SUCCESS_BACKING.get(outcome)
        if backing is None or NO_CALL_REASONS.get(outcome) == reason:
            continue
        if not backing & answered:
            phantom.append(
                f"{mid} ({item.kind}): {outcome} without such an answer from Freshdesk (answers: {sorted(answered)})"
            )
    person = item.person
    if cls == "success" and person is not None and not person.tainted and not contacts_of(person, seen.contacts):
        outcomes = {outcome for outcome, _ in ev.reasons.get(mid, ())}
        withdrew = any(p.person is person and p.expect == "withdraw" for p in seen.planned.values())
        if not (outcomes <= {"stale"} and withdrew):
            # (An event older than a withdrawal of a person without a contact is stale, rightly: it
            # must not create them with our tag after they withdrew.)
            phantom.append(f"{mid} ({item.kind}): no contact holds its identifiers")


def contacts_of(person: Person, contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sandbox contacts (deleted ones too) holding the person's identifiers, or seeded for them."""
    email = person.email.lower()
    return [
        c
        for c in contacts
        if (person.seed_id is not None and c.get("id") == person.seed_id)
        or (email and (c.get("email") or "").lower() == email)
        or (person.user_id and c.get("unique_external_id") == person.user_id)
        or (person.phone_only and c.get("phone") == person.phone)
    ]


# -- per person: what Freshdesk ends holding -------------------------------------------------------
def check_people(seen: Observed, ev: Evidence) -> None:
    """Compare each person's contact at the end with their events: the newest applied values, the tags,
    the external id, a deleted contact left deleted, one contact per person."""
    events_of: dict[str, list[Planned]] = defaultdict(list)
    for item in seen.planned.values():
        if item.person is not None:
            events_of[item.person.key].append(item)
    for person in seen.persons:
        if person.tainted:
            continue
        items = events_of.get(person.key, [])
        found = contacts_of(person, seen.contacts)
        if len(found) > 1:
            ev.problems["created twice"].append(
                f"{person.key}: {len(found)} contacts {[c['id'] for c in found]} hold one person's identifiers"
            )
            continue
        if not found:
            continue
        PersonCheck(ev, person, items, found[0]).run()


class PersonCheck:
    """One person's contact against their events (see the module docstring, "per person")."""

    def __init__(self, ev: Evidence, person: Person, items: list[Planned], contact: dict[str, Any]) -> None:
        self.ev, self.person, self.items, self.contact = ev, person, items, contact
        self.outcomes = {i.message_id: {o for c, o in ev.states.get(i.message_id, ()) if c == "success"} for i in items}
        self.applied = [i for i in items if self.outcomes[i.message_id] & APPLIED]
        # Writes that may have landed without the connector knowing: answer lost (timeout, dropped
        # connection), or answered 2xx for an event that never ended applied (killed, then parked).
        self.unacknowledged = [
            call
            for i in items
            for call in ev.writes.get(i.message_id, [])
            if call["status"] is None
            or (200 <= call["status"] < 300 and not self.outcomes[i.message_id] & (APPLIED | {"consent_withdrawn"}))
        ]

    def run(self) -> None:
        person, contact, problems = self.person, self.contact, self.ev.problems
        seed = person.seed or {}
        if person.agent_deleted:
            if not contact.get("deleted"):
                problems["deleted contact revived"].append(
                    f"{person.key}: contact {contact['id']}, deleted by an agent, is no longer deleted"
                )
            return
        self.check_value("name", "name", seed.get("name"))
        self.check_value("job_title", "title", seed.get("job_title"))
        self.check_tags(seed)
        theirs = seed.get("unique_external_id")
        now = contact.get("unique_external_id")
        if theirs and now != theirs:
            problems["external id changed"].append(
                f"{person.key}: contact {contact['id']}'s own unique_external_id {theirs!r} became {now!r}"
            )
        elif not theirs and now not in (None, "", person.user_id):
            problems["external id changed"].append(
                f"{person.key}: contact {contact['id']} holds unique_external_id {now!r}, not the person's"
            )

    def _event_text(self, item: Planned) -> str:
        return (
            f"{item.message_id} ({item.kind}, {item.event.get('timestamp')}, {sorted(self.outcomes[item.message_id])})"
        )

    def check_value(self, field_name: str, attr: str, seeded: Any) -> None:
        said = [i for i in self.applied if getattr(i, attr) is not None]
        actual = self.contact.get(field_name)
        if said:
            top = max(i.minute for i in said)
            newest = [i for i in said if i.minute == top]
            expected = {getattr(i, attr) for i in newest}
        elif seeded is not None:
            newest, expected = [], {seeded}
        else:
            return  # created by events that say none (the email stands in for a name on a create)
        tolerated = {c["body"].get(field_name) for c in self.unacknowledged if field_name in c["body"]}
        if actual in expected or actual in tolerated:
            return
        sources = [
            f"{self._event_text(i)} wrote it (answers {[c['status'] for c in self.ev.writes.get(i.message_id, [])]})"
            for i in self.items
            if any(c["body"].get(field_name) == actual for c in self.ev.writes.get(i.message_id, []))
        ]
        newest_text = ", ".join(self._event_text(i) for i in newest) or "the seeded contact"
        problem = (
            "name replaced by an email"
            if field_name == "name" and isinstance(actual, str) and "@" in actual
            else "newest values lost"
        )
        self.ev.problems[problem].append(
            f"{self.person.key}: contact {self.contact['id']} {field_name} {actual!r}, expected {sorted(expected)} "
            f"from {newest_text}; " + ("; ".join(sources) or "no write of this person sent it")
        )

    def withdrawal_overtaken(self, newest: list[tuple[bool, Planned]]) -> str:
        """The newest withdrawal was dropped `consent_denied` after a lookup found no contact, and an older,
        granting event then wrote our tag: the order rule broken through the remembered "not found"."""
        for granted, withdrawal in newest:
            if granted or ("dropped", "consent_denied") not in self.ev.states.get(withdrawal.message_id, set()):
                continue
            lookups = [
                c
                for c in self.ev.calls_of.get(withdrawal.message_id, [])
                if c["path"].startswith(LIST_LOOKUP) and c["status"] == 200
            ]
            if not lookups:
                continue
            looked = min(c["ended"] for c in lookups)
            for item in self.items:
                if item.minute >= withdrawal.minute or item.consent is not True:
                    continue
                writes = self.ev.writes.get(item.message_id, [])
                landed = [c for c in writes if c["status"] is not None and 200 <= c["status"] < 300]
                for call in landed + [c for c in writes if c not in landed]:
                    tags = call["body"].get("tags")
                    if (
                        call["started"] > looked
                        and isinstance(tags, list)
                        and any(isinstance(t, str) and t.casefold() == OUR_TAG for t in tags)
                    ):
                        return (
                            f"withdrawal {self._event_text(withdrawal)} found no contact "
                            f"({len(lookups)} lookup(s) answered 200) and was dropped; "
                            f"{call['started'] - looked:.2f} s later the older {self._event_text(item)} "
                            f"sent our tag ({call['method']} answered {call['status']})"
                        )
        return ""

    def check_tags(self, seed: dict[str, Any]) -> None:
        problems, person, contact = self.ev.problems, self.person, self.contact
        tags = [t for t in contact.get("tags") or [] if isinstance(t, str)]
        for tag in seed.get("tags") or []:
            if tag.casefold() != OUR_TAG and tag not in tags:
                problems["tag damaged"].append(
                    f"{person.key}: agent tag {tag!r} gone from contact {contact['id']}: {tags}"
                )
        if sum(1 for t in tags if t.casefold() == OUR_TAG) > 1:
            problems["tag damaged"].append(f"{person.key}: our tag in two spellings on contact {contact['id']}: {tags}")
        bearing: list[tuple[int, bool, Planned]] = [(i.minute, True, i) for i in self.applied]
        for item in self.items:
            found = self.ev.states.get(item.message_id, set())
            if "consent_withdrawn" in self.outcomes[item.message_id] or (
                item.consent is False and ("dropped", "consent_denied") in found
            ):
                bearing.append((item.minute, False, item))
        has_ours = any(t.casefold() == OUR_TAG for t in tags)
        if bearing:
            top = max(minute for minute, _, _ in bearing)
            newest = [(granted, item) for minute, granted, item in bearing if minute == top]
            expected = {granted for granted, _ in newest}
        elif seed:
            newest, expected = [], {any(t.casefold() == OUR_TAG for t in seed.get("tags") or [])}
        else:
            return
        tolerated = {
            any(isinstance(t, str) and t.casefold() == OUR_TAG for t in c["body"]["tags"])
            for c in self.unacknowledged
            if isinstance(c["body"].get("tags"), list)
        }
        if has_ours in expected or has_ours in tolerated:
            return
        overtaken = self.withdrawal_overtaken(newest) if has_ours else ""
        if overtaken:
            problems["older grant after a withdrawal"].append(f"{person.key}: contact {contact['id']}: {overtaken}")
            return
        later = [
            self._event_text(i)
            for i in self.items
            if any(isinstance(c["body"].get("tags"), list) for c in self.ev.writes.get(i.message_id, []))
        ]
        problems["consent tag wrong"].append(
            f"{person.key}: contact {contact['id']} {'has' if has_ours else 'lacks'} our tag ({tags}), but the newest "
            f"consent-bearing event is {', '.join(self._event_text(i) for _, i in newest) or 'the seeded contact'}; "
            f"events that wrote tags: {'; '.join(later) or 'none'}"
        )


def check_run(seen: Observed, ev: Evidence) -> None:
    """The run as a whole: messageIds nobody sent, handlers that raised, a vacuous run, a stuck queue."""
    problems, planned, states = ev.problems, seen.planned, ev.states
    problems["unknown messageId"].extend(sorted(ev.unknown))
    problems["handler raised"].extend(seen.handler_errors)
    # A run in which the faults (or a setting) kept Freshdesk from being reached proves nothing.
    deliverable = [mid for mid, item in planned.items() if item.expect == "deliver"]
    delivered = [mid for mid in deliverable if any(c == "success" for c, _ in states.get(mid, ()))]
    if deliverable and len(delivered) < len(deliverable) / 4:
        problems["vacuous run"].append(
            f"only {len(delivered)} of {len(deliverable)} deliverable events reached "
            "Freshdesk: the run did not exercise delivery"
        )
    # An unknown company_id is refused by Freshdesk and the event re-sent without it: some must show it.
    bad = [
        mid
        for mid, item in planned.items()
        if item.kind == "bad_company" and {o for _, o in states.get(mid, ())} & {"delivered", "updated"}
    ]
    if len(bad) >= 3 and not any(
        "company_id" in ev.dropped_fields.get(mid, ()) or mid in ev.fields_dropped for mid in bad
    ):
        problems["vacuous run"].append(
            f"none of the {len(bad)} delivered events naming an unknown company was delivered without it"
        )
    if sum(seen.pending_at_end.values()):
        problems["stuck"].append(f"retry queue at the end: {seen.pending_at_end}")


# -- the tally -----------------------------------------------------------------------------------
def people_line(seen: Observed, ev: Evidence) -> str:
    events: Counter[str] = Counter(item.person.key for item in seen.planned.values() if item.person is not None)
    seeded = [p for p in seen.persons if p.seed is not None]
    stale_retry = sum(v for k, v in ev.retry_outcomes.items() if k == "stale")
    withdrawal_lookups = sum(
        1
        for mid, item in seen.planned.items()
        if ("dropped", "consent_denied") in ev.states.get(mid, ())
        and any(c["path"].startswith(LIST_LOOKUP) for c in ev.calls_of.get(mid, ()))
    )
    return (
        f"  people: {len(seen.persons)} ({sum(1 for n in events.values() if n > 1)} with several events, "
        f"{len(seeded)} seeded by agents, {sum(1 for p in seeded if p.agent_deleted)} of them deleted, "
        f"{sum(1 for p in seen.persons if p.tainted)} left out as tainted); stale via the retry function: "
        f"{stale_retry}; consent_denied after a lookup: {withdrawal_lookups}"
    )


STATE_ORDER = (
    "delivered",
    "updated",
    "identity_mismatch",
    "consent_withdrawn",
    "unchanged",
    "conflict",
    "deleted_in_freshdesk",
    "stale",
)


def primary_state(found: set[tuple[str, str]]) -> str:
    for outcome in STATE_ORDER:
        if ("success", outcome) in found:
            return outcome
    for cls, kind in sorted(found):
        return f"dropped ({kind})" if cls == "dropped" else f"parked ({kind})"
    return "none"


def _counter_text(counter: Counter | dict, order: list[str] | None = None) -> str:
    if order:
        items = [(k, counter[k]) for k in order if counter.get(k)]
    else:
        items = sorted(counter.items(), key=lambda kv: str(kv[0]))
    return ", ".join(f"{k} {v}" for k, v in items) or "none"


def format_tally(seen: Observed, ev: Evidence) -> str:
    planned = seen.planned
    states, accepted, refused, problems = ev.states, ev.accepted, ev.refused, ev.problems
    successes, parked_count, parked_kinds, absorbed = ev.successes, ev.parked_count, ev.parked_kinds, ev.absorbed
    duplicate_answers, retry_outcomes, created, blind = ev.duplicate_answers, ev.retry_outcomes, ev.created, ev.blind
    config = seen.config
    sizes = [len(r.message_ids) for r in seen.requests]
    by_state: Counter[str] = Counter()
    drops: Counter[str] = Counter()
    for mid in planned:
        state = primary_state(states.get(mid, set()))
        if state.startswith("dropped"):
            drops[state[9:-1]] += 1
            state = "dropped"
        elif state.startswith("parked"):
            state = "parked"
        by_state[state] += 1
    kinds = Counter(item.kind for item in planned.values())
    statuses: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    for request in seen.sandbox_requests:
        if request["path"].startswith("/api/v2/"):
            statuses["no answer (dropped)" if request["status"] is None else str(request["status"])] += 1
            methods[request["method"]] += 1
    client_timeouts = sum(1 for call in seen.calls if call["status"] is None and "Timeout" in call["error"])
    observed_faults = {
        "5xx answers": sum(v for k, v in statuses.items() if k.isdigit() and int(k) >= 500),
        "429 answers": statuses.get("429", 0),
        "dropped connections": statuses.get("no answer (dropped)", 0),
        "client timeouts": client_timeouts,
    }
    total_calls = sum(methods.values())
    problem_count = sum(len(v) for v in problems.values())
    order = [*STATE_ORDER, "dropped", "parked", "none"]
    problems_text = ", ".join(f"{k} {len(v)}" for k, v in problems.items() if v)
    lines = [
        (
            f"ledger: seed {config.seed} (LEDGER_SEED={config.seed} LEDGER_EVENTS={config.events}), "
            f"{len(planned)} events in {len(seen.requests)} requests ({sizes.count(1)} single, "
            f"{len(sizes) - sizes.count(1)} batches, largest {max(sizes) if sizes else 0}), {seen.elapsed:.1f} s"
        ),
        f"  stream: {_counter_text(kinds, [k for k, _ in KINDS])}",
        (
            f"  accepted {len(accepted & set(planned))}/{len(planned)}; refused with 5xx or no answer at least "
            f"once: {len(refused & set(planned))} events (all re-sent by Signal)"
        ),
        f"  terminal states: {_counter_text(by_state, order)}",
        f"    dropped by reason: {_counter_text(drops)}",
        (
            f"    parked: {_counter_text(parked_kinds)} ({len(parked_count)} events; "
            f"parked more than once: {sum(1 for c in parked_count.values() if c > 1)})"
        ),
        (
            f"    redriven copies of events delivered or dropped (returned with crashed or killed batches): "
            f"{sum(ev.redriven_copies.values())} ({len(ev.redriven_copies)} events)"
        ),
        (
            f"    events with more than one success result (repeat deliveries): "
            f"{sum(1 for c in successes.values() if c > 1)}"
        ),
        f"  retry function: {_counter_text(seen.retry)}",
        f"    retry outcomes: {_counter_text(retry_outcomes)}",
        f"  injected (armed at the sandbox): {_counter_text(seen.armed)}",
        f"  injected (in process): {_counter_text(seen.injected)}",
        f"  observed at Freshdesk: {_counter_text(observed_faults)}",
        (
            f"  Freshdesk calls: {total_calls} ({_counter_text(methods)}); by status: {_counter_text(statuses)}; "
            f"creations answered 201: {sum(created.values())}; contacts in the sandbox: {len(seen.contacts)}"
        ),
        f"  queue sends: {_counter_text(seen.sends)}; DLQ messages: {len(seen.dlq)}",
        f"  Signal: {_counter_text(seen.signal)}",
        (
            f"  duplicates absorbed: {duplicate_answers} webhook answers from the idempotency record; "
            f"{_counter_text(absorbed)}"
        ),
        f"  events with a Freshdesk answer lost (timeout, dropped connection, kill after the call): {len(blind)}",
        people_line(seen, ev),
        f"  problems: {problem_count}" + (f" -> {problems_text}" if problem_count else ""),
    ]
    return "\n".join(lines)
