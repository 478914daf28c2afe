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
  the idempotency record, with outcome delivered, updated or conflict;
- `dropped(reason)`: such a line with outcome dropped and a reason (`already_handled`, a re-delivered
  retry message of an event already final, is an absorbed duplicate, not a state);
- `parked(kind)`: a message in the DLQ whose envelope names the messageId: `rejected` or `exhausted`
  as the connector parks them (with `last_error`), or `redriven`, a retry-queue envelope moved there
  raw by SQS's redrive policy after maxReceiveCount receives (read from its body; outcome `queued`).
A `rejected` log line must be matched by a parked envelope (else the event is reported parked but
is not).

An accepted event is *accounted for* when it has at least one terminal state, all of them in one
class (success, dropped, parked: several success outcomes, or several parkings, are consistent; they
are tallied as repeat deliveries / repeat parkings), and that class fits what the event is (a page view
dropped `page_view`; a deliverable event a success or parked `exhausted`/`redriven`, never dropped or
rejected by Freshdesk; an event naming a company that does not exist parked).

The run FAILS on any of:
- lost: an accepted event with no terminal state;
- contradictory: terminal states in two classes (delivered and parked; dropped and delivered; two
  drop reasons);
- unexpected: a terminal class that does not fit the event;
- refused to the end: an event never accepted, although Signal re-sent it on every 5xx / no answer;
- stuck: the retry queue not empty at the end;
- created twice: two 201 creations in Freshdesk for one event, two sandbox contacts sharing an email
  or a unique_external_id, or two contacts for one phone-only person (Freshdesk does not enforce unique
  phones; the connector looks such a contact up before creating it);
- phantom success: a success without the Freshdesk answer it rests on (201 / 200 / 409 to a call made
  for this event), or whose contact is not in the sandbox;
- a dropped event that called Freshdesk;
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

SUCCESS = frozenset({"delivered", "updated", "conflict"})
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
    "rejected but not parked",
    "parked without its error",
    "unreadable in the DLQ",
    "unknown messageId",
    "handler raised",
    "vacuous run",
)
# The Freshdesk answers each success outcome rests on: 201 (or a 2xx), 200 to the update, 409 (or 200 to
# a lookup that found the contact).
SUCCESS_BACKING = {"delivered": {201, 200}, "updated": {200}, "conflict": {409, 200}}
CLASS_OF = {"success": "success", "dropped": "dropped", "parked": "parked"}


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
    absorbed: Counter[str] = field(default_factory=Counter)
    retry_outcomes: Counter[str] = field(default_factory=Counter)
    # the DLQ
    parked_count: Counter[str] = field(default_factory=Counter)
    parked_kinds: Counter[str] = field(default_factory=Counter)
    # Freshdesk, as the connector called it
    created: Counter[str] = field(default_factory=Counter)
    blind: set[str] = field(default_factory=set)  # events with a Freshdesk answer lost
    called: set[str] = field(default_factory=set)
    answered: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

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


def read_logs(seen: Observed, ev: Evidence) -> None:
    """The functions' "processed" log lines: success and dropped states, duplicates absorbed, rejections."""
    for line in seen.logs:
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
        if outcome in SUCCESS:
            ev.states[mid].add(("success", outcome))
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
            if call["status"] is not None:
                ev.answered[mid].add(call["status"])
        if call["method"] == "POST" and call["path"] == "/api/v2/contacts":
            if call["status"] == 201:
                ev.created[mid] += 1
            elif call["status"] is None:
                ev.blind.add(mid)
    for kill in seen.kills:
        if kill["attempted"]:
            ev.blind.add(kill["messageId"])


# -- the checks ----------------------------------------------------------------------------------
def check_created_once(seen: Observed, ev: Evidence) -> None:
    """No event created twice, and no two contacts in the sandbox for one person."""
    problems = ev.problems
    for mid, count in ev.created.items():
        if count > 1:
            problems["created twice"].append(f"{mid}: {count} creations answered 201")
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
        problems["dropped but called Freshdesk"].append(f"{mid} ({item.kind})")
    check_success_backed(seen, ev, mid, item, cls, found)


def check_expected_class(
    ev: Evidence, mid: str, item: Planned, cls: str, found: set[tuple[str, str]], drop_reasons: set[str]
) -> None:
    """The terminal class fits the event: dropped for its reason, parked, or delivered (not dropped or rejected)."""
    unexpected = ev.problems["unexpected"]
    if item.expect.startswith("drop:"):
        if cls != "dropped" or drop_reasons != {item.expect[5:]}:
            unexpected.append(f"{mid} ({item.kind}) expected {item.expect}: {sorted(found)}")
    elif item.expect == "park":
        if cls != "parked":
            unexpected.append(f"{mid} ({item.kind}) expected parked: {sorted(found)}")
    elif cls == "dropped" or any(c == "parked" and k == "rejected" for c, k in found):
        unexpected.append(f"{mid} ({item.kind}) expected delivery: {sorted(found)}")


def check_success_backed(
    seen: Observed, ev: Evidence, mid: str, item: Planned, cls: str, found: set[tuple[str, str]]
) -> None:
    """Each success rests on a Freshdesk answer to this event, and its contact is in the sandbox."""
    phantom = ev.problems["phantom success"]
    for c, outcome in found:
        if c == "success" and not SUCCESS_BACKING[outcome] & ev.answered.get(mid, set()):
            phantom.append(
                f"{mid} ({item.kind}): {outcome} without such an answer "
                f"from Freshdesk (answers: {sorted(ev.answered.get(mid, ()))})"
            )
    if cls == "success" and item.person is not None and not item.person.tainted:
        person = item.person
        if not any(
            (person.email and c.get("email") == person.email)
            or (person.user_id and c.get("unique_external_id") == person.user_id)
            or (person.phone_only and c.get("phone") == person.phone)
            for c in seen.contacts
        ):
            phantom.append(f"{mid} ({item.kind}): no contact holds its identifiers")


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
    meant = sum(1 for item in planned.values() if item.expect == "park")
    if meant >= 3 and not any(("parked", "rejected") in found for found in states.values()):
        problems["vacuous run"].append(f"none of the {meant} events Freshdesk refuses was parked as rejected")
    if sum(seen.pending_at_end.values()):
        problems["stuck"].append(f"retry queue at the end: {seen.pending_at_end}")


# -- the tally -----------------------------------------------------------------------------------
def primary_state(found: set[tuple[str, str]]) -> str:
    for outcome in ("delivered", "updated", "conflict"):
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
    order = ["delivered", "updated", "conflict", "dropped", "parked", "none"]
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
        f"  problems: {problem_count}" + (f" -> {problems_text}" if problem_count else ""),
    ]
    return "\n".join(lines)
