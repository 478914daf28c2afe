"""The benchmark's mapping figure: its stream, what the example mapping makes of it, and how it is reported.

Nothing here runs the benchmark or asserts a timing: the figures below are made up.
"""

from __future__ import annotations

from collections import Counter

from signal_freshdesk.core.mapping import plan_event
from signal_freshdesk.core.model import PlannedCompany, PlannedContact
from signal_freshdesk.core.rules import mapping_from
from signal_freshdesk_dev.bench.calls import build_stream, summarise
from signal_freshdesk_dev.bench.child import Timed
from signal_freshdesk_dev.bench.mapping import build_mapping_stream, group_events, record_mapping
from signal_freshdesk_dev.bench.model import CALLS_SEED, MAPPING_COMPANIES, MAPPING_FILE, Figures
from signal_freshdesk_dev.bench.report import bench_line, details_markdown, main_table, plain
from signal_freshdesk_dev.check import sandbox_fields

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


def path_summary(entries: list[dict], *, calls_each: int, handler_ms: float, cpu_ms: float) -> dict:
    """What calls.summarise makes of a made-up run: every event delivered with `calls_each` calls."""
    ids = [entry["event"]["messageId"] for entry in entries]
    sent = {
        "answers": {message_id: [["delivered", None, 201]] for message_id in ids},
        "calls": [[message_id, "create_contact", 201] for message_id in ids for _ in range(calls_each)],
        "resent": 0,
        "seconds": 1.0,
        "handler_ms": handler_ms,
        "handler_cpu_ms": cpu_ms,
    }
    drained = [
        {"processed": [], "calls": [], "invocations": 0, "records": 0, "timed_out": False}
        | {"handler_ms": 0.0, "handler_cpu_ms": 0.0}
    ]
    log_entries = [{"method": "POST", "path": "/api/v2/contacts", "query": "", "status": 201}] * (len(ids) * calls_each)
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
    )


def test_the_figures_reach_the_table_the_bench_line_and_the_results():
    entries = stream()
    default_entries = build_stream(EVENTS, PEOPLE, CALLS_SEED, "t1")
    default = path_summary(default_entries, calls_each=1, handler_ms=3000.0, cpu_ms=900.0)
    custom = path_summary(entries, calls_each=1, handler_ms=3744.0, cpu_ms=1248.0)
    assert custom["per_kind"]["group_first"]["events"] == MAPPING_COMPANIES
    figures = Figures()
    record_mapping(figures, entries, default, custom, fields={"seats": "custom_number"}, default_from_calls=False)
    v = figures.values
    assert v["calls_per_event"] == 1.0 and v["calls_per_event_mapping"] == 1.0
    assert (v["default_ms_per_event"], v["mapping_ms_per_event"]) == (10.0, 12.0)
    assert round(v["mapping_ms_ratio"], 3) == 1.2 and round(v["mapping_cpu_ratio"], 3) == 1.333
    line = bench_line(figures)
    for key in (
        "calls_per_event=1.000",
        "calls_per_event_mapping=1.000",
        "mapping_calls_ratio=1.000",
        "default_ms_per_event=10.00",
        "mapping_ms_per_event=12.00",
        "mapping_ms_ratio=1.200",
        "wasted_429_mapping=0",
    ):
        assert key in line.split()
    table = plain(main_table(figures))
    assert "calls_per_event_mapping / mapping_calls_ratio" in table and "mapping_ms_ratio" in table
    details = details_markdown(figures, "make bench", 1.0)
    assert "## A custom mapping with companies, against the Default preset" in details
    assert "| group_first | 0 | 0 | - | 4 | 4 | 1.00 |" in details


def test_timed_adds_up_a_handlers_invocations():
    timed = Timed(lambda event, context: {"statusCode": 200, "event": event})
    assert timed({"n": 1}, None) == {"statusCode": 200, "event": {"n": 1}}
    timed({"n": 2}, None)
    figures = timed.figures()
    assert figures["handler_invocations"] == 2 and figures["handler_ms"] >= 0 and figures["handler_cpu_ms"] >= 0
