"""The ledger's stream: people, the Signal events planned for them (with what each should become),
and the requests Signal sends them in (single events, arrays, {"batch": [...]})."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any


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


KINDS = (
    ("signed_up", 20),
    ("identify", 13),
    ("identified", 8),
    ("phone_only", 3),
    ("clash", 2),
    ("bad_company", 5),
    ("page", 12),
    ("unsupported", 8),
    ("consent_denied", 6),
    ("consent_missing", 6),
    ("anonymous", 5),
    ("missing_name", 3),
)
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
            person = Person(
                f"p{n}", f"{first} {last}", phone=f"+447700{digits}", national_phone=f"07700 {digits}", phone_only=True
            )
        else:
            tag = self.rng.getrandbits(24)
            person = Person(
                f"p{n}",
                f"{first} {last}",
                email=f"{first}.{last}.{n}.{tag:06x}@example.test".lower(),
                user_id=f"usr_{n:05d}_{tag:06x}",
            )
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
            return {
                "consent": {
                    "categories": {"marketing": granted},
                    "canonical": {"essential": True, "marketing": granted},
                }
            }
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
        base: dict[str, Any] = {
            "messageId": self._uuid(),
            "anonymousId": f"anon_{rng.getrandbits(32):08x}",
            "timestamp": "2026-02-25T14:30:00.000Z",
        }
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
            base.update(
                type="track",
                event=rng.choice(("Signed Up", "signed_up", "signed-up")),
                properties={"method": rng.choice(("email", "google"))} if rng.random() < 0.7 else {},
            )
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
            base.update(type="identify", userId=first.user_id, traits={"name": first.name, "email": second.email})
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


def build_stream(
    events: int, seed: int, max_batch: int = 100
) -> tuple[dict[str, Planned], list[SignalRequest], list[Person]]:
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
        size = (
            1
            if draw < 0.45
            else rng.randint(2, 8)
            if draw < 0.8
            else rng.randint(9, 30)
            if draw < 0.95
            else rng.randint(31, 100)
        )
        size = max(1, min(size, largest, len(order) - position))
        chunk = order[position : position + size]
        position += size
        if size == 1 and rng.random() < 0.9:
            form, payload = "single", chunk[0].event
        elif rng.random() < 0.5:
            form, payload = "array", [p.event for p in chunk]
        else:
            form, payload = "batch", {"batch": [p.event for p in chunk]}
        requests.append(SignalRequest(len(requests), [p.message_id for p in chunk], json.dumps(payload), form))
    return planned, requests, builder.persons
