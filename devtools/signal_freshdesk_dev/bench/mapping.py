"""The mapping figure: Freshdesk calls and handler time per event through the ten-field example mapping
with companies (docs/mapping.example.json), against the Default preset, both with the identity map on (the
template default), in the same run.

The Default preset's figures are those of the calls figure's identity-map path when it ran in this run
(the same stream size), else that path is run here first. The custom mapping's stream is the calls
stream again (build_stream: the same people, kinds and order, with ids of its own), each person's events
carrying the traits the example mapping fills (plan, seats, beta, trial end, region, account manager, first
source, mobile, language, time zone) and naming the company the person works for, one of
MAPPING_COMPANIES: by `traits.company` (a name, or an object with a name), by `context.groupId`, or both.
A returning person's change sometimes brings a new plan or seat count too. Group events describing the
companies (name, website, industry, plan, description) are spread evenly over the stream: a company's
first one creates it (or completes the company a person's event created by name), a later one repeats it
or, now and then, brings a new plan. The sandbox declares the mapping's custom contact fields with their
types and dropdown choices (as `make check --sandbox` does), so no field is refused.

Handler time is the ingest handler's wall time over all its invocations, divided by the events: what
Signal waits for per event, DynamoDB (moto) and sandbox round trips included. The retry function's time is
reported beside it. Figures only: nothing here has a target.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from signal_freshdesk.core.rules import mapping_from

from ..check import sandbox_fields
from .calls import STREAM_START, build_stream, run_path, run_stream_path, run_tag, timestamp_text
from .measure import log
from .model import (
    CALLS_EVENTS,
    CALLS_PEOPLE,
    CALLS_SEED,
    MAPPING_COMPANIES,
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


# -- the run ---------------------------------------------------------------------------------------------------
def measure_mapping(services: BenchServices, figures: Figures, *, events: int = CALLS_EVENTS) -> None:
    people = round(events * CALLS_PEOPLE / CALLS_EVENTS)
    calls = figures.details.get("calls")
    reused = calls is not None and calls["events"] == events
    if calls is not None and reused:
        default = calls["paths"]["map"]
    else:
        default = run_path(services, events=events, people=people, identity_map=True)
    types, choices = sandbox_fields(mapping_from(MAPPING_FILE))
    services.call("custom_fields", types, choices)
    tag = run_tag("c")
    stream = build_mapping_stream(events, people, CALLS_SEED, tag)
    log(
        f"mapping ({MAPPING_FILE.name}, companies, identity map on): {events} identified events of {people} "
        f"people naming {MAPPING_COMPANIES} companies, and {len(stream) - events} group events ..."
    )
    custom = run_stream_path(services, stream, tag=tag, identity_map=True, MAPPING_FILE=str(MAPPING_FILE))
    fields = {**types, **{name: "custom_dropdown" for name in choices}}
    record_mapping(figures, stream, default, custom, fields=fields, default_from_calls=reused)


def record_mapping(
    figures: Figures,
    stream: list[dict[str, Any]],
    default: dict[str, Any],
    custom: dict[str, Any],
    *,
    fields: dict[str, str],
    default_from_calls: bool,
) -> None:
    """The figures of the two paths (calls.summarise of each), for the table, the BENCH line and results.md."""
    kinds: dict[str, int] = {}
    for entry in stream:
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    figures.details["mapping"] = {
        "events": len(stream),
        "identified_events": sum(1 for entry in stream if entry["person"] is not None),
        "people": len({entry["person"] for entry in stream if entry["person"] is not None}),
        "companies": len({entry["event"]["groupId"] for entry in stream if entry["person"] is None}),
        "kinds": kinds,
        "custom_fields": fields,
        "default_from_calls": default_from_calls,
        "paths": {"default": default, "mapping": custom},
    }
    values = figures.values
    values.setdefault("calls_per_event", default["calls_per_event"])
    values["calls_per_event_mapping"] = custom["calls_per_event"]
    values["mapping_calls_ratio"] = custom["calls_per_event"] / default["calls_per_event"]
    values["default_ms_per_event"] = default["ms_per_event"]
    values["mapping_ms_per_event"] = custom["ms_per_event"]
    values["mapping_ms_ratio"] = custom["ms_per_event"] / default["ms_per_event"]
    values["mapping_cpu_ratio"] = custom["cpu_ms_per_event"] / default["cpu_ms_per_event"]
    values["wasted_429_mapping"] = custom["by_status"].get("429", 0)
