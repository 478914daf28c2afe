"""The mapping figure: Freshdesk calls and handler time per event through the ten-field example mapping
with companies (docs/mapping.example.json), against the Default preset, both with the identity map on (the
template default), in the same run, against the same contacts agents made before the connector saw them.

The custom mapping's stream is the calls stream again (build_stream: the same people, kinds and order, with
ids of its own), each person's events carrying the traits the example mapping fills (plan, seats, beta,
trial end, region, account manager, first source, mobile, language, time zone) and naming the company the
person works for, one of MAPPING_COMPANIES: by `traits.company` (a name, or an object with a name), by
`context.groupId`, or both. A returning person's change sometimes brings a new plan or seat count too.
Group events describing the companies (name, website, industry, plan, description) are spread evenly over
the stream: a company's first one creates it (or completes the company a person's event created by name), a
later one repeats it or, now and then, brings a new plan. The sandbox declares the mapping's custom contact
fields with their types and dropdown choices (as `make check --sandbox` does), so no field is refused.

Before each of the two runs, the sandbox gets the contacts agents made for MAPPING_EXISTING_SHARE of the
stream's people (their first event is then of kind `first_existing`): name and email, half of them with the
user id as unique_external_id, and half of them with a mobile and an account manager of the agent's own,
which the mapping's `if_empty` rules must leave alone. The baseline is the Default preset over the calls
stream with the same contacts made beforehand, run here; `calls_per_event` stays the calls figure's
identity-map path without them (run here first when the calls figure did not run). The `GET
/contacts/{id}` reads of contacts the identity map knew (not right after a create's 409, which either
mapping makes) that the mapping makes beyond the baseline's are those `if_empty` costs; after the run, every
value an agent entered is checked to be still there (RuntimeError otherwise).

Handler time is the ingest handler's wall time over all its invocations, divided by the events: what
Signal waits for per event, DynamoDB (moto) and sandbox round trips included. The retry function's time is
reported beside it. Figures only: nothing here has a target.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from signal_freshdesk.core.outcomes import has_value
from signal_freshdesk.core.rules import mapping_from

from ..check import sandbox_fields
from .calls import STREAM_START, build_stream, run_path, run_stream_path, run_tag, timestamp_text
from .measure import log
from .model import (
    CALLS_EVENTS,
    CALLS_PEOPLE,
    CALLS_SEED,
    MAPPING_COMPANIES,
    MAPPING_EXISTING_SHARE,
    MAPPING_FILE,
    MAPPING_GROUP_CHANGE_SHARE,
    MAPPING_GROUP_SHARE,
    Figures,
)
from .services import BenchServices

# (group id stem, name, website or domain, industry); ids and names get the run's tag (see build_stream)
COMPANIES = (
    ("northwind", "Northwind Traders", "https://www.northwind.example", "Retail"),
    ("globex", "Globex Corporation", "globex.example", "Manufacturing"),
    ("initech", "Initech", "https://initech.example/about", "Software"),
    ("umbrella", "Umbrella Health", "umbrella-health.example", "Healthcare"),
)
PLANS = ("free", "starter", "pro", "enterprise")
REGIONS = ("uk", "eu", "us", "apac")
MANAGERS = ("Tom Baker", "Asha Patel", "Lena Fischer")
SOURCES = ("google", "newsletter", "linkedin", "partner")
LANGUAGES = ("en-GB", "en-US", "fr-FR", "de-DE")
TIME_ZONES = ("London", "Paris", "Berlin", "Eastern Time (US & Canada)")
# How a person's events name their company: traits.company as a name or as {"name"}, context.groupId, both.
NAMING = ("name", "object", "group", "both")
PERSON_TRAITS = (
    "plan",
    "seats",
    "beta",
    "trial_ends_at",
    "region",
    "account_manager",
    "utm_source",
    "mobile",
    "language",
    "time_zone",
)
GROUP_KINDS = ("group_first", "group_change", "group_same")
# The example mapping's if_empty fields, and the account managers agents entered there (not the events').
IF_EMPTY_TARGETS = ("mobile", "custom_fields.account_manager")
AGENT_MANAGERS = ("Priya Raman", "Sam Okoye")


# -- the stream ------------------------------------------------------------------------------------------------
def group_events(events: int) -> int:
    """How many group events the stream adds: at least one per company."""
    return max(MAPPING_COMPANIES, round(events * MAPPING_GROUP_SHARE))


def build_mapping_stream(events: int, people: int, seed: int, tag: str) -> list[dict[str, Any]]:
    """The calls stream with the example mapping's traits and companies, and group events spread over it:
    [{"kind", "person", "event"}], kinds first, change, same and group_first, group_change, group_same."""
    rng = random.Random(seed + 2)
    companies = [
        {
            "group_id": f"grp_{stem}_{tag}",
            "name": f"{name} {tag}",
            "website": website,
            "industry": industry,
            "plan": rng.choice(PLANS),
            "seen": 0,
        }
        for stem, name, website, industry in COMPANIES[:MAPPING_COMPANIES]
    ]
    extras: dict[int, dict[str, Any]] = {}
    base = build_stream(events, people, seed, tag)
    for entry in base:
        person = entry["person"]
        if entry["kind"] == "first":
            extras[person] = person_traits(person, rng)
        elif entry["kind"] == "change" and rng.random() < 1 / 3:
            traits = extras[person]
            if rng.random() < 0.5:
                traits["plan"] = rng.choice([p for p in PLANS if p != traits["plan"]])
            else:
                traits["seats"] += rng.randint(1, 10)
        add_traits(entry["event"], extras[person], companies[extras[person]["company"]])
    total = group_events(events)
    spacing = len(base) / total
    stream: list[dict[str, Any]] = []
    added = 0
    for index, entry in enumerate(base):
        while added < total and index >= added * spacing:
            stream.append(group_entry(tag, added, companies[added % len(companies)], rng))
            added += 1
        stream.append(entry)
    for index, entry in enumerate(stream):  # one clock for the whole stream, person and group events alike
        entry["event"]["timestamp"] = timestamp_text(STREAM_START + timedelta(seconds=index * 7.5))
    return stream


def person_traits(person: int, rng: random.Random) -> dict[str, Any]:
    return {
        "company": rng.randrange(MAPPING_COMPANIES),
        "naming": rng.choice(NAMING),
        "plan": rng.choice(PLANS),
        "seats": rng.randint(1, 60),
        "beta": rng.random() < 0.3,
        "trial_ends_at": (date(2026, 12, 1) + timedelta(days=rng.randrange(60))).isoformat(),
        "region": rng.choice(REGIONS),
        "account_manager": rng.choice(MANAGERS),
        "utm_source": rng.choice(SOURCES),
        "mobile": f"+44 7700 900{person % 1000:03d}",
        "language": rng.choice(LANGUAGES),
        "time_zone": rng.choice(TIME_ZONES),
    }


def add_traits(event: dict[str, Any], traits: dict[str, Any], company: dict[str, Any]) -> None:
    """Put the person's traits where the event has its others (top level, or context for a track call),
    and name their company."""
    target = event["traits"] if "traits" in event else event["context"]["traits"]
    target.update({key: traits[key] for key in PERSON_TRAITS})
    naming = traits["naming"]
    if naming == "name":
        target["company"] = company["name"]
    elif naming in ("object", "both"):
        target["company"] = {"name": company["name"]}
    if naming in ("group", "both"):
        event["context"]["groupId"] = company["group_id"]


def group_entry(tag: str, index: int, company: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    if company["seen"] == 0:
        kind = "group_first"
    elif rng.random() < MAPPING_GROUP_CHANGE_SHARE:
        kind = "group_change"
        company["plan"] = rng.choice([p for p in PLANS if p != company["plan"]])
    else:
        kind = "group_same"
    company["seen"] += 1
    event = {
        "type": "group",
        "groupId": company["group_id"],
        "traits": {
            "name": company["name"],
            "website": company["website"],
            "industry": company["industry"],
            "plan": company["plan"],
            "description": f"Customer since 2024 ({company['industry']})",
        },
        "userId": f"usr_{tag}_admin",
        "anonymousId": f"anon_{tag}_admin",
        "context": {"locale": "en-GB", "ip": "203.0.113.42", "userAgent": "Mozilla/5.0"},
        "timestamp": "",
        "messageId": f"group-{tag}-{index:04d}",
    }
    return {"kind": kind, "person": None, "event": event}


# -- contacts agents made ------------------------------------------------------------------------------------
def existing_people(people: int, seed: int) -> list[int]:
    """The people whose contact an agent made before the connector saw them (MAPPING_EXISTING_SHARE)."""
    rng = random.Random(seed + 3)
    return sorted(rng.sample(range(people), round(people * MAPPING_EXISTING_SHARE)))


def mark_existing(stream: list[dict[str, Any]], existing: list[int]) -> list[dict[str, Any]]:
    """The stream with the first event of each of these people of kind `first_existing`."""
    marked = set(existing)
    return [
        {**entry, "kind": "first_existing"} if entry["kind"] == "first" and entry["person"] in marked else entry
        for entry in stream
    ]


def existing_contacts(stream: list[dict[str, Any]], existing: list[int]) -> list[dict[str, Any]]:
    """The contacts agents made for these people of the stream, as the sandbox stores them (seed_contact):
    the name and email of the person's first event; every other one also their user id as
    unique_external_id (the others have none); and every other pair a mobile and an account manager an
    agent entered, different from the events' (the example mapping's if_empty fields)."""
    first: dict[int, dict[str, Any]] = {}
    for entry in stream:
        if entry["person"] is not None:
            first.setdefault(entry["person"], entry["event"])
    contacts = []
    for index, person in enumerate(existing):
        event = first[person]
        traits = event["traits"] if "traits" in event else event["context"]["traits"]
        contact: dict[str, Any] = {
            "name": traits.get("name") or f"{traits['first_name']} {traits['last_name']}",
            "email": traits["email"],
        }
        if index % 2 == 0:
            contact["unique_external_id"] = event["userId"]
        if index % 4 < 2:
            contact["mobile"] = f"+44 20 7946 0{person % 1000:03d}"
            contact["custom_fields"] = {"account_manager": AGENT_MANAGERS[index % len(AGENT_MANAGERS)]}
        contacts.append(contact)
    return contacts


def value_at(contact: dict[str, Any] | None, target: str) -> Any:
    """A contact's value in a mapping target (`mobile`, `custom_fields.account_manager`)."""
    if contact is None:
        return None
    if target.startswith("custom_fields."):
        return (contact.get("custom_fields") or {}).get(target.removeprefix("custom_fields."))
    return contact.get(target)


def agent_values(seeded: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run left of the if_empty fields of the contacts agents made (calls.run_stream_path's
    "seeded"): the values an agent entered, kept or overwritten, and the empty ones the events filled."""
    kept, filled, empty = 0, 0, 0
    overwritten = []
    for pair in seeded:
        before, after = pair["before"], pair["after"]
        for target in IF_EMPTY_TARGETS:
            if has_value(before, target):
                if value_at(after, target) == value_at(before, target):
                    kept += 1
                else:
                    overwritten.append(
                        f"contact {before['id']} {target}: {value_at(before, target)!r} became "
                        f"{value_at(after, target)!r}"
                    )
            elif after is not None and has_value(after, target):
                filled += 1
            else:
                empty += 1
    return {
        "entered": kept + len(overwritten),
        "kept": kept,
        "overwritten": overwritten,
        "filled": filled,
        "empty": empty,
    }


# -- the run ---------------------------------------------------------------------------------------------------
def measure_mapping(services: BenchServices, figures: Figures, *, events: int = CALLS_EVENTS) -> None:
    people = round(events * CALLS_PEOPLE / CALLS_EVENTS)
    calls = figures.details.get("calls")
    reused = calls is not None and calls["events"] == events
    if calls is not None and reused:
        unseeded = calls["paths"]["map"]
    else:
        unseeded = run_path(services, events=events, people=people, identity_map=True)
    types, choices = sandbox_fields(mapping_from(MAPPING_FILE))
    services.call("custom_fields", types, choices)
    existing = existing_people(people, CALLS_SEED)
    tag = run_tag("d")
    base = mark_existing(build_stream(events, people, CALLS_SEED, tag), existing)
    log(
        f"mapping baseline (Default preset, identity map on): {events} identified events of {people} people, "
        f"{len(existing)} of whom have a contact an agent made ..."
    )
    default = run_stream_path(
        services, base, tag=tag, identity_map=True, seed=existing_contacts(base, existing), MAPPING_FILE="default"
    )
    tag = run_tag("c")
    stream = mark_existing(build_mapping_stream(events, people, CALLS_SEED, tag), existing)
    log(
        f"mapping ({MAPPING_FILE.name}, companies, identity map on): {events} identified events of {people} "
        f"people naming {MAPPING_COMPANIES} companies, {len(existing)} with a contact an agent made, and "
        f"{len(stream) - events} group events ..."
    )
    custom = run_stream_path(
        services,
        stream,
        tag=tag,
        identity_map=True,
        seed=existing_contacts(stream, existing),
        MAPPING_FILE=str(MAPPING_FILE),
    )
    fields = {**types, **{name: "custom_dropdown" for name in choices}}
    record_mapping(figures, stream, default, custom, unseeded, fields=fields, unseeded_from_calls=reused)


def record_mapping(
    figures: Figures,
    stream: list[dict[str, Any]],
    default: dict[str, Any],
    custom: dict[str, Any],
    unseeded: dict[str, Any],
    *,
    fields: dict[str, str],
    unseeded_from_calls: bool,
) -> None:
    """The figures of the paths (calls.summarise of each), for the table, the BENCH line and results.md:
    `default` and `custom` ran the Default preset and the example mapping against the same contacts agents
    made; `unseeded` is the Default preset without them (the calls figure's path, calls_per_event).

    Raises RuntimeError when a run overwrote a value an agent entered in an if_empty field."""
    kinds: dict[str, int] = {}
    for entry in stream:
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    existing = {
        key: agent_values(path.get("seeded", [])) | {"contacts": len(path.get("seeded", []))}
        for key, path in (("default", default), ("mapping", custom))
    }
    seeded = existing["mapping"]["contacts"]
    # The reads of contacts the map knew, beyond the Default preset's: a read after a create's 409 is made
    # under either mapping, and again for an event a 429 sent back before the map learnt its contact.
    if_empty_reads = custom["contact_reads_known"] - default["contact_reads_known"]
    figures.details["mapping"] = {
        "events": len(stream),
        "identified_events": sum(1 for entry in stream if entry["person"] is not None),
        "people": len({entry["person"] for entry in stream if entry["person"] is not None}),
        "companies": len({entry["event"]["groupId"] for entry in stream if entry["person"] is None}),
        "kinds": kinds,
        "custom_fields": fields,
        "unseeded_from_calls": unseeded_from_calls,
        "existing": existing,
        "existing_with_external_id": sum(
            1 for pair in custom.get("seeded", []) if pair["before"].get("unique_external_id")
        ),
        "existing_with_agent_values": sum(
            1
            for pair in custom.get("seeded", [])
            if any(has_value(pair["before"], target) for target in IF_EMPTY_TARGETS)
        ),
        "if_empty_reads": if_empty_reads,
        "paths": {"unseeded": unseeded, "default": default, "mapping": custom},
    }
    values = figures.values
    values.setdefault("calls_per_event", unseeded["calls_per_event"])
    values["calls_per_event_mapping"] = custom["calls_per_event"]
    values["mapping_calls_ratio"] = custom["calls_per_event"] / default["calls_per_event"]
    values["default_ms_per_event"] = default["ms_per_event"]
    values["mapping_ms_per_event"] = custom["ms_per_event"]
    values["mapping_ms_ratio"] = custom["ms_per_event"] / default["ms_per_event"]
    values["mapping_cpu_ratio"] = custom["cpu_ms_per_event"] / default["cpu_ms_per_event"]
    values["wasted_429_mapping"] = custom["by_status"].get("429", 0)
    values["seeded_contacts"] = seeded
    values["contact_reads_mapping"] = custom["contact_reads"]
    values["contact_reads_default"] = default["contact_reads"]
    values["if_empty_reads"] = if_empty_reads
    values["if_empty_reads_per_seeded"] = if_empty_reads / seeded if seeded else 0.0
    values["agent_values_kept"] = existing["mapping"]["kept"]
    overwritten = [f"{key}: {line}" for key, row in existing.items() for line in row["overwritten"]]
    if overwritten:
        raise RuntimeError(
            f"mapping: {len(overwritten)} values agents entered in if_empty fields were overwritten:\n"
            + "\n".join(overwritten[:20])
        )
