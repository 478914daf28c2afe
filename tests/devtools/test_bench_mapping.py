"""The benchmark's mapping figure: its stream, what the example mapping makes of it, and how it is reported.

Nothing here runs the benchmark or asserts a timing: the figures below are made up.
"""

from __future__ import annotations

from collections import Counter

import pytest

from signal_freshdesk.core.mapping import plan_event
from signal_freshdesk.core.model import PlannedCompany, PlannedContact
from signal_freshdesk.core.rules import mapping_from
from signal_freshdesk_dev.bench.calls import build_stream, summarise
from signal_freshdesk_dev.bench.child import Timed
from signal_freshdesk_dev.bench.mapping import (
    AGENT_MANAGERS,
    IF_EMPTY_TARGETS,
    agent_values,
    build_mapping_stream,
    existing_contacts,
    existing_people,
    group_events,
    mark_existing,
    record_mapping,
)
from signal_freshdesk_dev.bench.model import CALLS_SEED, MAPPING_COMPANIES, MAPPING_FILE, Figures
from signal_freshdesk_dev.bench.report import bench_line, details_markdown, main_table, plain
from signal_freshdesk_dev.check import sandbox_fields
from signal_freshdesk_dev.sandbox import FreshdeskSandbox

EVENTS, PEOPLE = 300, 90


def stream(tag: str = "t1") -> list[dict]:
    return build_mapping_stream(EVENTS, PEOPLE, CALLS_SEED, tag)


def test_the_stream_is_the_calls_stream_plus_group_events_seeded():
    entries = stream()
    assert entries == stream()  # seeded: every run sends the same stream
    people = [entry for entry in entries if entry["person"] is not None]
    calls = build_stream(EVENTS, PEOPLE, CALLS_SEED, "t1")
    assert [(e["kind"], e["person"], e["event"]["messageId"]) for e in people] == [
        (e["kind"], e["person"], e["event"]["messageId"]) for e in calls
    ]
    groups = [entry for entry in entries if entry["person"] is None]
    assert len(groups) == group_events(EVENTS) == 12
    assert [g["kind"] for g in groups[:MAPPING_COMPANIES]] == ["group_first"] * MAPPING_COMPANIES
    assert {g["kind"] for g in groups[MAPPING_COMPANIES:]} <= {"group_change", "group_same"}
    assert len({g["event"]["groupId"] for g in groups}) == MAPPING_COMPANIES
    stamps = [entry["event"]["timestamp"] for entry in entries]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert len({entry["event"]["messageId"] for entry in entries}) == len(entries)


def test_every_event_maps_under_the_example_mapping_to_fields_the_sandbox_declares():
    mapping = mapping_from(MAPPING_FILE)
    types, choices = sandbox_fields(mapping)
    naming = Counter()
    for entry in stream():
        planned = plan_event(entry["event"], mapping=mapping)
        if entry["person"] is None:
            assert isinstance(planned, PlannedCompany)
            assert planned.group_id and planned.company["domains"] and planned.company["account_tier"]
            continue
        assert isinstance(planned, PlannedContact)
        custom = planned.contact["custom_fields"]
        assert set(custom) <= set(types) | set(choices)
        assert custom["plan"] in choices["plan"] and custom["region"] in choices["region"]
        assert isinstance(custom["seats"], int) and isinstance(custom["beta_tester"], bool)
        assert {"mobile", "language", "time_zone"} <= set(planned.contact)
        assert planned.company is not None
        naming[(planned.company.name is not None, planned.company.group_id is not None)] += 1
    # companies are named by name only, by group id only, and by both
    assert set(naming) == {(True, False), (False, True), (True, True)}


def test_ids_and_company_names_are_the_runs_own():
    one, other = stream("t1"), stream("t2")
    names = {e["event"]["traits"]["name"] for e in one if e["person"] is None}
    assert all(name.endswith(" t1") for name in names)
    assert not {e["event"]["messageId"] for e in one} & {e["event"]["messageId"] for e in other}


def path_summary(
    entries: list[dict],
    *,
    calls_each: int,
    handler_ms: float,
    cpu_ms: float,
    seeded: list[dict] | None = None,
    known_reads: int = 0,
    reread: int = 0,
) -> dict:
    """What calls.summarise makes of a made-up run: every event delivered with `calls_each` calls, but a
    `first_existing` one, which finds the contact an agent made (create 409, read, update). The first
    `known_reads` changes read their known contact first; the first `reread` first_existing events had their
    read answered 429 and went round again (create 409, read)."""
    ids = [entry["event"]["messageId"] for entry in entries]
    calls, log_entries = [], []
    post = {"method": "POST", "path": "/api/v2/contacts", "query": ""}
    read = {"method": "GET", "path": "/api/v2/contacts/1001", "query": ""}
    put = {"method": "PUT", "path": "/api/v2/contacts/1001", "query": ""}
    for entry, message_id in zip(entries, ids, strict=True):
        if entry["kind"] == "first_existing":
            if reread > 0:
                reread -= 1
                calls += [[message_id, "create_contact", 409], [message_id, "get_contact", 429]]
                log_entries += [post | {"status": 409}, read | {"status": 429}]
            calls += [[message_id, "create_contact", 409], [message_id, "get_contact", 200]]
            calls += [[message_id, "update_contact", 200]]
            log_entries += [post | {"status": 409}, read | {"status": 200}, put | {"status": 200}]
            continue
        if entry["kind"] == "change" and known_reads > 0:
            known_reads -= 1
            calls.append([message_id, "get_contact", 200])
            log_entries.append(read | {"status": 200})
        calls += [[message_id, "create_contact", 201]] * calls_each
        log_entries += [post | {"status": 201}] * calls_each
    sent = {
        "answers": {message_id: [["delivered", None, 201]] for message_id in ids},
        "calls": calls,
        "resent": 0,
        "seconds": 1.0,
        "handler_ms": handler_ms,
        "handler_cpu_ms": cpu_ms,
    }
    drained = [
        {"processed": [], "calls": [], "invocations": 0, "records": 0, "timed_out": False}
        | {"handler_ms": 0.0, "handler_cpu_ms": 0.0}
    ]
    return summarise(
        entries,
        sent,
        drained,
        log_entries,
        [],
        left={"retry_queue": 0, "dlq": 0},
        seconds=2.0,
        sent_seconds=1.0,
        requests=1,
        sandbox_stats={},
        companies=0,
        seeded=seeded or [],
    )


def test_a_fifth_of_the_people_have_a_contact_an_agent_made():
    existing = existing_people(PEOPLE, CALLS_SEED)
    assert existing == existing_people(PEOPLE, CALLS_SEED) == sorted(set(existing))  # seeded
    assert len(existing) == 18 and set(existing) <= set(range(PEOPLE))
    entries = mark_existing(stream(), existing)
    marked = [entry["person"] for entry in entries if entry["kind"] == "first_existing"]
    assert sorted(marked) == existing  # each one's first event, and only theirs
    assert [e["event"] for e in entries] == [e["event"] for e in stream()]
    assert sum(1 for entry in entries if entry["kind"] == "first") == PEOPLE - len(existing)


def test_the_contacts_agents_made_hold_the_persons_name_and_email_and_half_an_if_empty_value():
    entries = stream()
    existing = existing_people(PEOPLE, CALLS_SEED)
    contacts = existing_contacts(entries, existing)
    assert contacts == existing_contacts(build_stream(EVENTS, PEOPLE, CALLS_SEED, "t1"), existing)  # both runs
    first = {}
    for entry in entries:
        if entry["person"] is not None:
            first.setdefault(entry["person"], entry["event"])
    for person, contact in zip(existing, contacts, strict=True):
        event = first[person]
        traits = event["traits"] if "traits" in event else event["context"]["traits"]
        assert contact["email"] == traits["email"]
        assert contact["name"] == traits.get("name", f"{traits.get('first_name')} {traits.get('last_name')}")
        assert contact.get("unique_external_id") in (None, event["userId"])
        if "mobile" in contact:  # what the agent entered is not what the events bring
            assert contact["mobile"] != traits["mobile"]
            assert contact["custom_fields"]["account_manager"] in AGENT_MANAGERS
            assert contact["custom_fields"]["account_manager"] != traits["account_manager"]
    assert sum(1 for c in contacts if "unique_external_id" in c) == 9
    assert sum(1 for c in contacts if "mobile" in c) == sum(1 for c in contacts if "custom_fields" in c) == 10
    # the sandbox, with the mapping's fields declared, takes them as Freshdesk would
    types, choices = sandbox_fields(mapping_from(MAPPING_FILE))
    sandbox = FreshdeskSandbox(custom_field_types=types, custom_field_choices=choices)
    stored = [sandbox.seed_contact(**contact) for contact in contacts]
    assert [c["email"] for c in stored] == [c["email"] for c in contacts]
    assert [c.get("mobile") for c in stored] == [c.get("mobile") for c in contacts]


def test_the_if_empty_targets_are_the_example_mappings():
    mapping = mapping_from(MAPPING_FILE)
    person = next(entry for entry in stream() if entry["person"] is not None)
    planned = plan_event(person["event"], mapping=mapping)
    assert isinstance(planned, PlannedContact)
    assert set(planned.if_empty) == set(IF_EMPTY_TARGETS)


def agent_contact(contact_id: int, mobile: str | None, manager: str | None) -> dict:
    custom = {"account_manager": manager} if manager is not None else {}
    return {"id": contact_id, "email": f"p{contact_id}@example.com", "mobile": mobile, "custom_fields": custom}


def test_agent_values_counts_what_the_run_kept_overwrote_and_filled():
    seeded = [
        {  # both kept
            "before": agent_contact(1, "+44 20 7946 0001", "Priya Raman"),
            "after": agent_contact(1, "+44 20 7946 0001", "Priya Raman"),
        },
        {  # empty ones filled from the events
            "before": agent_contact(2, None, None),
            "after": agent_contact(2, "+44 7700 900002", "Tom Baker"),
        },
        {  # the mobile overwritten, the account manager kept
            "before": agent_contact(3, "+44 20 7946 0003", "Sam Okoye"),
            "after": agent_contact(3, "+44 7700 900003", "Sam Okoye"),
        },
        {"before": agent_contact(4, None, None), "after": None},  # gone: nothing filled
    ]
    values = agent_values(seeded)
    assert (values["entered"], values["kept"], values["filled"], values["empty"]) == (4, 3, 2, 2)
    assert values["overwritten"] == ["contact 3 mobile: '+44 20 7946 0003' became '+44 7700 900003'"]
    assert agent_values(seeded[3:])["overwritten"] == []
    gone = agent_values([{"before": seeded[0]["before"], "after": None}])
    assert (gone["kept"], len(gone["overwritten"])) == (0, 2)


def test_summarise_counts_contact_reads_and_those_after_a_409():
    entries = stream()
    existing = existing_people(PEOPLE, CALLS_SEED)
    summary = path_summary(mark_existing(entries, existing), calls_each=1, handler_ms=1.0, cpu_ms=1.0)
    assert summary["contact_reads"] == summary["contact_reads_after_409"] == len(existing)
    assert summary["contact_reads_known"] == 0
    assert summary["by_method"]["GET /contacts/:id 200"] == len(existing)
    assert summary["per_kind"]["first_existing"] == {"events": len(existing), "calls": 3 * len(existing)}
    summary = path_summary(
        mark_existing(entries, existing), calls_each=1, handler_ms=1.0, cpu_ms=1.0, known_reads=2, reread=1
    )
    assert (summary["contact_reads"], summary["contact_reads_after_409"], summary["contact_reads_known"]) == (21, 19, 2)
    assert summary["by_method"]["GET /contacts/:id 429"] == 1


def seeded_pairs(count: int, *, overwrite: int = 0) -> list[dict]:
    """`count` contacts agents made, each with both if_empty values; the first `overwrite` lose their mobile."""
    pairs = []
    for n in range(count):
        before = agent_contact(n + 1, f"+44 20 7946 0{n:03d}", "Priya Raman")
        after = agent_contact(n + 1, "+44 7700 900000" if n < overwrite else before["mobile"], "Priya Raman")
        pairs.append({"before": before, "after": after})
    return pairs


def test_the_figures_reach_the_table_the_bench_line_and_the_results():
    existing = existing_people(PEOPLE, CALLS_SEED)
    entries = mark_existing(stream(), existing)
    default_entries = mark_existing(build_stream(EVENTS, PEOPLE, CALLS_SEED, "t1"), existing)
    unseeded = path_summary(build_stream(EVENTS, PEOPLE, CALLS_SEED, "t0"), calls_each=1, handler_ms=1.0, cpu_ms=1.0)
    default = path_summary(
        default_entries,
        calls_each=1,
        handler_ms=3000.0,
        cpu_ms=900.0,
        seeded=seeded_pairs(len(existing)),
        reread=1,
    )
    custom = path_summary(
        entries,
        calls_each=1,
        handler_ms=3744.0,
        cpu_ms=1248.0,
        seeded=seeded_pairs(len(existing)),
        known_reads=3,  # a known person's if_empty fields the map could not answer
    )
    assert custom["per_kind"]["group_first"]["events"] == MAPPING_COMPANIES
    figures = Figures()
    record_mapping(
        figures, entries, default, custom, unseeded, fields={"seats": "custom_number"}, unseeded_from_calls=False
    )
    v = figures.values
    assert v["calls_per_event"] == 1.0  # the Default preset without contacts made beforehand: the calls figure's
    assert (default["calls"], custom["calls"]) == (300 - 18 + 3 * 18 + 2, 312 - 18 + 3 * 18 + 3) == (338, 351)
    assert v["calls_per_event_mapping"] == 351 / 312 and v["mapping_calls_ratio"] == (351 / 312) / (338 / 300)
    assert (v["default_ms_per_event"], v["mapping_ms_per_event"]) == (10.0, 12.0)
    assert round(v["mapping_ms_ratio"], 3) == 1.2 and round(v["mapping_cpu_ratio"], 3) == 1.333
    # all reads: 19 and 21; the read after a retried 409 is the Default preset's too, so not if_empty's
    assert (v["seeded_contacts"], v["contact_reads_default"], v["contact_reads_mapping"]) == (18, 19, 21)
    assert (v["if_empty_reads"], v["if_empty_reads_per_seeded"], v["agent_values_kept"]) == (3, 3 / 18, 36)
    mapping = figures.details["mapping"]
    assert mapping["kinds"]["first_existing"] == 18 and mapping["kinds"]["first"] == PEOPLE - 18
    assert mapping["existing"]["mapping"] == {
        "entered": 36,
        "kept": 36,
        "overwritten": [],
        "filled": 0,
        "empty": 0,
        "contacts": 18,
    }
    line = bench_line(figures)
    for key in (
        "calls_per_event=1.000",
        "calls_per_event_mapping=1.125",
        "mapping_calls_ratio=0.999",
        "default_ms_per_event=10.00",
        "mapping_ms_per_event=12.00",
        "mapping_ms_ratio=1.200",
        "wasted_429_mapping=0",
        "seeded_contacts=18",
        "contact_reads_default=19",
        "contact_reads_mapping=21",
        "if_empty_reads=3",
        "if_empty_reads_per_seeded=0.167",
        "agent_values_kept=36",
    ):
        assert key in line.split()
    table = plain(main_table(figures))
    assert "calls_per_event_mapping / mapping_calls_ratio" in table and "mapping_ms_ratio" in table
    assert "if_empty_reads / if_empty_reads_per_seeded" in table and "kept 36/36" in table
    details = details_markdown(figures, "make bench", 1.0)
    assert "## A custom mapping with companies, against the Default preset" in details
    assert "| group_first | 0 | 0 | - | 4 | 4 | 1.00 |" in details
    assert "| first_existing | 18 | 56 | 3.11 | 18 | 54 | 3.00 |" in details
    assert "the example mapping 21 (18 right after a create's 409, 3 of contacts the identity map knew)" in details
    assert "the Default preset 19 (19 and 0)" in details
    assert "beyond the Default preset's, 3 (0.167 per contact agents made)" in details
    assert "the example mapping kept 36 of 36 and overwrote 0" in details


def test_an_overwritten_agent_value_fails_the_figure():
    existing = existing_people(PEOPLE, CALLS_SEED)
    entries = mark_existing(stream(), existing)
    default = path_summary(entries, calls_each=1, handler_ms=1.0, cpu_ms=1.0, seeded=seeded_pairs(18))
    custom = path_summary(entries, calls_each=1, handler_ms=1.0, cpu_ms=1.0, seeded=seeded_pairs(18, overwrite=2))
    figures = Figures()
    with pytest.raises(RuntimeError, match="2 values agents entered in if_empty fields were overwritten"):
        record_mapping(figures, entries, default, custom, default, fields={}, unseeded_from_calls=True)
    assert figures.values["agent_values_kept"] == 34  # recorded before the check fails


def test_timed_adds_up_a_handlers_invocations():
    timed = Timed(lambda event, context: {"statusCode": 200, "event": event})
    assert timed({"n": 1}, None) == {"statusCode": 200, "event": {"n": 1}}
    timed({"n": 2}, None)
    figures = timed.figures()
    assert figures["handler_invocations"] == 2 and figures["handler_ms"] >= 0 and figures["handler_cpu_ms"] >= 0
