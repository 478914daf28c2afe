"""Fuzzing the mapping: any file is loaded or refused with a MappingError, and any event maps to bodies
Freshdesk accepts, the same for the event as for what the retry queue keeps of it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signal_freshdesk.core.envelope import slim_event
from signal_freshdesk.core.mapping import plan_event
from signal_freshdesk.core.model import PlannedCompany, PlannedContact
from signal_freshdesk.core.rules import DEFAULT_MAPPING, ContactMapping, MappingError, mapping_from, parse_mapping

EXAMPLE_PATH = Path(__file__).resolve().parents[2] / "docs" / "mapping.example.json"
EXAMPLE = mapping_from(EXAMPLE_PATH)
EXAMPLE_DOCUMENT = json.loads(EXAMPLE_PATH.read_text())
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["pro", " PRO ", "uk", "yes", "12", "2027-01-15", "07700 900123", "a@b.example", "\x00", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values)
def test_any_json_document_is_a_mapping_or_a_mapping_error(document):
    try:
        parse_mapping(json.dumps(document), "fuzz.json", base=DEFAULT_MAPPING)
    except MappingError as exc:
        assert str(exc).startswith("fuzz.json")


# A valid file with one part replaced by anything: the loader never fails any other way.
_PLACES = [
    ("extends",),
    ("events",),
    ("events", 0),
    ("events", 0, "action"),
    ("fields",),
    ("fields", 0),
    ("fields", 1, "convert"),
    ("fields", 1, "convert", "table"),
    ("fields", 2, "source"),
    ("fields", 3, "policy"),
    ("fields", 4, "on"),
    ("companies",),
    ("companies", "fields", 0, "target"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(_PLACES), value=json_values)
def test_the_example_with_any_part_replaced_is_a_mapping_or_a_mapping_error(place, value):
    document = json.loads(json.dumps(EXAMPLE_DOCUMENT))
    target: Any = document
    for step in place[:-1]:
        target = target[step]
    target[place[-1]] = value
    try:
        mapping = parse_mapping(json.dumps(document, indent=1), "fuzz.json", base=DEFAULT_MAPPING)
    except MappingError as exc:
        assert re.match(r"^fuzz\.json( line \d+)?", str(exc)), exc
    else:
        assert isinstance(mapping, ContactMapping)


TRAIT_NAMES = (
    *("name", "email", "phone", "mobile", "plan", "seats", "beta", "trial_ends_at", "region", "account_manager"),
    *("utm_source", "language", "time_zone", "company", "industry", "website", "title", "company_id", "user_id"),
)
trait_names = st.sampled_from(TRAIT_NAMES)
traits = st.dictionaries(trait_names, json_values, max_size=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["identify", "track", "group", "page"]),
    name=st.sampled_from(["Signed Up", "Identified", "Trial Started", "Plan Changed", "Other", None]),
    top=traits,
    context_traits=traits,
    properties=st.dictionaries(st.sampled_from(["plan", "seats", "trial_ends_at", "method"]), json_values, max_size=3),
    consent=st.sampled_from([True, False, None]),
    group_id=st.one_of(st.none(), st.text(max_size=6), st.integers()),
)
def test_any_event_maps_to_bodies_freshdesk_accepts_and_the_slim_event_maps_alike(
    kind, name, top, context_traits, properties, consent, group_id
):
    event: dict[str, Any] = {
        "type": kind,
        "event": name,
        "messageId": "m",
        "userId": "usr-1",
        "timestamp": "2026-11-30T10:00:00Z",
        "traits": top,
        "properties": properties,
        "groupId": group_id,
        "context": {"traits": context_traits, "groupId": group_id, "consent": {"canonical": {"marketing": consent}}},
    }
    for mode in ("require", "tag_only", "off"):
        plan = plan_event(event, consent_mode=mode, allow_withdrawal=True, mapping=EXAMPLE)
        assert plan_event(slim_event(event), consent_mode=mode, allow_withdrawal=True, mapping=EXAMPLE) == plan
        if isinstance(plan, PlannedContact):
            for body in (plan.contact, plan.update):
                _assert_sendable(body)
                custom = body.get("custom_fields", {})
                assert custom.get("plan", "Pro") in ("Free", "Starter", "Pro", "Enterprise", "Other")
                assert isinstance(custom.get("seats", 0), int) and not isinstance(custom.get("seats", 0), bool)
                assert isinstance(custom.get("beta_tester", True), bool)
                assert DATE.match(custom.get("trial_ends", "2027-01-01"))
        elif isinstance(plan, PlannedCompany):
            _assert_sendable(plan.company)
            assert plan.company["name"] and all(isinstance(d, str) and d for d in plan.company.get("domains", []))


def _assert_sendable(body: dict[str, Any]) -> None:
    """Nothing empty, nothing null, texts at most 255 characters: what Freshdesk never refuses for its form."""
    for key, value in body.items():
        if isinstance(value, dict):
            _assert_sendable(value)
            assert value, key
            continue
        assert value is not None and value != "" and value != [], key
        if isinstance(value, str):
            assert len(value) <= 255 and value == value.strip(), key
