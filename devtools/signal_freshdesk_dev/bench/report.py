"""The benchmark's report: the table printed, the BENCH line, and bench/results.md."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from .model import (
    BATCH_DELAY,
    BATCH_EVENTS,
    BATCH_TARGET_SECONDS,
    CALLS_PER_EVENT_TARGET,
    CALLS_RATIO_TARGET,
    CALLS_WASTED_429_TARGET,
    COLD_RATIO_TARGET,
    COLD_SHARE,
    DRAIN_BACKLOG,
    DRAIN_LIMIT,
    DRAIN_MEASURED_WINDOWS,
    DRAIN_POLLERS,
    DRAIN_RATIO_TARGET,
    DRAIN_WINDOW,
    DYNAMODB_USD_PER_MILLION_READS,
    DYNAMODB_USD_PER_MILLION_WRITES,
    FRESHDESK_LATENCY_MS,
    HTTP_API_USD_PER_MILLION,
    LAMBDA_ARM_USD_PER_GB_SECOND,
    LAMBDA_MEMORY_FLOOR_MB,
    LAMBDA_USD_PER_MILLION_REQUESTS,
    MB_PER_VCPU,
    QUEUED_SHARE,
    SQS_USD_PER_MILLION_REQUESTS,
    WARM_RATIO_TARGET,
    WASTED_429_TARGET,
    Figures,
)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main_table(figures: Figures) -> list[list[str]]:
    v, d = figures.values, figures.details
    rows = [["figure", "measured", "baseline (same run)", "target", "result"]]
    if "cold" in d:
        rows += cold_rows(v, d)
    if "warm" in d:
        rows += warm_rows(v, d)
    if "batch" in d:
        rows.append(
            [
                "batch100_s",
                f"{v['batch100_s']:.2f} s, {v['batch100_accounted']}/{BATCH_EVENTS} accounted for",
                f"sequential {BATCH_EVENTS * BATCH_DELAY:.0f} s",
                f"<= {BATCH_TARGET_SECONDS} s, all accounted",
                verdict(v["batch100_s"] <= BATCH_TARGET_SECONDS and v["batch100_accounted"] == BATCH_EVENTS),
            ]
        )
    if "drain" in d:
        drain = d["drain"]
        rows.append(
            [
                "drain_ratio / wasted_429",
                f"{drain['rate_per_s']:.2f} events/s, ratio {v['drain_ratio']:.3f}; 429s {drain['429']}/"
                f"{drain['calls']} = {v['wasted_429']:.1%}; lost {drain['lost']}",
                f"limit {drain['limit_per_s']:.2f}/s ({DRAIN_LIMIT} per {DRAIN_WINDOW:g} s)",
                f">= {DRAIN_RATIO_TARGET}, <= {WASTED_429_TARGET:.0%}, none lost",
                verdict(
                    v["drain_ratio"] >= DRAIN_RATIO_TARGET
                    and v["wasted_429"] <= WASTED_429_TARGET
                    and drain["lost"] == 0
                ),
            ]
        )
    if "calls" in d:
        rows += calls_rows(v, d["calls"])
    if "mapping" in d:
        rows += mapping_rows(v, d["mapping"])
    if "rss" in d:
        rows.append(
            [
                "rss_mb",
                f"{v['rss_mb']:.1f} MB",
                f"Lambda {LAMBDA_MEMORY_FLOOR_MB} MB (naive: {v['rss_naive_mb']:.1f} MB)",
                f"fits in {LAMBDA_MEMORY_FLOOR_MB} MB",
                verdict(v["rss_mb"] < LAMBDA_MEMORY_FLOOR_MB),
            ]
        )
    if "cost" in d:
        cost = d["cost"]
        rows.append(
            [
                "usd_per_million",
                f"${cost['total']:.2f} (single events, {cost['memory_mb']} MB)",
                f"batches of 100: ${cost['total_batch100']:.2f}",
                "stated with assumptions",
                "info",
            ]
        )
    return rows


def cold_rows(v: dict[str, Any], d: dict[str, Any]) -> list[list[str]]:
    cold = d["cold"]
    rows = [
        [
            "cold_ms / cold_ratio",
            f"{v['cold_ms']:.0f} ms (import {cold['ours']['import_ms']:.0f} + first event "
            f"{cold['ours']['first_event_ms']:.0f}); ratio {v['cold_ratio']:.2f} (CPU time: "
            f"{v['cold_cpu_ratio']:.2f})",
            f"naive handler {v['cold_naive_ms']:.0f} ms",
            f"ratio <= {COLD_RATIO_TARGET}",
            verdict(v["cold_ratio"] <= COLD_RATIO_TARGET),
        ]
    ]
    shipped = d.get("cold_shipped")
    if shipped:
        rows.append(
            [
                "cold_ratio_shipped (layer without .pyc, as `sam build` ships it)",
                f"{shipped['ours']['cold_ms']:.0f} ms; ratio {v['cold_ratio_shipped']:.2f}",
                f"naive handler {shipped['naive']['cold_ms']:.0f} ms",
                f"ratio <= {COLD_RATIO_TARGET}",
                verdict(v["cold_ratio_shipped"] <= COLD_RATIO_TARGET),
            ]
        )
    return rows


def warm_rows(v: dict[str, Any], d: dict[str, Any]) -> list[list[str]]:
    warm, warm_i = d["warm"], d["warm_idempotency"]
    rows = []
    rows.append(
        [
            "warm_ratio",
            f"{warm['handler_ms']:.2f} ms per event; ratio {v['warm_ratio']:.2f}",
            f"bare urllib3 POST {warm['bare_ms']:.2f} ms",
            f"<= {WARM_RATIO_TARGET}",
            verdict(v["warm_ratio"] <= WARM_RATIO_TARGET),
        ]
    )
    rows.append(
        [
            "warm_ratio_idempotency (template default)",
            f"{warm_i['handler_ms']:.2f} ms per event; ratio {v['warm_ratio_idempotency']:.2f}",
            f"bare urllib3 POST {warm_i['bare_ms']:.2f} ms",
            "(no target: 4 DynamoDB calls per event)",
            "info",
        ]
    )
    return rows


def settled(path: dict[str, Any]) -> bool:
    """Every event of the stream final, nothing parked or left in the retry queue."""
    return path["not_final"] == 0 and path["left"]["dlq"] == 0 and path["left"]["retry_queue"] == 0


def settled_text(path: dict[str, Any]) -> str:
    final = path["events"] - path["not_final"]
    return f"{final}/{path['events']} final, {path['left']['dlq']} parked"


def calls_rows(v: dict[str, Any], calls: dict[str, Any]) -> list[list[str]]:
    with_map, without = calls["paths"]["map"], calls["paths"]["no_map"]
    limit = f"limit {calls['limit']} per {calls['window']:g} s"
    return [
        [
            "calls_per_event (identity map on, template default)",
            f"{v['calls_per_event']:.3f} ({with_map['calls']} calls for {with_map['events']} events); 429s "
            f"{v['wasted_429_map']}; {settled_text(with_map)}",
            f"same stream without the map: {v['calls_per_event_no_map']:.3f}",
            f"<= {CALLS_PER_EVENT_TARGET}, {CALLS_WASTED_429_TARGET} 429s ({limit}), all final",
            verdict(
                v["calls_per_event"] <= CALLS_PER_EVENT_TARGET
                and v["wasted_429_map"] <= CALLS_WASTED_429_TARGET
                and settled(with_map)
            ),
        ],
        [
            "calls_ratio / calls_per_event_no_map (EnableIdentityMap=false, the path before the map)",
            f"ratio {v['calls_ratio']:.3f}; without the map {v['calls_per_event_no_map']:.3f} per event "
            f"({without['calls']} calls, of which 429s {without['by_status'].get('429', 0)}); "
            f"{settled_text(without)}",
            f"with the map: {v['calls_per_event']:.3f} per event",
            f"ratio <= {CALLS_RATIO_TARGET}",
            verdict(v["calls_ratio"] <= CALLS_RATIO_TARGET and settled(without)),
        ],
    ]


def mapping_rows(v: dict[str, Any], mapping: dict[str, Any]) -> list[list[str]]:
    paths = mapping["paths"]
    default, custom, unseeded = paths["default"], paths["mapping"], paths["unseeded"]
    groups = mapping["events"] - mapping["identified_events"]
    existing = mapping["existing"]["mapping"]
    return [
        [
            "calls_per_event_mapping / mapping_calls_ratio (docs/mapping.example.json with companies, identity map on)",
            f"{v['calls_per_event_mapping']:.3f} ({custom['calls']} calls for {custom['events']} events, {groups} "
            f"of them group events); ratio {v['mapping_calls_ratio']:.3f}; 429s {v['wasted_429_mapping']}; "
            f"{settled_text(custom)}",
            f"Default preset, calls stream, identity map on, same contacts agents made: "
            f"{default['calls_per_event']:.3f} (without them: {unseeded['calls_per_event']:.3f})",
            "(no target: figures only)",
            "info",
        ],
        [
            "mapping_ms_per_event / mapping_ms_ratio (ingest handler time per event)",
            f"{v['mapping_ms_per_event']:.2f} ms per event (CPU {custom['cpu_ms_per_event']:.2f}); ratio "
            f"{v['mapping_ms_ratio']:.2f} (CPU: {v['mapping_cpu_ratio']:.2f})",
            f"Default preset: {v['default_ms_per_event']:.2f} ms per event (CPU {default['cpu_ms_per_event']:.2f})",
            "(no target: figures only)",
            "info",
        ],
        [
            "if_empty_reads / if_empty_reads_per_seeded (GET /contacts/:id of known contacts beyond the Default "
            f"preset's, {v['seeded_contacts']} contacts agents made)",
            f"{v['if_empty_reads']} ({v['if_empty_reads_per_seeded']:.3f} per contact agents made); the example "
            f"mapping read {custom['contact_reads']} contacts: {custom['contact_reads_after_409']} right after a "
            f"409, {custom['contact_reads_known']} known; values agents entered kept "
            f"{existing['kept']}/{existing['entered']}, empty ones filled "
            f"{existing['filled']}/{existing['filled'] + existing['empty']}",
            f"Default preset, same contacts: {default['contact_reads']} reads: {default['contact_reads_after_409']} "
            f"right after a 409, {default['contact_reads_known']} known",
            "no value an agent entered overwritten (checked)",
            verdict(not existing["overwritten"]),
        ],
    ]


def mapping_markdown(mapping: dict[str, Any]) -> list[str]:
    paths = mapping["paths"]
    names = {
        "unseeded": "Default preset, no contact beforehand (calls figure)",
        "default": "Default preset",
        "mapping": "example mapping",
    }
    compared = {key: paths[key] for key in ("default", "mapping")}
    kinds = mapping["kinds"]
    groups = mapping["events"] - mapping["identified_events"]
    existing = mapping["existing"]
    seeded = existing["mapping"]["contacts"]
    declared = ", ".join(f"{name} ({kind.removeprefix('custom_')})" for name, kind in mapping["custom_fields"].items())
    source = (
        "the calls figure's identity-map path above (the same run)"
        if mapping["unseeded_from_calls"]
        else "the calls figure's stream with the identity map, run here first"
    )
    lines = [
        "",
        "## A custom mapping with companies, against the Default preset",
        "",
        f"The calls figure's stream again ({mapping['identified_events']} identified events from "
        f"{mapping['people']} people: the same kinds, in the same order), through `docs/mapping.example.json` "
        "(the Default preset and ten fields of the account's own, with company fields): every event also "
        "carries the traits that mapping fills (plan, seats, beta, trial end, region, account manager, first "
        "source, mobile, language, time zone), and names the company the person works for, one of "
        f"{mapping['companies']}: as `traits.company` (a name, or an object with a name), as "
        "`context.groupId`, or both. A third of the returning people's changes also bring a new plan or seat "
        f"count. {groups} group events (name, website, industry, plan, description) are spread evenly over the "
        f"stream: {kinds.get('group_first', 0)} first ones, which create the company or complete the one a "
        f"person's event created by its name, {kinds.get('group_change', 0)} with a new plan and "
        f"{kinds.get('group_same', 0)} repeating the last. Sent, drained and counted as the calls figure is "
        "(same arrival rate, rate limit and retry pollers), with the identity map on. The sandbox declares "
        f"the mapping's custom contact fields with their types and choices: {declared}.",
        "",
        f"Before the run, {seeded} of the {mapping['people']} people already have a contact an agent made "
        "(their first event is `first_existing` below): the name and email of their first event, "
        f"{mapping['existing_with_external_id']} of them with their user id as unique_external_id, and "
        f"{mapping['existing_with_agent_values']} with a mobile and an account manager the agent entered (other "
        "than the events'), which the mapping's two `if_empty` rules must leave alone. The baseline is the "
        "Default preset over the calls stream with the same contacts made beforehand, run here. The first row "
        f"below, without them, is {source}: the path of calls_per_event. Handler time is the ingest handler's wall time "
        "over all its invocations divided by the events (DynamoDB in moto and the sandbox on loopback "
        "included): what Signal waits for per event. The retry function's time is beside it. Figures only: "
        "no target.",
        "",
        "| path | events | calls | calls per event | 429s | outcomes | not final | parked | contacts / people | "
        "contacts with a company | companies | contacts without the newest traits | contacts agents made | "
        "`GET /contacts/:id` | of them right after a 409 | of known contacts | values agents entered kept | "
        "ingest ms per event | "
        "ingest CPU ms per event | retry handler ms | time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- | --- | --- |",
    ]
    for key, path in paths.items():
        outcomes = ", ".join(f"{name} {n}" for name, n in path["final"].items())
        agents = existing.get(key)
        kept = f"{agents['kept']}/{agents['entered']}" if agents else "-"
        lines.append(
            f"| {names[key]} | {path['events']} | {path['calls']} | {path['calls_per_event']:.3f} | "
            f"{path['by_status'].get('429', 0)} | {outcomes} | {path['not_final']} | {path['left']['dlq']} | "
            f"{path['contacts']} / {path['people']} | {path.get('contacts_with_company', 0)} | "
            f"{path.get('companies', 0)} | {path['contacts_not_latest']} | {len(path.get('seeded', []))} | "
            f"{path['contact_reads']} | {path['contact_reads_after_409']} | {path['contact_reads_known']} | {kept} | "
            f"{path['ms_per_event']:.2f} | "
            f"{path['cpu_ms_per_event']:.2f} | {path['retry_ms']:.0f} | {path['seconds']:.0f} s |"
        )
    default, custom = paths["default"], paths["mapping"]
    lines += [
        "",
        f"Ratios (example mapping / Default preset): calls per event "
        f"{custom['calls_per_event'] / default['calls_per_event']:.3f}, ingest ms per event "
        f"{custom['ms_per_event'] / default['ms_per_event']:.2f}, ingest CPU ms per event "
        f"{custom['cpu_ms_per_event'] / default['cpu_ms_per_event']:.2f}.",
        "",
        f"Contact reads (`GET /contacts/:id`, the sandbox's log): the example mapping {custom['contact_reads']} "
        f"({custom['contact_reads_after_409']} right after a create's 409, {custom['contact_reads_known']} of "
        f"contacts the identity map knew), the Default preset {default['contact_reads']} "
        f"({default['contact_reads_after_409']} and {default['contact_reads_known']}). A create that finds the "
        "contact there (409) is followed by a read under either mapping, as the identity map knows nothing of "
        "that contact (its consent tag, its unique_external_id), and again when a 429 sends the event back "
        "before the map learnt the contact; the same read tells the example mapping which `if_empty` fields "
        "the contact holds, and the map remembers it. A known contact is read only when the map cannot answer "
        "for it: the reads `if_empty` costs are the example mapping's reads of known contacts beyond the "
        f"Default preset's, {mapping['if_empty_reads']} "
        f"({mapping['if_empty_reads'] / seeded if seeded else 0.0:.3f} per contact agents made). After the run, of the values agents entered "
        f"in those fields, the example mapping kept {existing['mapping']['kept']} of "
        f"{existing['mapping']['entered']} and overwrote {len(existing['mapping']['overwritten'])}; of the "
        f"fields they left empty, the events filled {existing['mapping']['filled']} of "
        f"{existing['mapping']['filled'] + existing['mapping']['empty']}.",
    ]
    lines += methods_markdown(compared, names)
    order = ("first", "first_existing", "change", "same", "group_first", "group_change", "group_same")
    lines += kinds_markdown(compared, names, order, same_stream=False)
    lines += where_markdown(custom, names["mapping"])
    return lines


def calls_markdown(calls: dict[str, Any]) -> list[str]:
    paths = calls["paths"]
    names = {"map": "identity map on", "no_map": "identity map off"}
    kinds = calls["kinds"]
    lines = [
        "",
        "## Freshdesk calls per event, with the identity map and without it",
        "",
        f"A seeded stream of {calls['events']} identified events from {calls['people']} people: "
        f"{kinds['first']} first-time, {kinds['change']} returning with a change (a new last name or job "
        f"title), {kinds['same']} returning with nothing new (the same traits again). Half the people send "
        '`identify`, half `track` "Identified"; every event has marketing consent granted, a user id, an '
        "email and a timestamp that increases over the stream. The same stream is run twice against the "
        "sandbox, reset in between: with the identity map (the template default) and with "
        "IDENTITY_MAP_TABLE empty (the path before the map). Idempotency is on in both, as deployed.",
        "",
        f"One process stands in for Signal and the ingest function: the stream's webhook calls (single "
        f"events and batches of 5 to 25) go through the real handler one after another, spaced to "
        f"{calls['arrival_per_window']:.0f} events per rate window. Meanwhile two retry processes drain the "
        "retry queue through the SQS event source stand-in, until it stays empty. The sandbox allows "
        f"{calls['limit']} calls per {calls['window']:g} s window: Freshdesk's {calls['limit']} a minute with "
        f"time scaled down ten times, and FRESHDESK_RATE_WINDOW_SECONDS={calls['window']:g} likewise (other "
        "settings, such as RETRY_PACING_MAX_WAIT_SECONDS, as in the template). The webhook does not pace its "
        "calls; at this arrival rate it stays under the limit only while an event costs at most "
        f"{calls['limit'] / calls['arrival_per_window']:.2f} calls, less a batch's worth.",
        "",
        "Calls are counted from the sandbox's request log (every call, 429s and list lookups included); "
        "calls per event = calls / events. Outcomes are the webhook's answers and the retry function's "
        "log lines; each event's calls come from a wrapper around the method every delivery call goes "
        "through (bench instrumentation only).",
        "",
        "| path | calls | calls per event | 429s | list lookups | outcomes | not final | parked | "
        "contacts / people | contacts without the newest traits | time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, path in paths.items():
        outcomes = ", ".join(f"{name} {n}" for name, n in path["final"].items())
        lines.append(
            f"| {names[key]} | {path['calls']} | {path['calls_per_event']:.3f} | "
            f"{path['by_status'].get('429', 0)} | {path['list_calls']} | {outcomes} | {path['not_final']} | "
            f"{path['left']['dlq']} | {path['contacts']} / {path['people']} | {path['contacts_not_latest']} | "
            f"{path['seconds']:.0f} s |"
        )
    lines += methods_markdown(paths, names)
    lines += kinds_markdown(paths, names, ("first", "change", "same"))
    for key, path in paths.items():
        lines += where_markdown(path, names[key])
    return lines


def methods_markdown(paths: dict[str, dict[str, Any]], names: dict[str, str]) -> list[str]:
    lines = ["", "Calls by method and answer (the sandbox's log):", ""]
    lines += [
        "| call | answer | " + " | ".join(names[k] for k in paths) + " |",
        "| --- | --- |" + " --- |" * len(paths),
    ]
    methods = sorted({m for path in paths.values() for m in path["by_method"]})
    for method in methods:
        call, _, status = method.rpartition(" ")
        counts = " | ".join(str(path["by_method"].get(method, 0)) for path in paths.values())
        lines.append(f"| `{call}` | {status} | {counts} |")
    return lines


def kinds_markdown(
    paths: dict[str, dict[str, Any]], names: dict[str, str], kinds: tuple[str, ...], *, same_stream: bool = True
) -> list[str]:
    """Calls by kind of event. `same_stream`: every path ran the same stream, so they share the events column."""
    if same_stream:
        head = "| kind | events | " + " | ".join(f"calls ({names[k]}) | per event ({names[k]})" for k in paths)
        rule = "| --- | --- |" + " --- | --- |" * len(paths)
    else:
        head = "| kind | " + " | ".join(
            f"events ({names[k]}) | calls ({names[k]}) | per event ({names[k]})" for k in paths
        )
        rule = "| --- |" + " --- | --- | --- |" * len(paths)
    lines = ["", "Calls by kind of event:", "", head + " |", rule]
    for kind in kinds:
        rows = [path["per_kind"].get(kind, {"events": 0, "calls": 0}) for path in paths.values()]
        cells = [f"{row['calls']} | {row['calls'] / row['events']:.2f}" if row["events"] else "0 | -" for row in rows]
        if same_stream:
            lines.append(f"| {kind} | {rows[0]['events']} | " + " | ".join(cells) + " |")
        else:
            lines.append(
                f"| {kind} | "
                + " | ".join(f"{row['events']} | {cell}" for row, cell in zip(rows, cells, strict=True))
                + " |"
            )
    return lines


def where_markdown(path: dict[str, Any], name: str) -> list[str]:
    lines = [
        "",
        f"Where the calls go, {name} (per outcome: the webhook's answer, then each retry's):",
        "",
        "| outcome | events | calls | per event | most frequent calls of one event |",
        "| --- | --- | --- | --- | --- |",
    ]
    for outcome, row in path["per_path"].items():
        sequences = "; ".join(f"{seq} ({n})" for seq, n in row["sequences"].items())
        lines.append(
            f"| {outcome} | {row['events']} | {row['calls']} | {row['calls'] / row['events']:.2f} | {sequences} |"
        )
    lines += [
        "",
        f"{path['requests']} webhook calls in {path['webhook_seconds']:.1f} s ({path['requests_503']} answered "
        f"503 and sent again); {path['retry_invocations']} retry invocations for {path['retry_records']} "
        f"records; calls seen by the instrumented handlers: {path['instrumented_calls']} "
        f"(the sandbox logged {path['calls']}).",
    ]
    return lines


def markdown(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(out)


def plain(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def bench_line(figures: Figures) -> str:
    v = figures.values
    keys = [
        ("cold_ms", "{:.0f}"),
        ("cold_naive_ms", "{:.0f}"),
        ("cold_ratio", "{:.3f}"),
        ("cold_cpu_ratio", "{:.3f}"),
        ("cold_ratio_shipped", "{:.3f}"),
        ("warm_ratio", "{:.3f}"),
        ("warm_ratio_idempotency", "{:.3f}"),
        ("batch100_s", "{:.2f}"),
        ("batch100_accounted", "{}"),
        ("drain_ratio", "{:.3f}"),
        ("wasted_429", "{:.4f}"),
        ("drain_lost", "{}"),
        ("rss_mb", "{:.1f}"),
        ("usd_per_million", "{:.3f}"),
        ("usd_per_million_batch100", "{:.3f}"),
        ("memory_mb", "{}"),
        ("calls_per_event", "{:.3f}"),
        ("calls_per_event_no_map", "{:.3f}"),
        ("calls_ratio", "{:.3f}"),
        ("wasted_429_map", "{}"),
        ("calls_per_event_mapping", "{:.3f}"),
        ("mapping_calls_ratio", "{:.3f}"),
        ("wasted_429_mapping", "{}"),
        ("default_ms_per_event", "{:.2f}"),
        ("mapping_ms_per_event", "{:.2f}"),
        ("mapping_ms_ratio", "{:.3f}"),
        ("mapping_cpu_ratio", "{:.3f}"),
        ("seeded_contacts", "{}"),
        ("contact_reads_default", "{}"),
        ("contact_reads_mapping", "{}"),
        ("if_empty_reads", "{}"),
        ("if_empty_reads_per_seeded", "{:.3f}"),
        ("agent_values_kept", "{}"),
    ]
    return "BENCH " + " ".join(f"{key}={fmt.format(v[key])}" for key, fmt in keys if key in v)


def details_markdown(figures: Figures, command: str, elapsed: float) -> str:
    d = figures.details
    lines = [
        "# Benchmark results",
        "",
        f"`{command}` on {platform.machine()} Linux, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed:.0f} s. Timings are medians; every "
        "target is a ratio to a baseline measured in the same run (this machine is shared and noisy).",
        "",
        markdown(main_table(figures)),
        "",
    ]
    if "cold" in d:
        lines += [
            "## Cold start",
            "",
            "A fresh process imports the ingest handler and answers one event (Signed Up: secret read, "
            "idempotency claim, identity map lookup, Freshdesk POST, identity map write, idempotency record, log "
            "line, EMF metrics). Freshdesk, AWS "
            "(moto server via AWS_ENDPOINT_URL) and the extension stand-in run in another process.",
            "",
            "| variant | cold ms | import ms | first event ms | CPU ms | process wall ms | modules | boto3 imported |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        labels = {
            "ours": "connector, secret via the extension (template default)",
            "ours_no_idempotency": "connector, extension, EnableIdempotency=false, EnableIdentityMap=false",
            "ours_boto3_secret": "connector, secret via boto3 (before)",
            "naive": "naive baseline (Logger, Metrics, Tracer, boto3 clients at import)",
        }
        for name, row in d["cold"].items():
            lines.append(
                f"| {labels[name]} | {row['cold_ms']:.0f} | {row['import_ms']:.0f} | {row['first_event_ms']:.0f} "
                f"| {row['cpu_ms']:.0f} | {row['process_wall_ms']:.0f} | {row['modules']:.0f} "
                f"| {'yes' if row['boto3_loaded'] else 'no'} |"
            )
        shipped = d.get("cold_shipped")
        if shipped:
            lines += [
                "",
                "Above, every module loads from bytecode (the bench compiles the connector first; site-packages "
                "have theirs). `sam build` copies the layer without `.pyc` files, and Lambda cannot write them "
                "to its read-only /opt, so a real cold start also compiles every layer module it imports. "
                "Emulated with PYTHONPYCACHEPREFIX holding bytecode for the standard library and boto3 only:",
                "",
                "| variant (layer without bytecode) | cold ms | import ms | first event ms | CPU ms |",
                "| --- | --- | --- | --- | --- |",
            ]
            for name in ("ours", "naive"):
                row = shipped[name]
                lines.append(
                    f"| {labels[name]} | {row['cold_ms']:.0f} | {row['import_ms']:.0f} | "
                    f"{row['first_event_ms']:.0f} | {row['cpu_ms']:.0f} |"
                )
            lines.append(f"\nRatio without bytecode: {shipped['ours']['cold_ms'] / shipped['naive']['cold_ms']:.2f}.")
        lines += [
            "",
            "Import time by package (`python -X importtime`, one run, ms; the modules' own times summed):",
            "",
            "| package | connector | naive |",
            "| --- | --- | --- |",
        ]
        ours, naive = d["imports"]["ours"], d["imports"]["naive"]
        for package in list(dict.fromkeys(list(ours)[:10] + list(naive)[:10])):
            lines.append(f"| {package} | {ours.get(package, 0):.1f} | {naive.get(package, 0):.1f} |")
    if "warm" in d:
        lines += [
            "",
            "## Warm per-event time",
            "",
            "One process answers single events in turn with a bare urllib3 POST of the same contact body "
            "to the same sandbox (keep-alive), rounds of events, medians per round.",
            "",
            "| configuration | handler ms | bare POST ms | ratio | handler CPU ms | round ratios |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for key, label in (
            ("warm", "EnableIdempotency=false, EnableIdentityMap=false (no DynamoDB)"),
            ("warm_idempotency", "template default (idempotency and identity map on)"),
        ):
            w = d[key]
            lines.append(
                f"| {label} | {w['handler_ms']:.2f} | {w['bare_ms']:.2f} | {w['ratio']:.2f} | "
                f"{w['handler_cpu_ms']:.2f} | {', '.join(f'{r:.2f}' for r in w['round_ratios'])} |"
            )
    if "batch" in d:
        b = d["batch"]
        lines += [
            "",
            "## Batch of 100",
            "",
            f"The sandbox adds {BATCH_DELAY * 1000:.0f} ms to every answer. Default settings: "
            f"{', '.join(f'{r["seconds"]:.2f} s' for r in b['runs'])} (median {b['seconds']:.2f} s); "
            f"handler CPU {b['cpu_ms']:.0f} ms per batch.",
            "",
            "| BATCH_CONCURRENCY | seconds | delivered | CPU ms |",
            "| --- | --- | --- | --- |",
        ]
        for concurrency, row in d.get("batch_sweep", {}).items():
            lines.append(f"| {concurrency} | {row['seconds']:.2f} | {row['delivered']} | {row['cpu_ms']:.0f} |")
    if "drain" in d:
        retry_rss = max(p["rss_kb"] for p in d["drain"]["pollers"]) / 1024
        lines += [
            "",
            "## Draining a backlog under the rate limit",
            "",
            f"{DRAIN_BACKLOG} events queued in the retry queue, drained by {DRAIN_POLLERS} concurrent retry "
            f"processes (SqsEventSource, as MaximumConcurrency {DRAIN_POLLERS}) against a sandbox limit of "
            f"{DRAIN_LIMIT} calls per {DRAIN_WINDOW:g} s window (Freshdesk: per minute; "
            f"FRESHDESK_RATE_WINDOW_SECONDS={DRAIN_WINDOW:g} here). Deliveries are counted over the first "
            f"{DRAIN_MEASURED_WINDOWS} windows, while the backlog outlasts them.",
            "",
            "| retry function | delivered / ideal | rate | Freshdesk calls | 429s | lost | drain time |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for key, label in (("drain", "paced (now)"), ("drain_unpaced", "unpaced (before)")):
            if key in d:
                r = d[key]
                lines.append(
                    f"| {label} | {r['delivered_in_measured_windows']}/{r['ideal']} = {r['ratio']:.3f} | "
                    f"{r['rate_per_s']:.2f}/s of {r['limit_per_s']:.2f}/s | {r['calls']} | {r['429']} "
                    f"({r['wasted_429']:.1%}) | {r['lost']} | {r['drain_seconds']:.1f} s |"
                )
        lines += ["", f"Peak RSS of a retry process (boto3 loaded for SQS): {retry_rss:.1f} MB."]
    if "calls" in d:
        lines += calls_markdown(d["calls"])
    if "mapping" in d:
        lines += mapping_markdown(d["mapping"])
    if "rss" in d:
        rss = d["rss"]
        lines += [
            "",
            "## Memory",
            "",
            f"Peak RSS (ru_maxrss) of a warm ingest process after 20 single events and a batch of 100: "
            f"{rss['ours']['rss_kb_before_queue'] / 1024:.1f} MB; after also queueing one event (boto3 "
            f"imported for SQS): {rss['ours']['rss_kb'] / 1024:.1f} MB. Naive baseline, same events: "
            f"{rss['naive']['rss_kb'] / 1024:.1f} MB. Lambda's own runtime process and the extension "
            "use memory of their own on top.",
        ]
    if "cost" in d:
        lines += [
            "",
            "## Cost and memory size",
            "",
            "| memory | CPU share | est. cold start (bytecode / as shipped) | billed ms per event | est. batch of 100 | USD per million events | batches of 100 |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in d["memory_sizes"]:
            lines.append(
                f"| {row['memory_mb']} MB | {row['cpu_share']:.3f} | {row['est_cold_ms']:.0f} / "
                f"{row['est_cold_shipped_ms']:.0f} ms | "
                f"{row['event_billed_ms']} | {row['est_batch_s']:.2f} s | ${row['total']:.3f} | "
                f"${row['total_batch100']:.3f} |"
            )
        cost = d["cost"]
        lines += [
            "",
            f"At the configured {cost['memory_mb']} MB, per million single events: HTTP API "
            f"${cost['http_api']:.2f}, Lambda requests ${cost['lambda_requests']:.2f}, Lambda compute "
            f"${cost['lambda_compute']:.3f}, DynamoDB idempotency ${cost['dynamodb']:.3f}, queued share "
            f"${cost['queued']:.3f}: ${cost['total']:.2f} (${cost['total_without_idempotency']:.2f} with "
            "EnableIdempotency=false).",
            "",
            "Assumptions: public on-demand prices for US East (N. Virginia), arm64 (constants in "
            "`devtools/signal_freshdesk_dev/bench/model.py`, with the pricing pages they come from): HTTP API "
            f"${HTTP_API_USD_PER_MILLION:.2f}/million requests; Lambda ${LAMBDA_ARM_USD_PER_GB_SECOND}/GB-s and "
            f"${LAMBDA_USD_PER_MILLION_REQUESTS:.2f}/million requests; SQS ${SQS_USD_PER_MILLION_REQUESTS:.2f}/million "
            f"requests; DynamoDB on demand ${DYNAMODB_USD_PER_MILLION_WRITES}/million writes, "
            f"${DYNAMODB_USD_PER_MILLION_READS}/million reads. No free tier. One event per webhook call "
            f"unless stated; each Freshdesk call takes {FRESHDESK_LATENCY_MS:.0f} ms from AWS; the function's "
            f"own work is its CPU time measured here, divided by the CPU share of the memory size (one "
            f"vCPU at {MB_PER_VCPU} MB, taken as one core of this machine); {COLD_SHARE:.0%} of invocations "
            f"are cold (INIT is billed); {QUEUED_SHARE:.0%} of events are queued once (3 SQS requests, one "
            "retry invocation, an idempotency read and write). Not included: CloudWatch Logs ingestion "
            "(about 0.3 KB per event), Secrets Manager calls (one per container per 5 minutes), data transfer.",
            "",
        ]
    return "\n".join(lines)
