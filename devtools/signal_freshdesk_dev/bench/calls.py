"""The calls figure: Freshdesk calls per event for a seeded stream of identified events, with the identity
map and without it (today's path), under a scaled-down Freshdesk rate limit.

The stream: CALLS_EVENTS identified events (`identify`, or `track` "Identified") from CALLS_PEOPLE
people, all with marketing consent granted, a user id and an email, and a timestamp that increases over
the stream. A person's first event is first-time; each later one either changes their name or job
title, or repeats their traits exactly ("nothing new"). Seeded, so every run sends the same stream.

The run, once per path, each against a freshly reset sandbox: one process stands in for Signal and the
ingest function (batches and single events through the real handler, one request at a time, at a steady
CALLS_ARRIVAL_PER_WINDOW events per rate window), while CALLS_POLLERS retry processes drain the retry
queue through the SQS event source stand-in, from the first request until the queue stays empty. Every
Freshdesk call is counted from the sandbox's own request log; each event's calls and outcomes come from
the handlers' answers, their "retry processed" log lines and a wrapper around the one method every
delivery's calls go through.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..apigw import LOCAL_WEBHOOK_TOKEN
from ..handlers import REPO_ROOT
from .measure import CHILD, child_env, fresh_stack, log, queue_depth
from .model import (
    CALLS_ARRIVAL_PER_WINDOW,
    CALLS_BATCH_SIZES,
    CALLS_EVENTS,
    CALLS_LIMIT,
    CALLS_PEOPLE,
    CALLS_POLLERS,
    CALLS_SEED,
    CALLS_SHARES,
    CALLS_SINGLE_SHARE,
    CALLS_WINDOW,
    UNLIMITED,
    Figures,
)
from .services import BenchServices

FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kemi", "Liam")
LAST_NAMES = ("Okafor", "Nowak", "Shah", "Larsen", "Moreau", "Silva", "Kowalski", "Byrne", "Tanaka", "Costa")
TITLES = ("Analyst", "Engineer", "Head of Growth", "Designer", "CTO", "Buyer", "Marketing Lead", "Founder")
KINDS = ("first", "change", "same")
STREAM_START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


# -- the stream ------------------------------------------------------------------------------------------------
def kind_counts(events: int, people: int) -> dict[str, int]:
    """How many events of each kind: first-time (one per person), returning with a change, nothing new."""
    if people > events:
        raise ValueError("the stream needs at least one event per person")
    returning = events - people
    same = round(events * CALLS_SHARES["same"])
    return {"first": people, "change": returning - same, "same": same}


def build_stream(events: int, people: int, seed: int, tag: str) -> list[dict[str, Any]]:
    """The seeded stream: [{"kind", "person", "event"}] in the order Signal sends it.

    `tag` makes ids unique to one run (the person ids, emails and messageIds), so nothing an earlier run
    left in the identity map or the idempotency table applies; the stream is otherwise the same.
    """
    rng = random.Random(seed)
    counts = kind_counts(events, people)
    order = list(range(people)) + [rng.randrange(people) for _ in range(events - people)]
    rng.shuffle(order)
    returning_kinds = ["change"] * counts["change"] + ["same"] * counts["same"]
    rng.shuffle(returning_kinds)
    state: dict[int, dict[str, Any]] = {}
    stream = []
    for index, person in enumerate(order):
        if person not in state:
            kind = "first"
            state[person] = {
                "first": rng.choice(FIRST_NAMES),
                "last": rng.choice(LAST_NAMES),
                "title": rng.choice(TITLES),
                "split_name": rng.random() < 0.5,  # first_name + last_name, or name
                "track": rng.random() < 0.5,  # track "Identified", or identify
            }
        else:
            kind = returning_kinds.pop()
            if kind == "change":
                traits = state[person]
                if rng.random() < 0.5:
                    traits["last"] = rng.choice([n for n in LAST_NAMES if n != traits["last"]])
                else:
                    traits["title"] = rng.choice([t for t in TITLES if t != traits["title"]])
        at = STREAM_START + timedelta(seconds=index * 7.5)
        stream.append(
            {"kind": kind, "person": person, "event": identified_event(tag, index, person, state[person], at)}
        )
    return stream


def identified_event(tag: str, index: int, person: int, traits: dict[str, Any], at: datetime) -> dict[str, Any]:
    names = (
        {"first_name": traits["first"], "last_name": traits["last"]}
        if traits["split_name"]
        else {"name": f"{traits['first']} {traits['last']}"}
    )
    trait_values = {**names, "email": f"person{person:03d}.{tag}@example.com", "title": traits["title"]}
    event: dict[str, Any] = {
        "type": "track" if traits["track"] else "identify",
        "userId": f"usr_{tag}_{person:03d}",
        "anonymousId": f"anon_{tag}_{person:03d}",
        "context": {
            "locale": "en-GB",
            "ip": "203.0.113.42",
            "userAgent": "Mozilla/5.0",
            "consent": {
                "categories": {"necessary": True, "marketing": True},
                "canonical": {"essential": True, "functional": True, "analytics": True, "marketing": True},
            },
        },
        "timestamp": timestamp_text(at),
        "messageId": f"calls-{tag}-{index:04d}",
    }
    if traits["track"]:  # a track call carries the person's traits in its context, as Signal sends them
        event["event"] = "Identified"
        event["properties"] = {}
        event["context"]["traits"] = trait_values
    else:
        event["traits"] = trait_values
    return event


def timestamp_text(at: datetime) -> str:
    """A Signal timestamp: UTC, milliseconds, Z."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def webhook_requests(stream: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The stream cut into Signal's webhook calls: single events and batches (CALLS_BATCH_SIZES)."""
    rng = random.Random(seed + 1)
    requests, index = [], 0
    while index < len(stream):
        size = 1 if rng.random() < CALLS_SINGLE_SHARE else rng.randint(*CALLS_BATCH_SIZES)
        chunk = [entry["event"] for entry in stream[index : index + size]]
        requests.append({"batch": len(chunk) > 1, "events": chunk})
        index += size
    return requests


# -- the run ---------------------------------------------------------------------------------------------------
def measure_calls(services: BenchServices, figures: Figures, *, events: int = CALLS_EVENTS) -> None:
    people = round(events * CALLS_PEOPLE / CALLS_EVENTS)
    results = {}
    for label, identity_map in (("map", True), ("no_map", False)):
        results[label] = run_path(services, events=events, people=people, identity_map=identity_map)
    with_map, without = results["map"], results["no_map"]
    figures.details["calls"] = {
        "events": events,
        "people": people,
        "kinds": kind_counts(events, people),
        "limit": CALLS_LIMIT,
        "window": CALLS_WINDOW,
        "arrival_per_window": CALLS_ARRIVAL_PER_WINDOW,
        "paths": results,
    }
    figures.values["calls_per_event"] = with_map["calls_per_event"]
    figures.values["calls_per_event_no_map"] = without["calls_per_event"]
    figures.values["calls_ratio"] = with_map["calls_per_event"] / without["calls_per_event"]
    figures.values["wasted_429_map"] = with_map["by_status"].get("429", 0)


def run_tag(prefix: str) -> str:
    """Ids unique to one run of a stream (see build_stream)."""
    return prefix + format(int(time.time() * 1000) % 10**8, "x")


def run_path(services: BenchServices, *, events: int, people: int, identity_map: bool) -> dict[str, Any]:
    """The identified stream through the Default preset (MAPPING_FILE=default), with the map or without it."""
    label = "with the identity map" if identity_map else "without the identity map"
    tag = run_tag("m" if identity_map else "n")
    stream = build_stream(events, people, CALLS_SEED, tag)
    log(f"calls ({label}): {events} identified events of {people} people ...")
    return run_stream_path(services, stream, tag=tag, identity_map=identity_map, MAPPING_FILE="default")


def run_stream_path(
    services: BenchServices,
    stream: list[dict[str, Any]],
    *,
    tag: str,
    identity_map: bool,
    seed: list[dict[str, Any]] | None = None,
    **settings: str,
) -> dict[str, Any]:
    """Send `stream` as Signal would, drain the retry queue meanwhile, and say what happened. `seed` are
    contacts agents made before the run (the sandbox's contact fields), stored after the reset as they
    left them; the answer's "seeded" has each as stored and as the run left it. `settings` are more of
    the functions' environment (MAPPING_FILE)."""
    requests = webhook_requests(stream, CALLS_SEED)
    rate = CALLS_ARRIVAL_PER_WINDOW / CALLS_WINDOW
    log(
        f"  {len(stream)} events in {len(requests)} webhook calls, {rate:.1f} events/s, "
        f"limit {CALLS_LIMIT} per {CALLS_WINDOW:g} s ..."
    )
    resources, sqs = fresh_stack(services)
    seeded = services.call("seed_contacts", seed) if seed else []
    services.call("rate_limit", CALLS_LIMIT, CALLS_WINDOW)
    # The rate window scaled as the sandbox's is (Freshdesk: a minute); everything else as deployed.
    env = child_env(services, identity_map=identity_map, FRESHDESK_RATE_WINDOW_SECONDS=f"{CALLS_WINDOW:g}", **settings)
    base = {"root": str(REPO_ROOT), "token": LOCAL_WEBHOOK_TOKEN, "prefix": tag}
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp:
            flag = Path(tmp, "sender-done")
            sender_params = Path(tmp, "stream.json")
            sender_params.write_text(json.dumps({**base, "requests": requests, "rate": rate}))
            drain_params = Path(tmp, "drain.json")
            drain_params.write_text(
                json.dumps(
                    {
                        **base,
                        "queue_url": resources.retry_queue_url,
                        "until_flag": str(flag),
                        "timeout": 600,
                        "settle": 2.0,
                        "idle_sleep": 0.25,
                    }
                )
            )
            retry_env = {**env, "LAMBDA_TASK_ROOT": str(REPO_ROOT / "functions" / "retry")}
            pollers = [
                spawn("stream_drain", "retry", drain_params, Path(tmp, f"drain{i}.json"), retry_env)
                for i in range(CALLS_POLLERS)
            ]
            sender = spawn("stream", "ours", sender_params, Path(tmp, "stream-out.json"), env)
            finish(sender, "sender", timeout=600)
            sent_seconds = time.monotonic() - started
            flag.write_text("done")
            for poller in pollers:
                finish(poller, "retry poller", timeout=660)
            sent = json.loads(Path(tmp, "stream-out.json").read_text())
            drained = [json.loads(Path(tmp, f"drain{i}.json").read_text()) for i in range(CALLS_POLLERS)]
    finally:
        services.call("rate_limit", UNLIMITED, 60)
    elapsed = time.monotonic() - started
    log_entries = [r for r in services.call("request_log") if str(r["path"]).startswith("/api/")]
    contacts = services.call("contact_summaries")
    companies = services.call("company_summaries")
    sandbox_stats = services.call("stats")
    left = {"retry_queue": queue_depth(sqs, resources.retry_queue_url), "dlq": queue_depth(sqs, resources.dlq_url)}
    after = {contact["id"]: contact for contact in contacts}
    return summarise(
        stream,
        sent,
        drained,
        log_entries,
        contacts,
        left=left,
        sandbox_stats=sandbox_stats,
        companies=len(companies),
        seconds=elapsed,
        sent_seconds=sent_seconds,
        requests=len(requests),
        seeded=[{"before": contact, "after": after.get(contact["id"])} for contact in seeded],
    )


def spawn(mode: str, which: str, params: Path, out: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", str(CHILD), mode, which, str(params), str(out)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], name: str, *, timeout: float) -> None:
    _, error = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"calls: the {name} failed ({process.returncode}):\n{error[-2000:]}")


# -- what happened ---------------------------------------------------------------------------------------------
FINAL_OUTCOMES = {"delivered", "updated", "unchanged", "conflict", "stale", "identity_mismatch"}


def summarise(
    stream: list[dict[str, Any]],
    sent: dict[str, Any],
    drained: list[dict[str, Any]],
    log_entries: list[dict[str, Any]],
    contacts: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    events = len(stream)
    calls = len(log_entries)
    by_method = Counter(f"{call_name(r)} {r['status']}" for r in log_entries)
    by_status = Counter(str(r["status"]) for r in log_entries)
    # Each event's history: the ingest answer(s), then each retry's outcome, in order.
    history: dict[str, list[str]] = {}
    for message_id, answers in sent["answers"].items():
        history.setdefault(message_id, []).extend(answer[0] for answer in answers)
    retried = sorted((record for poller in drained for record in poller["processed"]), key=lambda r: r["at"])
    for record in retried:
        outcome = record["outcome"] + (" (duplicate)" if record.get("duplicate") else "")
        history.setdefault(record["messageId"], []).append(outcome)
    # Each event's calls, as the instrumented handlers saw them.
    event_calls: dict[str, list[str]] = {}
    for message_id, call, status in sent["calls"] + [c for poller in drained for c in poller["calls"]]:
        event_calls.setdefault(message_id, []).append(f"{call} {status}")
    per_path: dict[str, dict[str, Any]] = {}
    kinds = dict.fromkeys([*KINDS, *(entry["kind"] for entry in stream)])
    per_kind: dict[str, dict[str, Any]] = {kind: {"events": 0, "calls": 0} for kind in kinds}
    final: Counter[str] = Counter()
    not_final = []
    for entry in stream:
        message_id = entry["event"]["messageId"]
        steps = [step for step in history.get(message_id, []) if not step.endswith("(duplicate)")]
        path = " → ".join(dict.fromkeys(steps)) or "(no answer)"
        outcome = steps[-1] if steps else "(no answer)"
        final[outcome] += 1
        if outcome not in FINAL_OUTCOMES:
            not_final.append(message_id)
        n = len(event_calls.get(message_id, []))
        row = per_path.setdefault(path, {"events": 0, "calls": 0, "sequences": Counter()})
        row["events"] += 1
        row["calls"] += n
        row["sequences"][", ".join(event_calls.get(message_id, [])) or "no call"] += 1
        per_kind[entry["kind"]]["events"] += 1
        per_kind[entry["kind"]]["calls"] += n
    for row in per_path.values():
        row["sequences"] = dict(row["sequences"].most_common(4))
    latest = {}
    for entry in stream:
        if entry["event"]["type"] != "group":  # a group event describes the company, not the person
            latest[entry["event"]["userId"]] = entry["event"]
    stale_contacts = sum(1 for c in contacts if not holds(c, latest.get(c.get("unique_external_id") or "")))
    instrumented = sum(len(v) for v in event_calls.values())
    # A contact read right after a create answered 409 reads a contact the map did not know (someone else
    # made it); any other read is of a contact the map knew, when it could not answer for it.
    reads: Counter[str] = Counter()
    for calls_of_event in event_calls.values():
        for before, call in pairwise(["", *calls_of_event]):
            if call.startswith("get_contact "):
                reads["after_409" if before == "create_contact 409" else "known"] += 1
    return {
        "events": events,
        "calls": calls,
        "calls_per_event": calls / events,
        "calls_without_429": calls - by_status.get("429", 0),
        "instrumented_calls": instrumented,
        "by_method": dict(sorted(by_method.items())),
        "by_status": dict(sorted(by_status.items())),
        "list_calls": sum(1 for r in log_entries if r["method"] == "GET" and r["path"] == "/api/v2/contacts"),
        "contact_reads": sum(1 for r in log_entries if call_name(r) == "GET /contacts/:id"),
        "contact_reads_after_409": reads["after_409"],
        "contact_reads_known": reads["known"],
        "final": dict(final.most_common()),
        "not_final": len(not_final),
        "per_path": dict(sorted(per_path.items(), key=lambda kv: -kv[1]["events"])),
        "per_kind": per_kind,
        "contacts": len(contacts),
        "contacts_with_company": sum(1 for c in contacts if c.get("company_id") is not None),
        "people": len(latest),
        "contacts_not_latest": stale_contacts,
        "requests_503": sent["resent"],
        "retry_invocations": sum(p["invocations"] for p in drained),
        "retry_records": sum(p["records"] for p in drained),
        "retry_timed_out": any(p["timed_out"] for p in drained),
        "webhook_seconds": sent["seconds"],
        # The functions' own time: the ingest handler's invocations (what Signal waits for), and the retry's.
        "ingest_ms": sent["handler_ms"],
        "ingest_cpu_ms": sent["handler_cpu_ms"],
        "ms_per_event": sent["handler_ms"] / events,
        "cpu_ms_per_event": sent["handler_cpu_ms"] / events,
        "retry_ms": sum(p["handler_ms"] for p in drained),
        "retry_cpu_ms": sum(p["handler_cpu_ms"] for p in drained),
        **extra,
    }


def call_name(entry: dict[str, Any]) -> str:
    """A sandbox log entry as `METHOD /contacts[/:id]` (a list lookup keeps its field, not its value)."""
    path = str(entry["path"]).removeprefix("/api/v2")
    parts = path.split("/")
    if len(parts) > 2 and parts[2].isdigit():
        path = "/".join([*parts[:2], ":id", *parts[3:]])
    query = str(entry.get("query") or "")
    if query:
        path += "?" + "&".join(sorted(item.split("=", 1)[0] for item in query.split("&")))
    return f"{entry['method']} {path}"


def holds(contact: dict[str, Any], event: dict[str, Any] | None) -> bool:
    """Whether a contact holds the name and job title of its person's newest event (and its seats, when
    the event has them: the custom mapping's stream)."""
    if event is None:
        return False
    traits = event.get("traits") or event["context"].get("traits", {})
    name = traits.get("name") or f"{traits['first_name']} {traits['last_name']}"
    seats = (contact.get("custom_fields") or {}).get("seats")
    return (
        contact.get("name") == name
        and contact.get("job_title") == traits["title"]
        and ("seats" not in traits or seats == traits["seats"])
    )
