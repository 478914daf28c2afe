"""The ledger's stream: people, the Signal events planned for them (with what each should become),
and the requests Signal sends them in (single events, arrays, {"batch": [...]}).

People come back: a returning person's later events change their name or title (or say no name at
all), some events are older than one already sent for the person (`late`: an older `timestamp` sent
after a newer one, in the same batch or a later request), some withdraw marketing consent (explicit
false). A few people exist in Freshdesk before the run, as agents created them (`Person.seed`: agent
tags, their own unique_external_id, a contact an agent deleted); run.py seeds them in the sandbox.
Every event has an ISO `timestamp`: the stream's clock advances a minute per event.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TIME = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def iso(minute: int) -> str:
    """The stream's clock, `minute` minutes after BASE_TIME, as Signal writes a timestamp."""
    return (BASE_TIME + timedelta(minutes=minute)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    title: str = ""
    # The contact an agent created before the run (sandbox.seed_contact's fields, plus `deleted`), and
    # its id once seeded (run.py); None: the person is new to Freshdesk.
    seed: dict[str, Any] | None = None
    seed_id: int | None = None
    newest: int | None = None  # the newest event minute planned for the person (late events excluded)
    deliverable: int = 0  # how many events planned for the person ask for a contact

    @property
    def agent_deleted(self) -> bool:
        return bool(self.seed and self.seed.get("deleted"))


@dataclass
class Planned:
    message_id: str
    kind: str
    # "deliver", "withdraw" (withdrawn, or dropped consent_denied without a contact), "drop:<reason>", "company"
    expect: str
    event: dict[str, Any]
    person: Person | None = None
    minute: int = 0  # its `timestamp` on the stream's clock
    # What its traits say, as the connector maps them (None: the traits do not say): the name (`name`,
    # else first and last name joined), the title; and its marketing consent (None: missing).
    name: str | None = None
    title: str | None = None
    consent: bool | None = None


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
    ("unsupported", 5),
    ("group", 4),
    ("consent_denied", 6),
    ("consent_missing", 6),
    ("anonymous", 5),
    ("missing_name", 3),
    ("returning", 14),
    ("late", 5),
    ("withdraw", 5),
)
COMPANIES = (("grp_1", "Acme", "acme.example"), ("grp_2", "Globex Corporation", "globex.example"))
FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Frances", "Donald", "Radia", "Tim")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Allen", "Knuth", "Perlman")
TITLES = ("CTO", "Head of Growth", "Engineer", "VP Sales", "Founder")
# What agents put on contacts; one seeded contact already carries our tag in another spelling.
AGENT_TAGS = (("vip",), ("partner", "vip"), ("VIP", "Marketing-Consent"), ("churned",))


class StreamBuilder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.persons: list[Person] = []
        self.phone_persons = 0
        self.clock = 0  # minutes after BASE_TIME of the next event
        self.previous: Person | None = None  # the person of the event planned last

    def seed_people(self, count: int) -> None:
        """People whose contact an agent created before the run, in four shapes, round robin: their own
        unique_external_id (not the user id), none, the user id itself, and a contact the agent deleted."""
        for n in range(count):
            person = self.new_person()
            shape = n % 4
            fields: dict[str, Any] = {
                "name": f"{person.name} (agent)",
                "email": person.email,
                "job_title": "Customer",
                "tags": list(AGENT_TAGS[shape]),
            }
            if shape == 0:
                fields["unique_external_id"] = f"crm-{n:04d}-{self.rng.getrandbits(16):04x}"
            elif shape == 2:
                fields["unique_external_id"] = person.user_id
            if shape == 3:
                fields["deleted"] = True
            person.seed = fields

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
        known = [p for p in self.persons if not p.phone_only and p.seed is None]
        return self.rng.choice(known) if known else None

    def returning(self, seeded_share: float = 0.25) -> Person | None:
        """A person who has asked for a contact before (or an agent created one for)."""
        seeded = [p for p in self.persons if p.seed is not None]
        if seeded and self.rng.random() < seeded_share:
            return self.rng.choice(seeded)
        known = [p for p in self.persons if p.deliverable and not p.phone_only and p.seed is None]
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

    def traits(
        self, person: Person, *, company: Any = None, name: str | None = "", title: str | None = ""
    ) -> dict[str, Any]:
        """`name` / `title`: "" the person's own (a title only sometimes), None none, else that value."""
        traits: dict[str, Any] = {}
        name = person.name if name == "" else name
        if name is not None:
            if self.rng.random() < 0.7 or " " not in name:
                traits["name"] = name
            else:
                first, _, last = name.partition(" ")
                traits.update({"firstName": first, "lastName": last})
        if person.email:
            traits["email"] = person.email.title() if self.rng.random() < 0.2 else person.email
        if person.national_phone:
            traits["phone"] = person.national_phone
        if title == "" and self.rng.random() < 0.2:
            title = person.title = self.rng.choice(TITLES)
        if title:
            traits["title"] = title
        if company is not None:
            traits["company_id"] = company
        elif self.rng.random() < 0.15:
            traits["company_id"] = self.rng.choice((1, 2, 3, "2"))
        return traits

    def event(self, kind: str) -> Planned:
        item = self._event(kind)
        person = item.person
        if item.kind != "late":
            item.minute = self.clock
            self.clock += 1
            if person is not None:
                person.newest = item.minute
        item.event["timestamp"] = iso(item.minute)
        if person is not None and item.expect == "deliver":
            person.deliverable += 1
        traits = item.event.get("traits") or item.event["context"].get("traits") or {}
        first_last = " ".join(t for t in (traits.get("firstName"), traits.get("lastName")) if t)
        item.name = traits.get("name") or first_last or None
        item.title = traits.get("title")
        item.consent = consent_of(item.event)
        self.previous = person
        return item

    def _event(self, kind: str) -> Planned:
        rng = self.rng
        base: dict[str, Any] = {
            "messageId": self._uuid(),
            "anonymousId": f"anon_{rng.getrandbits(32):08x}",
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
            # Freshdesk refuses the unknown company_id with a 400: re-sent without it, delivered.
            person = (self.existing() if rng.random() < 0.3 else None) or self.new_person()
            traits = self.traits(person, company=rng.choice((999, "4242")))
            (signed_up if rng.random() < 0.5 else identify)(person, traits)
            context.update(self.consent(True))
        elif kind == "returning":
            person = self.returning()
            if person is None:
                return self._event("identify")
            draw = rng.random()
            name: str | None = ""
            title: str | None = ""
            if draw < 0.3:  # a new name (married, corrected)
                person.name = f"{rng.choice(FIRST)} {rng.choice(LAST)}-{rng.choice(LAST)}"
            elif draw < 0.5:  # the traits say no name: the contact's name stays
                name = None
            if rng.random() < 0.4:
                title = person.title = rng.choice(TITLES)
            identify(person, self.traits(person, name=name, title=title))
            context.update(self.consent(True))
        elif kind == "late":
            # Older than an event already sent for the person: in the same batch (the previous event's
            # person) or a later request. Its values are old ones: they must never win.
            last = self.previous
            person = (
                last
                if last is not None and last.newest is not None and not last.phone_only and rng.random() < 0.5
                else self.returning(seeded_share=0.1)
            )
            if person is None or person.newest is None:
                return self._event("identify")
            minute = person.newest - rng.randint(1, 90)
            identify(person, self.traits(person, name=f"{person.name} (old)", title="Intern (old)"))
            context.update(self.consent(True))
            return Planned(base["messageId"], kind, expect, base, person, minute=minute)
        elif kind == "withdraw":
            # Marketing consent explicitly false, for a person with a contact (or one on its way).
            person = self.returning(seeded_share=0.3)
            if person is None:
                return self._event("consent_denied")
            identify(person, self.traits(person, name=None if rng.random() < 0.5 else "", title=None))
            context.update(self.consent(False))
            expect = "withdraw"
        elif kind == "page":
            base.update(type=rng.choice(("page", "screen")), name="Pricing", properties={"path": "/pricing"})
            if rng.random() < 0.5 and (known := self.existing()):
                base["userId"] = known.user_id
            context.update(self.consent(True))
            expect = "drop:page_view"
        elif kind == "unsupported":
            base.update(type="track", event=rng.choice(("Order Completed", "Product Viewed")), properties={})
            context.update(self.consent(True))
            expect = "drop:unsupported_event"
        elif kind == "group":
            # Companies: created once, later events update them (domains merged) or change nothing.
            group_id, name, site = rng.choice(COMPANIES)
            traits = {"name": name, "website": site if rng.random() < 0.7 else f"https://www.{site}/about"}
            base.update(type="group", groupId=group_id, traits=traits)
            expect = "company"
        elif kind in ("consent_denied", "consent_missing"):
            person = self.new_person()
            (signed_up if rng.random() < 0.5 else identify)(person, self.traits(person))
            context.update(self.consent(False if kind == "consent_denied" else None))
            # A withdrawal (consent_denied) for a person without a contact: at most one lookup, nothing
            # created. The person may come back later in the stream: retried after that, it is stale, or
            # withdraws consent from the contact made since.
            expect = "withdraw" if kind == "consent_denied" else f"drop:{kind}"
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


def consent_of(event: dict[str, Any]) -> bool | None:
    """The event's marketing consent as the stream wrote it (canonical, else the legacy flat shape)."""
    consent = (event.get("context") or {}).get("consent") or {}
    canonical = consent.get("canonical")
    value = canonical.get("marketing") if isinstance(canonical, dict) else consent.get("marketing")
    return value if isinstance(value, bool) else None


def seeded_people_for(events: int) -> int:
    return max(4, min(24, events // 40))


def build_stream(
    events: int, seed: int, max_batch: int = 100
) -> tuple[dict[str, Planned], list[SignalRequest], list[Person]]:
    rng = random.Random(f"{seed}:stream")
    builder = StreamBuilder(rng)
    builder.seed_people(seeded_people_for(events))
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
