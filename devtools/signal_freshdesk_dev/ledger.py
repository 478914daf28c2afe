"""The ledger: push a large, mixed, seeded stream of Signal events through the real handlers while
faults are injected at random, drain everything, and account for every event ("nothing is lost").

    python -m signal_freshdesk_dev.ledger [--events 1000] [--seed N]      (or: make ledger EVENTS=1000 SEED=N)

The handlers run in this process, as the tests run them: the ingest handler called with API Gateway
HTTP API requests by a Signal simulator, the retry handler called by stand-ins for Lambda's SQS event
source mapping (batches, visibility timeouts, redelivery, partial batch failures, redrive to the DLQ
after maxReceiveCount receives), against moto (SQS, Secrets Manager, DynamoDB) and the Freshdesk sandbox.

Faults, drawn from random.Random instances derived from one seed (printed; LEDGER_SEED / --seed):
- Freshdesk (the sandbox): 5xx answers, timeouts (an answer slower than FRESHDESK_READ_TIMEOUT=0.5, which
  Freshdesk still carries out), dropped connections, 429 storms with a short Retry-After (injected, and
  a real rate limit lowered for a few seconds), slow answers, outages (every call 503 for seconds),
  and the `signup_method` custom field disappearing from the account for a while;
- Secrets Manager: `read_secret_json` raising SecretUnavailable (cache age SECRET_MAX_AGE_SECONDS=1);
- SQS: `RetryQueues._send` raising QueueError (both the retry queue and the DLQ);
- the retry function: an invocation crashing after its work (the event source returns the whole batch),
  or killed mid-batch, between a Freshdesk answer and securing it (the rest of the batch not started),
  or a poison message: a few events' retry messages fail in the retry function every time (an
  unexpected error: the record is reported as a batch item failure) until SQS's redrive policy moves
  them raw to the DLQ;
- the ingest function: an invocation crashing after its work (Signal sees no answer);
- Signal: re-sending the identical request on 5xx or no answer (5 attempts in all, exponential
  backoff, as Signal's webhook does), re-sending a request that got 2xx a little later (a lost answer),
  and sending the same request twice at once (a re-send overlapping the original).
The seed fixes the stream and each fault source's sequence of draws; threads make the interleaving,
and so which event meets which fault, vary from run to run.

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

import argparse
import contextlib
import json
import logging
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from signal_freshdesk import pipeline as pipeline_module
from signal_freshdesk import retry as retry_module
from signal_freshdesk import secrets_manager as secrets_module
from signal_freshdesk.credentials import SecretUnavailable
from signal_freshdesk.freshdesk import FreshdeskClient
from signal_freshdesk.observability import logger as powertools_logger
from signal_freshdesk.preset import message_id_of
from signal_freshdesk.sqs import QueueError, RetryQueues

from .apigw import LOCAL_WEBHOOK_TOKEN, LambdaContext, http_api_event
from .event_source import DrainStats, SqsEventSource
from .handlers import ingest_handler, retry_handler

LOGGER_NAME = "signal-freshdesk"
DEFAULT_EVENTS = 150
# The functions' settings for the run, on top of the stack's environment.
LEDGER_ENV = {
    # A sandbox delay of 1 s is a timeout. (Until 308152b a read timeout of 0.5 s made the client call
    # nothing at all: tests/reliability/test_found_bugs.py.)
    "FRESHDESK_READ_TIMEOUT": "0.5",
    "FRESHDESK_CONNECT_TIMEOUT": "0.5",
    "SECRET_MAX_AGE_SECONDS": "1",        # the secret is re-read every second: its failures matter
    "SECRETS_EXTENSION": "off",
    "MAX_ATTEMPTS": "4",                  # with RETRY_BASE_SECONDS 1: exhausted after ~7 s of failures
    "RETRY_BASE_SECONDS": "1",
    "FRESHDESK_RATE_WINDOW_SECONDS": "2",  # the sandbox's storms use 2 s windows
    "CONSENT_MODE": "require",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
BASE_RATE_LIMIT = 1_000_000
TIMEOUT_DELAY = 1.0
SUCCESS = frozenset({"delivered", "updated", "conflict"})
NON_EVENT_OUTCOMES = frozenset({"failed"})


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class FaultRates:
    """Probabilities. Sandbox faults are drawn once per Signal request; the others per occurrence."""

    freshdesk_5xx: float = 0.10        # fail_next(5xx, 1-3 calls)
    freshdesk_429: float = 0.05        # fail_next(429, 2-6 calls, Retry-After 1-2 s)
    freshdesk_timeout: float = 0.06    # delay(1 s > read timeout, 1-2 calls)
    freshdesk_slow: float = 0.06       # delay(0.05-0.3 s, 1-4 calls)
    freshdesk_drop: float = 0.05       # drop_next(1-2 connections)
    rate_storm: float = 0.02           # the account's limit down to 3-6 calls per 2 s, for 2-4 s
    field_toggle: float = 0.03         # the signup_method custom field removed / restored
    outages: int = 1                   # every Freshdesk call 503 for 5-7 s (MAX_ATTEMPTS 4 span ~5 s)
    secret_failure: float = 0.10       # per read of the secret
    sqs_send_failure: float = 0.04     # per SendMessage (retry queue and DLQ)
    ingest_crash: float = 0.04         # per ingest invocation, after its work
    retry_crash: float = 0.08          # per retry invocation, after its work
    retry_kill: float = 0.02           # per retry record, after Freshdesk answered, before securing
    poison: float = 0.02               # per deliverable event: each retry message of it fails in the
                                       # retry function, every time (redriven raw to the DLQ)
    signal_resend_2xx: float = 0.08    # per request that got 2xx: re-sent again later
    signal_concurrent_copy: float = 0.03  # per request of at most 10 events: sent twice at once


@dataclass
class LedgerConfig:
    events: int = DEFAULT_EVENTS
    seed: int = 0
    max_batch: int = 100
    signal_attempts: int = 5         # Signal's webhook: 5 attempts with exponential backoff
    signal_backoff: float = 0.1      # seconds before the first re-send, doubled each time
    signal_workers: int = 2
    retry_workers: int = 2
    chaos_tail_seconds: float = 4.0  # faults keep coming this long after Signal's last request
    chaos_tick: float = 0.5          # and a fault may be armed this often, whatever the traffic
    drain_timeout: float = 180.0
    faults: FaultRates = field(default_factory=FaultRates)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> LedgerConfig:
        env = os.environ if env is None else env
        seed_text = env.get("LEDGER_SEED", "").strip()
        seed = int(seed_text) if seed_text else random.SystemRandom().randrange(1, 10**9)
        events = int(env.get("LEDGER_EVENTS", "").strip() or DEFAULT_EVENTS)
        config = cls(events=events, seed=seed)
        if events >= 600:
            config.faults.outages = 3
        for key, value in overrides.items():
            setattr(config, key, value)
        return config


class SimulatedKill(BaseException):
    """The invocation dies where it stands (not an Exception: the handlers' own guards do not see it)."""


class InvocationLost(Exception):
    """The ingest invocation did its work but its answer never reached Signal."""


class Patcher:
    """setattr with undo, so the harness needs no pytest (make ledger) and restores what it wraps."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        self._undo.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._undo:
            target, name, value = self._undo.pop()
            setattr(target, name, value)


# ---------------------------------------------------------------------------------------------
# The stream: persons, events, Signal requests
# ---------------------------------------------------------------------------------------------
@dataclass
class Person:
    key: str
    name: str
    email: str = ""
    user_id: str = ""
    phone: str = ""  # E.164, as the connector sends it
    national_phone: str = ""
    phone_only: bool = False
    tainted: bool = False  # named by a clash event: its contact may carry another person's identifiers


@dataclass
class Planned:
    message_id: str
    kind: str
    expect: str  # "deliver", "park", or "drop:<reason>"
    event: dict[str, Any]
    person: Person | None = None


@dataclass
class SignalRequest:
    index: int
    message_ids: list[str]
    body: str
    form: str  # single | array | batch


KINDS = (("signed_up", 20), ("identify", 13), ("identified", 8), ("phone_only", 3), ("clash", 2),
         ("bad_company", 5), ("page", 12), ("unsupported", 8), ("consent_denied", 6),
         ("consent_missing", 6), ("anonymous", 5), ("missing_name", 3))
FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "Donald", "Radia", "Tim")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Allen", "Knuth", "Perlman")


class StreamBuilder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.persons: list[Person] = []
        self.phone_persons = 0

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_person(self, phone_only: bool = False) -> Person:
        n = len(self.persons) + 1
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        if phone_only:
            self.phone_persons += 1
            digits = f"{self.rng.randrange(10**5):05d}{self.phone_persons:04d}"[-6:]
            person = Person(f"p{n}", f"{first} {last}", phone=f"+447700{digits}",
                            national_phone=f"07700 {digits}", phone_only=True)
        else:
            tag = self.rng.getrandbits(24)
            person = Person(f"p{n}", f"{first} {last}", email=f"{first}.{last}.{n}.{tag:06x}@example.test".lower(),
                            user_id=f"usr_{n:05d}_{tag:06x}")
            if self.rng.random() < 0.3:
                digits = f"{self.rng.randrange(10**6):06d}"
                person.phone, person.national_phone = f"+447700{digits}", f"07700 {digits}"
        self.persons.append(person)
        return person

    def existing(self) -> Person | None:
        known = [p for p in self.persons if not p.phone_only]
        return self.rng.choice(known) if known else None

    def consent(self, granted: bool | None) -> dict[str, Any]:
        if granted is None:
            return {} if self.rng.random() < 0.5 else {"consent": {"canonical": {"analytics": True}}}
        if self.rng.random() < 0.8:
            return {"consent": {"categories": {"marketing": granted},
                                "canonical": {"essential": True, "marketing": granted}}}
        return {"consent": {"marketing": granted, "analytics": True}}  # the legacy flat shape

    def traits(self, person: Person, *, company: Any = None) -> dict[str, Any]:
        traits: dict[str, Any] = {}
        if self.rng.random() < 0.7:
            traits["name"] = person.name
        else:
            first, _, last = person.name.partition(" ")
            traits.update({"firstName": first, "lastName": last})
        if person.email:
            traits["email"] = person.email.title() if self.rng.random() < 0.2 else person.email
        if person.national_phone:
            traits["phone"] = person.national_phone
        if self.rng.random() < 0.2:
            traits["title"] = self.rng.choice(("CTO", "Head of Growth", "Engineer"))
        if company is not None:
            traits["company_id"] = company
        elif self.rng.random() < 0.15:
            traits["company_id"] = self.rng.choice((1, 2, 3, "2"))
        return traits

    def event(self, kind: str) -> Planned:
        rng = self.rng
        base: dict[str, Any] = {"messageId": self._uuid(), "anonymousId": f"anon_{rng.getrandbits(32):08x}",
                                "timestamp": "2026-02-25T14:30:00.000Z"}
        context: dict[str, Any] = {"locale": "en-GB", "ip": "203.0.113.42"}
        base["context"] = context
        person: Person | None = None
        expect = "deliver"

        def identify(p: Person, traits: dict[str, Any]) -> None:
            if rng.random() < 0.5:
                base.update(type="identify", traits=traits)
            else:
                base.update(type="track", event=rng.choice(("Identified", "identified")), properties={})
                context["traits"] = traits
            if p.user_id:
                base["userId"] = p.user_id

        def signed_up(p: Person, traits: dict[str, Any]) -> None:
            base.update(type="track", event=rng.choice(("Signed Up", "signed_up", "signed-up")),
                        properties={"method": rng.choice(("email", "google"))} if rng.random() < 0.7 else {})
            context["traits"] = traits
            if p.user_id:
                base["userId"] = p.user_id

        if kind in ("signed_up", "identify", "identified"):
            reuse = 0.2 if kind == "signed_up" else 0.5
            person = (self.existing() if rng.random() < reuse else None) or self.new_person()
            (signed_up if kind == "signed_up" else identify)(person, self.traits(person))
            if kind == "identified":
                base.update(type="track", event="Identified", properties={})
                context["traits"] = base.pop("traits", None) or context.get("traits")
            context.update(self.consent(True))
        elif kind == "phone_only":
            person = self.new_person(phone_only=True)
            identify(person, self.traits(person))
            context.update(self.consent(True))
        elif kind == "clash":
            first, second = self.existing(), self.existing()
            if first is None or second is None or first is second:
                return self.event("identify")
            first.tainted = second.tainted = True
            person = first
            base.update(type="identify", userId=first.user_id,
                        traits={"name": first.name, "email": second.email})
            context.update(self.consent(True))
        elif kind == "bad_company":
            person = (self.existing() if rng.random() < 0.3 else None) or self.new_person()
            traits = self.traits(person, company=rng.choice((999, "4242")))
            (signed_up if rng.random() < 0.5 else identify)(person, traits)
            context.update(self.consent(True))
            expect = "park"
        elif kind == "page":
            base.update(type=rng.choice(("page", "screen")), name="Pricing", properties={"path": "/pricing"})
            if rng.random() < 0.5 and (known := self.existing()):
                base["userId"] = known.user_id
            context.update(self.consent(True))
            expect = "drop:page_view"
        elif kind == "unsupported":
            if rng.random() < 0.7:
                base.update(type="track", event=rng.choice(("Order Completed", "Product Viewed")), properties={})
            else:
                base.update(type="group", groupId="grp_1", traits={"name": "Acme"})
            context.update(self.consent(True))
            expect = "drop:unsupported_event"
        elif kind in ("consent_denied", "consent_missing"):
            person = self.new_person()
            (signed_up if rng.random() < 0.5 else identify)(person, self.traits(person))
            context.update(self.consent(False if kind == "consent_denied" else None))
            expect = f"drop:{kind}"
        elif kind == "anonymous":
            base.update(type="identify", traits={"name": "Someone", "email": "a" * 64 if rng.random() < 0.5 else ""})
            context.update(self.consent(True))
            expect = "drop:anonymous"
        elif kind == "missing_name":
            base.update(type="identify", userId=f"usr_nameless_{rng.getrandbits(32):08x}", traits={"title": "CTO"})
            context.update(self.consent(True))
            expect = "drop:missing_name"
        else:  # pragma: no cover
            raise ValueError(kind)
        return Planned(base["messageId"], kind, expect, base, person)


def build_stream(events: int, seed: int,
                 max_batch: int = 100) -> tuple[dict[str, Planned], list[SignalRequest], list[Person]]:
    rng = random.Random(f"{seed}:stream")
    builder = StreamBuilder(rng)
    names = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    planned: dict[str, Planned] = {}
    order: list[Planned] = []
    for _ in range(events):
        item = builder.event(rng.choices(names, weights)[0])
        planned[item.message_id] = item
        order.append(item)
    requests: list[SignalRequest] = []
    position = 0
    # Batches up to max_batch (100, Signal's limit) in a long stream; a short one keeps enough requests
    # for Signal's re-sends to matter.
    largest = max(1, min(max_batch, max(8, events // 6)))
    while position < len(order):
        draw = rng.random()
        size = 1 if draw < 0.45 else rng.randint(2, 8) if draw < 0.8 else rng.randint(9, 30) if draw < 0.95 \
            else rng.randint(31, 100)
        size = max(1, min(size, largest, len(order) - position))
        chunk = order[position:position + size]
        position += size
        if size == 1 and rng.random() < 0.9:
            form, payload = "single", chunk[0].event
        elif rng.random() < 0.5:
            form, payload = "array", [p.event for p in chunk]
        else:
            form, payload = "batch", {"batch": [p.event for p in chunk]}
        requests.append(SignalRequest(len(requests), [p.message_id for p in chunk], json.dumps(payload), form))
    return planned, requests, builder.persons


# ---------------------------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------------------------
class Chaos:
    def __init__(self, config: LedgerConfig, sandbox: Any) -> None:
        self.rates = config.faults
        self.sandbox = sandbox
        self.enabled = True
        self._lock = threading.Lock()
        self._rngs: dict[str, random.Random] = {}
        self._seed = config.seed
        self.sandbox_rng = random.Random(f"{config.seed}:sandbox")
        self.armed: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.timers: list[threading.Timer] = []
        self.outage_active = False
        self.storm_active = False
        self.outage_steps: set[int] = set()

    def plan_outages(self, steps: int) -> None:
        """Outages at requests spread from a sixth to two thirds of the stream, one per segment."""
        count = self.rates.outages
        if steps and count:
            start = steps // 6
            span = max(count, steps * 2 // 3 - start)
            self.outage_steps = {start + n * span // count + self.sandbox_rng.randrange(max(1, span // count))
                                 for n in range(count)}

    def roll(self, kind: str) -> bool:
        if not self.enabled:
            return False
        with self._lock:
            rng = self._rngs.setdefault(kind, random.Random(f"{self._seed}:{kind}"))
            hit = rng.random() < getattr(self.rates, kind)
            if hit:
                self.injected[kind] += 1
        return hit

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        def run() -> None:
            if self.enabled:
                action()
        timer = threading.Timer(seconds, run)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def tick(self, stop: threading.Event, every: float) -> None:
        """Faults over time too, not only per request: the retry function's traffic meets them."""
        while not stop.wait(every) and self.enabled:
            self.step(-1)

    def step(self, index: int) -> None:
        """Before Signal's request `index` (-1: a tick of the clock): perhaps arm one sandbox fault."""
        if not self.enabled:
            return
        rng, box, rates = self.sandbox_rng, self.sandbox, self.rates
        with self._lock:
            self._step(index, rng, box, rates)

    def _step(self, index: int, rng: random.Random, box: Any, rates: FaultRates) -> None:
        if index in self.outage_steps and not self.outage_active:
            self.outage_active = True
            self.armed["outage"] += 1
            box.fail_next(503, count=None)

            def end_outage() -> None:
                box.fail_next(503, count=0)
                self.outage_active = False
            self._later(rng.uniform(5.0, 7.0), end_outage)
            return
        draw = rng.random()
        edges = []
        total = 0.0
        for name in ("freshdesk_5xx", "freshdesk_429", "freshdesk_timeout", "freshdesk_slow", "freshdesk_drop",
                     "rate_storm", "field_toggle"):
            total += getattr(rates, name)
            edges.append((total, name))
        kind = next((name for edge, name in edges if draw < edge), None)
        if kind is None:
            return
        if kind in ("freshdesk_5xx", "freshdesk_429") and self.outage_active:
            return
        self.armed[kind] += 1
        if kind == "freshdesk_5xx":
            box.fail_next(rng.choice((500, 502, 503, 504)), count=rng.randint(1, 3))
        elif kind == "freshdesk_429":
            box.fail_next(429, count=rng.randint(2, 6), retry_after=rng.randint(1, 2))
        elif kind == "freshdesk_timeout":
            box.delay(TIMEOUT_DELAY, count=rng.randint(1, 2))
        elif kind == "freshdesk_slow":
            box.delay(rng.uniform(0.05, 0.3), count=rng.randint(1, 4))
        elif kind == "freshdesk_drop":
            box.drop_next(rng.randint(1, 2))
        elif kind == "rate_storm":
            if self.storm_active:
                return
            self.storm_active = True
            box.set_rate_limit(rng.randint(3, 6), 2.0)

            def end_storm() -> None:
                box.set_rate_limit(BASE_RATE_LIMIT, 60.0)
                self.storm_active = False
            self._later(rng.uniform(2.0, 4.0), end_storm)
        elif kind == "field_toggle":
            box.custom_fields = () if box.custom_fields else ("signup_method",)

    def calm(self) -> None:
        """No more faults: Freshdesk healthy, every injection off."""
        self.enabled = False
        for timer in self.timers:
            timer.cancel()
        self.sandbox.clear_faults()
        self.sandbox.set_rate_limit(BASE_RATE_LIMIT, 60.0)
        self.sandbox.custom_fields = ("signup_method",)
        self.outage_active = self.storm_active = False


class LogTap(logging.Handler):
    """The functions' structured log lines (ids, outcomes, reasons: no contact data)."""

    FIELDS = ("messageId", "outcome", "status", "reason", "duplicate", "attempts", "error", "sqsMessageId")

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        entry: dict[str, Any] = {"message": record.getMessage(), "level": record.levelname}
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        self.records.append(entry)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
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


class Run:
    def __init__(self, config: LedgerConfig, *, resources: Any, sandbox: Any, sqs_client: Any) -> None:
        self.config = config
        self.resources = resources
        self.sandbox = sandbox
        self.sqs = sqs_client
        planned, requests, persons = build_stream(config.events, config.seed, config.max_batch)
        self.seen = Observed(config, planned, requests, persons)
        self.chaos = Chaos(config, sandbox)
        self.lock = threading.Lock()
        self.local = threading.local()
        self.signal_rng = random.Random(f"{config.seed}:signal")
        self.stop_pollers = threading.Event()
        poison_rng = random.Random(f"{config.seed}:poison")
        self.poison = {mid for mid, item in planned.items()
                       if item.expect == "deliver" and poison_rng.random() < config.faults.poison}

    # -- instrumentation -------------------------------------------------------------------------
    def install(self, patch: Patcher) -> None:
        chaos, seen, run = self.chaos, self.seen, self

        real_read = secrets_module.read_secret_json

        def read_secret_json(secret_id: str) -> dict[str, Any]:
            if chaos.roll("secret_failure"):
                raise SecretUnavailable("injected: Secrets Manager could not be reached")
            return real_read(secret_id)
        patch.setattr(secrets_module, "read_secret_json", read_secret_json)

        real_send = RetryQueues._send

        def send(queues: RetryQueues, url: str, setting: str, envelope: dict[str, Any], delay: int) -> None:
            if chaos.roll("sqs_send_failure"):
                raise QueueError("injected: SQS SendMessage failed")
            real_send(queues, url, setting, envelope, delay)
            with run.lock:
                seen.sends["park" if setting == "DLQ_URL" else "retry"] += 1
        patch.setattr(RetryQueues, "_send", send)

        real_deliver = pipeline_module.deliver_contact

        def deliver_contact(delivery: Any, **kwargs: Any) -> Any:
            run.local.message_id = delivery.message_id
            try:
                return real_deliver(delivery, **kwargs)
            finally:
                run.local.message_id = None
        patch.setattr(pipeline_module, "deliver_contact", deliver_contact)

        real_request = FreshdeskClient._request

        def request(client: FreshdeskClient, creds: Any, method: str, path: str, body: Any, deadline: Any) -> Any:
            answer = real_request(client, creds, method, path, body, deadline)
            with run.lock:
                seen.calls.append({"messageId": getattr(run.local, "message_id", None), "method": method,
                                   "path": path, "status": answer.status, "error": answer.error})
            return answer
        patch.setattr(FreshdeskClient, "_request", request)

        real_retry_record = retry_module.retry_record

        def retry_record(record: Any, runtime: Any, **kwargs: Any) -> bool:
            # A poison message stays poison after the faults stop: only the redrive policy ends it.
            try:
                mid = json.loads(record["body"]).get("messageId")
            except (ValueError, AttributeError, TypeError):
                mid = None
            if mid in run.poison:
                with run.lock:
                    seen.retry["poison records failed"] += 1
                raise ValueError("injected: this record breaks the retry function every time")
            return real_retry_record(record, runtime, **kwargs)
        patch.setattr(retry_module, "retry_record", retry_record)

        real_secure = retry_module.secure

        def secure(event: Any, result: Any, runtime: Any, **kwargs: Any) -> Any:
            if chaos.roll("retry_kill"):
                with run.lock:
                    seen.kills.append({"messageId": message_id_of(event), "outcome": result.outcome.value,
                                       "attempted": result.attempted})
                raise SimulatedKill("the retry invocation was killed before securing its record")
            return real_secure(event, result, runtime, **kwargs)
        patch.setattr(retry_module, "secure", secure)

    # -- Signal ----------------------------------------------------------------------------------
    def ingest(self, request: SignalRequest, copy: str) -> dict[str, Any] | None:
        event = http_api_event(request.body, {"Content-Type": "application/json",
                                              "Authorization": f"Bearer {LOCAL_WEBHOOK_TOKEN}",
                                              "User-Agent": "Datafly-Signal/ledger"})
        answer = ingest_handler()(event, LambdaContext(function_name="ingest", timeout_seconds=29))
        if self.chaos.roll("ingest_crash"):
            raise InvocationLost("the ingest invocation crashed after its work")
        return answer

    def send(self, request: SignalRequest, copy: str) -> None:
        """One request as Signal sends it: re-sent on 5xx or no answer, up to signal_attempts in all."""
        previous: int | None = None
        for attempt in range(1, self.config.signal_attempts + 1):
            record: dict[str, Any] = {"request": request.index, "copy": copy, "attempt": attempt,
                                      "message_ids": request.message_ids}
            try:
                answer = self.ingest(request, copy)
                status = answer["statusCode"]
                body = json.loads(answer["body"])
            except InvocationLost as exc:  # injected: the work was done, the answer lost
                status, body = None, {}
                record["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - the handler raised: API Gateway answers 502, Signal re-sends
                status, body = None, {}
                record["error"] = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    self.seen.handler_errors.append(f"ingest request {request.index}: {type(exc).__name__}: {exc}")
            record["status"] = status
            if isinstance(body.get("results"), list):
                record["results"] = body["results"]
            elif isinstance(body, dict) and body.get("messageId"):
                record["results"] = [body]
            else:
                record["results"] = []
                record["outcome"] = body.get("outcome") if isinstance(body, dict) else None
            with self.lock:
                self.seen.answers.append(record)
                self.seen.signal["attempts"] += 1
                if attempt > 1:
                    self.seen.signal["re-sent after " + ("no answer" if previous is None else "5xx")] += 1
            previous = status
            if status is not None and status < 500:
                if copy == "original" and status < 300 and self.chaos.roll("signal_resend_2xx"):
                    with self.lock:
                        self.late.append((self.step_index + self.signal_rng.randint(1, 6), request))
                return
            if attempt < self.config.signal_attempts:
                time.sleep(self.config.signal_backoff * 2 ** (attempt - 1))
        with self.lock:
            self.seen.signal["requests given up"] += 1

    # -- the retry function's event source -------------------------------------------------------
    def retry_invocation(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self.lock:
            self.seen.retry["invocations"] += 1
        try:
            answer = retry_handler()(event, context)
        except SimulatedKill:
            with self.lock:
                self.seen.retry["killed mid-batch"] += 1
            raise RuntimeError("the retry invocation was killed mid-batch") from None
        except Exception as exc:  # not injected: the handler itself raised (the batch returns)
            with self.lock:
                self.seen.handler_errors.append(f"retry invocation: {type(exc).__name__}: {exc}")
            raise
        if self.chaos.roll("retry_crash"):
            with self.lock:
                self.seen.retry["crashed after work"] += 1
            raise RuntimeError("the retry invocation crashed after its work")
        return answer

    def poll(self, stats: DrainStats) -> None:
        source = SqsEventSource(self.sqs, self.resources.retry_queue_url, self.retry_invocation,
                                function_timeout=60.0)
        while not self.stop_pollers.is_set():
            try:
                handled = source.poll_once(stats)
            except Exception:  # noqa: BLE001 - an SQS call of the event source itself failed
                with self.lock:
                    self.seen.retry["event source errors"] += 1
                handled = 0
            if not handled:
                self.stop_pollers.wait(0.1)

    def pending(self) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.resources.retry_queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return {k.removeprefix("ApproximateNumberOf"): int(v) for k, v in attrs.items()}

    # -- the whole run ---------------------------------------------------------------------------
    def execute(self) -> Observed:
        started = time.monotonic()
        config, seen, chaos = self.config, self.seen, self.chaos
        self.sandbox.set_rate_limit(BASE_RATE_LIMIT, 60.0)
        self.sandbox.custom_fields = ("signup_method",)
        chaos.plan_outages(len(seen.requests))
        self.late: list[tuple[int, SignalRequest]] = []
        self.step_index = 0
        # The log lines go to the tap; Powertools' own stdout handler is muted (thousands of JSON lines)
        # and nothing propagates to the root logger (pytest would keep every record for its report).
        # Any other handler on the connector's logger (the suite's log privacy scanner) still sees all.
        std = logging.getLogger(LOGGER_NAME)
        tap = LogTap()
        mute = logging.Filter("--nothing--")
        stdout_handler = powertools_logger.registered_handler
        saved_propagate = std.propagate
        stdout_handler.addFilter(mute)
        std.addHandler(tap)
        std.propagate = False
        patch = Patcher()
        stats = DrainStats()
        pollers = [threading.Thread(target=self.poll, args=(stats,), name=f"ledger-retry-{n}", daemon=True)
                   for n in range(config.retry_workers)]
        ticker = threading.Thread(target=chaos.tick, args=(self.stop_pollers, config.chaos_tick),
                                  name="ledger-chaos", daemon=True)
        try:
            self.install(patch)
            for thread in pollers:
                thread.start()
            ticker.start()
            slots = threading.Semaphore(config.signal_workers)
            futures = []

            def submit(pool: ThreadPoolExecutor, request: SignalRequest, copy: str) -> None:
                slots.acquire()

                def job() -> None:
                    try:
                        self.send(request, copy)
                    finally:
                        slots.release()
                futures.append(pool.submit(job))

            with ThreadPoolExecutor(max_workers=config.signal_workers + 2, thread_name_prefix="ledger-signal") as pool:
                for request in seen.requests:
                    self.step_index = request.index
                    chaos.step(request.index)
                    with self.lock:
                        due = [r for at, r in self.late if at <= request.index]
                        self.late = [(at, r) for at, r in self.late if at > request.index]
                    for again in due:
                        seen.signal["re-sent after 2xx"] += 1
                        submit(pool, again, "re-send of 2xx")
                    submit(pool, request, "original")
                    if len(request.message_ids) <= 10 and chaos.roll("signal_concurrent_copy"):
                        seen.signal["concurrent copies"] += 1
                        submit(pool, request, "concurrent copy")
                for future in futures:
                    future.result()
                with self.lock:
                    leftover, self.late = [r for _, r in self.late], []
                for again in leftover:
                    seen.signal["re-sent after 2xx"] += 1
                    submit(pool, again, "re-send of 2xx")
                for future in futures:
                    future.result()
            seen.signal["requests"] = len(seen.requests)
            # Faults keep coming for a while: an outage or a rate-limit storm under way runs its course.
            tail_ends = time.monotonic() + config.chaos_tail_seconds
            while time.monotonic() < tail_ends or ((chaos.outage_active or chaos.storm_active)
                                                   and time.monotonic() < tail_ends + 20):
                time.sleep(0.1)
            chaos.calm()
            ends = time.monotonic() + config.drain_timeout
            quiet = 0
            while time.monotonic() < ends and quiet < 3:
                quiet = quiet + 1 if sum(self.pending().values()) == 0 else 0
                time.sleep(0.3)
        finally:
            chaos.calm()
            self.stop_pollers.set()
            for thread in [*pollers, ticker]:
                if thread.is_alive():
                    thread.join(timeout=90)
            patch.undo()
            std.removeHandler(tap)
            stdout_handler.removeFilter(mute)
            std.propagate = saved_propagate
        seen.retry["records received"] = stats.records
        seen.retry["records returned"] = stats.failures
        seen.pending_at_end = self.pending()
        seen.logs = tap.records
        seen.dlq = read_queue(self.sqs, self.resources.dlq_url)
        seen.contacts = self.sandbox.contacts(include_deleted=True)
        seen.sandbox_requests = self.sandbox.requests()
        seen.armed, seen.injected = chaos.armed, chaos.injected
        seen.elapsed = time.monotonic() - started
        return seen


def read_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message of a queue (received and left hidden for the rest of the run)."""
    found: list[dict[str, Any]] = []
    empty = 0
    while empty < 2:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                       AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            empty += 1
            continue
        for message in messages:
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = None
            found.append({"body": body, "raw": message["Body"],
                          "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0))})
    return found


# ---------------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------------
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


def reconcile(seen: Observed) -> LedgerReport:
    planned = seen.planned
    problems: dict[str, list[str]] = {name: [] for name in (
        "lost", "contradictory", "unexpected", "refused to the end", "stuck", "created twice",
        "phantom success", "dropped but called Freshdesk", "rejected but not parked", "parked without its error",
        "unreadable in the DLQ", "unknown messageId", "handler raised", "vacuous run")}
    states: dict[str, set[tuple[str, str]]] = defaultdict(set)
    accepted: set[str] = set()
    refused: set[str] = set()
    rejected_logged: dict[str, int] = Counter()
    successes: Counter[str] = Counter()
    absorbed: Counter[str] = Counter()
    retry_outcomes: Counter[str] = Counter()
    unknown: set[str] = set()

    def note_unknown(mid: Any) -> None:
        if mid not in planned:
            unknown.add(str(mid))

    # 1. Webhook answers as Signal received them.
    duplicate_answers = 0
    for record in seen.answers:
        if record["status"] is None or record["status"] >= 500:
            refused.update(record["message_ids"])
        for result in record["results"]:
            mid = result.get("messageId")
            note_unknown(mid)
            if result.get("outcome") not in NON_EVENT_OUTCOMES:
                accepted.add(mid)
            if result.get("duplicate"):
                duplicate_answers += 1
    # 2. The functions' log lines.
    for line in seen.logs:
        if line["message"] not in ("event processed", "retry processed"):
            continue
        mid, outcome, reason = line.get("messageId"), line.get("outcome"), line.get("reason") or ""
        note_unknown(mid)
        side = "ingest" if line["message"] == "event processed" else "retry"
        if side == "retry":
            retry_outcomes[outcome if not line.get("duplicate") else f"{outcome} ({reason}, duplicate)"] += 1
        if line.get("duplicate"):
            absorbed[f"{side}: {reason or 'answered from the idempotency record'}"] += 1
            if side == "ingest" and outcome not in NON_EVENT_OUTCOMES:
                accepted.add(mid)
            continue
        if side == "ingest" and outcome not in NON_EVENT_OUTCOMES:
            accepted.add(mid)
        if outcome in SUCCESS:
            states[mid].add(("success", outcome))
            successes[mid] += 1
        elif outcome == "dropped":
            states[mid].add(("dropped", reason))
        elif outcome == "rejected":
            rejected_logged[mid] += 1
    # 3. The DLQ.
    parked_count: Counter[str] = Counter()
    parked_kinds: Counter[str] = Counter()
    for message in seen.dlq:
        body = message["body"]
        if not isinstance(body, dict) or body.get("outcome") == "unreadable" or not body.get("messageId"):
            problems["unreadable in the DLQ"].append(str(message["raw"])[:120])
            continue
        mid, outcome = body["messageId"], body.get("outcome")
        note_unknown(mid)
        kind = "redriven" if outcome == "queued" else str(outcome)
        states[mid].add(("parked", kind))
        parked_count[mid] += 1
        parked_kinds[kind] += 1
        error = body.get("last_error") or {}
        rejected_without = kind == "rejected" and not (isinstance(error.get("status"), int)
                                                       and error.get("body") is not None)
        exhausted_without = kind == "exhausted" and not (error.get("reason") or error.get("status"))
        if rejected_without or exhausted_without:
            problems["parked without its error"].append(f"{mid}: {error}")
        elif kind not in ("rejected", "exhausted", "redriven"):
            problems["parked without its error"].append(f"{mid}: outcome {outcome!r}")
    for mid, count in rejected_logged.items():
        if not parked_count[mid]:
            problems["rejected but not parked"].append(mid)

    # 4. Freshdesk, as the connector called it and as the sandbox holds it.
    created: Counter[str] = Counter()
    blind: set[str] = set()
    called: set[str] = set()
    answered: dict[str, set[int]] = defaultdict(set)
    for call in seen.calls:
        mid = call["messageId"]
        if mid:
            called.add(mid)
            if call["status"] is not None:
                answered[mid].add(call["status"])
        if call["method"] == "POST" and call["path"] == "/api/v2/contacts":
            if call["status"] == 201:
                created[mid] += 1
            elif call["status"] is None:
                blind.add(mid)
    for kill in seen.kills:
        if kill["attempted"]:
            blind.add(kill["messageId"])
    for mid, count in created.items():
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
    person_events: dict[str, list[str]] = defaultdict(list)
    for mid, item in planned.items():
        if item.person is not None:
            person_events[item.person.key].append(mid)
    # Freshdesk does not refuse a second contact with the same phone: the connector looks a phone-only
    # contact up before creating it (37b09f4), so each phone-only person (one event each) is one contact.
    phone_people = {p.phone: p for p in seen.persons if p.phone_only}
    for phone, ids in by_phone.items():
        if len(ids) < 2:
            continue
        person = phone_people.get(phone)
        mids = person_events.get(person.key, []) if person else []
        lost_answer = "after a create whose answer was lost" if any(mid in blind for mid in mids) else \
            "with no lost answer"
        problems["created twice"].append(f"{mids[0] if mids else phone[:6] + '...'}: {len(ids)} contacts {ids} "
                                         f"for one phone-only person, {lost_answer}")

    # 5. Event by event.
    classes_of = {"success": "success", "dropped": "dropped", "parked": "parked"}
    for mid, item in planned.items():
        found = states.get(mid, set())
        if mid not in accepted:
            if found:
                accepted.add(mid)  # secured in an invocation whose answer was lost
            else:
                problems["refused to the end"].append(f"{mid} ({item.kind})")
                continue
        if not found:
            problems["lost"].append(f"{mid} ({item.kind}): accepted, no terminal state")
            continue
        classes = {classes_of[c] for c, _ in found}
        drop_reasons = {r for c, r in found if c == "dropped"}
        if len(classes) > 1 or len(drop_reasons) > 1:
            problems["contradictory"].append(f"{mid} ({item.kind}): {sorted(found)}")
            continue
        (cls,) = classes
        if item.expect.startswith("drop:"):
            if cls != "dropped" or drop_reasons != {item.expect[5:]}:
                problems["unexpected"].append(f"{mid} ({item.kind}) expected {item.expect}: {sorted(found)}")
        elif item.expect == "park":
            if cls != "parked":
                problems["unexpected"].append(f"{mid} ({item.kind}) expected parked: {sorted(found)}")
        elif cls == "dropped" or any(c == "parked" and k == "rejected" for c, k in found):
            problems["unexpected"].append(f"{mid} ({item.kind}) expected delivery: {sorted(found)}")
        if cls == "dropped" and mid in called:
            problems["dropped but called Freshdesk"].append(f"{mid} ({item.kind})")
        # Each success outcome must rest on a Freshdesk answer to this event: 201 (or a 2xx), 200 to the
        # update, 409 (or 200 to a lookup that found the contact).
        backing = {"delivered": {201, 200}, "updated": {200}, "conflict": {409, 200}}
        for c, outcome in found:
            if c == "success" and not backing[outcome] & answered.get(mid, set()):
                problems["phantom success"].append(f"{mid} ({item.kind}): {outcome} without such an answer "
                                                   f"from Freshdesk (answers: {sorted(answered.get(mid, ()))})")
        if cls == "success" and item.person is not None and not item.person.tainted:
            person = item.person
            if not any((person.email and c.get("email") == person.email)
                       or (person.user_id and c.get("unique_external_id") == person.user_id)
                       or (person.phone_only and c.get("phone") == person.phone) for c in seen.contacts):
                problems["phantom success"].append(f"{mid} ({item.kind}): no contact holds its identifiers")
    problems["unknown messageId"].extend(sorted(unknown))
    problems["handler raised"].extend(seen.handler_errors)
    # A run in which the faults (or a setting) kept Freshdesk from being reached proves nothing.
    deliverable = [mid for mid, item in planned.items() if item.expect == "deliver"]
    delivered = [mid for mid in deliverable if any(c == "success" for c, _ in states.get(mid, ()))]
    if deliverable and len(delivered) < len(deliverable) / 4:
        problems["vacuous run"].append(f"only {len(delivered)} of {len(deliverable)} deliverable events reached "
                                       "Freshdesk: the run did not exercise delivery")
    meant = sum(1 for item in planned.values() if item.expect == "park")
    if meant >= 3 and not any(("parked", "rejected") in found for found in states.values()):
        problems["vacuous run"].append(f"none of the {meant} events Freshdesk refuses was parked as rejected")
    if sum(seen.pending_at_end.values()):
        problems["stuck"].append(f"retry queue at the end: {seen.pending_at_end}")

    tally = format_tally(seen, states, accepted, refused, successes, parked_count, parked_kinds, absorbed,
                         duplicate_answers, retry_outcomes, created, blind, problems)
    return LedgerReport(seen.config.seed, len(planned), dict(states), problems, tally)


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


def format_tally(seen: Observed, states, accepted, refused, successes, parked_count, parked_kinds, absorbed,
                 duplicate_answers, retry_outcomes, created, blind, problems) -> str:
    planned = seen.planned
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
        (f"ledger: seed {config.seed} (LEDGER_SEED={config.seed} LEDGER_EVENTS={config.events}), "
         f"{len(planned)} events in {len(seen.requests)} requests ({sizes.count(1)} single, "
         f"{len(sizes) - sizes.count(1)} batches, largest {max(sizes) if sizes else 0}), {seen.elapsed:.1f} s"),
        f"  stream: {_counter_text(kinds, [k for k, _ in KINDS])}",
        (f"  accepted {len(accepted & set(planned))}/{len(planned)}; refused with 5xx or no answer at least "
         f"once: {len(refused & set(planned))} events (all re-sent by Signal)"),
        f"  terminal states: {_counter_text(by_state, order)}",
        f"    dropped by reason: {_counter_text(drops)}",
        (f"    parked: {_counter_text(parked_kinds)} ({len(parked_count)} events; "
         f"parked more than once: {sum(1 for c in parked_count.values() if c > 1)})"),
        (f"    events with more than one success result (repeat deliveries): "
         f"{sum(1 for c in successes.values() if c > 1)}"),
        f"  retry function: {_counter_text(seen.retry)}",
        f"    retry outcomes: {_counter_text(retry_outcomes)}",
        f"  injected (armed at the sandbox): {_counter_text(seen.armed)}",
        f"  injected (in process): {_counter_text(seen.injected)}",
        f"  observed at Freshdesk: {_counter_text(observed_faults)}",
        (f"  Freshdesk calls: {total_calls} ({_counter_text(methods)}); by status: {_counter_text(statuses)}; "
         f"creations answered 201: {sum(created.values())}; contacts in the sandbox: {len(seen.contacts)}"),
        f"  queue sends: {_counter_text(seen.sends)}; DLQ messages: {len(seen.dlq)}",
        f"  Signal: {_counter_text(seen.signal)}",
        (f"  duplicates absorbed: {duplicate_answers} webhook answers from the idempotency record; "
         f"{_counter_text(absorbed)}"),
        f"  events with a Freshdesk answer lost (timeout, dropped connection, kill after the call): {len(blind)}",
        f"  problems: {problem_count}" + (f" -> {problems_text}" if problem_count else ""),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------
def run_ledger(config: LedgerConfig, *, resources: Any, sandbox: Any, sqs_client: Any) -> tuple[LedgerReport, Observed]:
    """Run with the functions' environment already set (the stack's resources + LEDGER_ENV) and the
    runtime reset. Returns the report and what was observed."""
    seen = Run(config, resources=resources, sandbox=sandbox, sqs_client=sqs_client).execute()
    return reconcile(seen), seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m signal_freshdesk_dev.ledger",
                                     description="Push a large faulty stream through the handlers and "
                                                 "account for every event.")
    parser.add_argument("--events", type=int, default=int(os.environ.get("LEDGER_EVENTS") or 1000))
    parser.add_argument("--seed", type=int, default=None, help="default: LEDGER_SEED, else random (printed)")
    args = parser.parse_args(argv)

    import boto3
    from signal_freshdesk.runtime import reset_runtime

    from .local_aws import REGION, LocalAws, local_secret, provision
    from .sandbox import FreshdeskSandbox

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto server's access log
    env = dict(os.environ)
    if args.seed is not None:
        env["LEDGER_SEED"] = str(args.seed)
    env["LEDGER_EVENTS"] = str(args.events)
    config = LedgerConfig.from_env(env)
    print(f"ledger: {config.events} events, seed {config.seed}", flush=True)
    saved = dict(os.environ)
    try:
        with LocalAws() as aws, FreshdeskSandbox(api_key="sandbox-api-key") as sandbox:
            os.environ.update(aws.environment())
            resources = provision(local_secret(api_key="sandbox-api-key"), endpoint_url=aws.endpoint_url,
                                  visibility_timeout=2, name=f"ledger{uuid.uuid4().hex[:8]}")
            os.environ.update(resources.environment(freshdesk_base_url=sandbox.base_url, **LEDGER_ENV))
            reset_runtime()
            sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws.endpoint_url)
            # Powertools prints a metric set once a metric holds 100 values, even with metrics disabled.
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                report, _ = run_ledger(config, resources=resources, sandbox=sandbox, sqs_client=sqs)
            reset_runtime()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    print(report.tally)
    if not report.ok:
        print(report.failure_text(), file=sys.stderr)
        return 1
    print("every accepted event is accounted for")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
