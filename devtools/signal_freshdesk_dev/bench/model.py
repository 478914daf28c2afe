"""The benchmark's targets, scaled-down drain settings, prices and cost assumptions, and the cost model."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from signal_freshdesk.core.settings import Settings

from ..handlers import REPO_ROOT

TEMPLATE = REPO_ROOT / "template.yaml"

# -- targets -----------------------------------------------------------------------------------------------
COLD_RATIO_TARGET = 0.4
WARM_RATIO_TARGET = 1.5
BATCH_TARGET_SECONDS = 2.5
BATCH_EVENTS = 100
BATCH_DELAY = 0.15  # seconds the sandbox adds to every answer in the batch test
DRAIN_RATIO_TARGET = 0.95
WASTED_429_TARGET = 0.02
LAMBDA_MEMORY_FLOOR_MB = 128
UNLIMITED = 10**6  # the sandbox's rate limit outside the drain test

# -- the drain: Freshdesk's per-minute limit, with time scaled down ---------------------------------
DRAIN_LIMIT = 40  # calls per window
DRAIN_WINDOW = 5.0  # seconds per window (Freshdesk: 60)
DRAIN_MEASURED_WINDOWS = 6
DRAIN_BACKLOG = DRAIN_LIMIT * DRAIN_MEASURED_WINDOWS + DRAIN_LIMIT // 2  # outlasts the measured windows
DRAIN_POLLERS = 2  # = the template's RetryMaxConcurrency default (MaximumConcurrency)

# -- the calls figure: Freshdesk calls per event, with the identity map and without it ---------------------
CALLS_PER_EVENT_TARGET = 0.85  # with the identity map
CALLS_RATIO_TARGET = 0.4  # with the map / without it, same stream, same run
CALLS_WASTED_429_TARGET = 0  # 429s with the map
CALLS_EVENTS = 1000  # identified events, all with marketing consent granted
CALLS_PEOPLE = 300  # so 30% of the events are a person's first
CALLS_SHARES = {"first": 0.3, "change": 0.5, "same": 0.2}  # "same": returning with nothing new
CALLS_SEED = 20261130
CALLS_LIMIT = 200  # calls per window: Freshdesk's 200 a minute ...
CALLS_WINDOW = 6.0  # ... with time scaled down ten times (FRESHDESK_RATE_WINDOW_SECONDS=6 likewise)
# Signal sends the stream at a steady rate: 1,000 events over six windows (six minutes at Freshdesk's
# scale). Requests are spaced so no window sees more than this plus one batch: under the limit whenever
# an event costs at most one call.
CALLS_ARRIVAL_PER_WINDOW = CALLS_EVENTS / 6
CALLS_SINGLE_SHARE = 0.3  # webhook calls carrying one event; the others carry a batch of ...
CALLS_BATCH_SIZES = (5, 25)  # ... this many events (inclusive)
CALLS_POLLERS = 2  # retry processes, as MaximumConcurrency 2

# -- the mapping figure: the calls stream again, through a ten-field custom mapping with companies ---------
MAPPING_FILE = REPO_ROOT / "docs" / "mapping.example.json"
MAPPING_COMPANIES = 4  # the companies the people of the stream work for
MAPPING_GROUP_SHARE = 0.04  # group events added to the stream, per event of the calls stream
MAPPING_GROUP_CHANGE_SHARE = 0.3  # of a company's later group events, those with a new plan (the others repeat)
# Of the stream's people, those whose contact an agent made before the connector saw them (in both runs
# of the figure); half of those contacts hold a mobile and an account manager an agent entered.
MAPPING_EXISTING_SHARE = 0.2

# -- AWS prices used for usd_per_million (public on-demand prices, US East (N. Virginia), arm64) ----
# "Amazon API Gateway pricing" page, HTTP APIs: $1.00 per million requests (first 300 million a month).
HTTP_API_USD_PER_MILLION = 1.00
# "AWS Lambda pricing" page, Arm price: $0.0000133334 per GB-second (first 7.5 billion GB-s a month)
# and $0.20 per million requests.
LAMBDA_ARM_USD_PER_GB_SECOND = 0.0000133334
LAMBDA_USD_PER_MILLION_REQUESTS = 0.20
# "Amazon SQS pricing" page, standard queues: $0.40 per million requests (after the free first million).
SQS_USD_PER_MILLION_REQUESTS = 0.40
# "Amazon DynamoDB pricing" page, on-demand capacity: $0.625 per million write request units and
# $0.125 per million read request units (items under 1 KB: one unit each).
DYNAMODB_USD_PER_MILLION_WRITES = 0.625
DYNAMODB_USD_PER_MILLION_READS = 0.125
# "Configure Lambda function memory" (Lambda developer guide): CPU is allocated in proportion to
# memory, one vCPU at 1,769 MB. Assumed: one such vCPU is as fast as one core of this machine.
MB_PER_VCPU = 1769

# -- cost assumptions (stated in bench/results.md) ----------------------------------------------------
FRESHDESK_LATENCY_MS = 150.0  # one Freshdesk call from AWS, as the batch test's sandbox delay
COLD_SHARE = 0.01  # share of invocations that are cold starts
QUEUED_SHARE = 0.02  # share of events queued once (429, 5xx) and delivered by the retry function
SQS_REQUESTS_PER_QUEUED = 3  # SendMessage, ReceiveMessage, DeleteMessage (pessimistic: one message each)


@dataclass
class Figures:
    values: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


# -- cost and memory size -----------------------------------------------------------------------------
def configured_memory_mb() -> int:
    match = re.search(r"^\s+MemorySize:\s*(\d+)", TEMPLATE.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 128


def cost_model(figures: Figures, memory_mb: int) -> dict[str, Any]:
    """USD per million events at `memory_mb`, from the measured CPU work and the assumptions above."""
    share = min(1.0, memory_mb / MB_PER_VCPU)
    warm = figures.details["warm_idempotency"]
    cold = figures.details["cold"]["ours"]
    shipped = figures.details.get("cold_shipped", {}).get("ours")
    # The function's own work per event, measured as CPU time here and slowed by the CPU share Lambda
    # gives this memory size, plus the wait for Freshdesk; a cold start adds its INIT work.
    event_ms = warm["handler_cpu_ms"] / share + FRESHDESK_LATENCY_MS
    cold_extra_ms = (shipped or cold)["cpu_ms"] / share  # as the layer is shipped today (no bytecode)
    billed_ms = math.ceil(event_ms + COLD_SHARE * cold_extra_ms)
    gb = memory_mb / 1024
    lambda_compute = gb * billed_ms / 1000 * LAMBDA_ARM_USD_PER_GB_SECOND * 1e6
    lambda_requests = LAMBDA_USD_PER_MILLION_REQUESTS
    http = HTTP_API_USD_PER_MILLION
    # A queued event: SQS requests, one more invocation and its compute, idempotency read + write.
    queued = QUEUED_SHARE * (
        SQS_REQUESTS_PER_QUEUED * SQS_USD_PER_MILLION_REQUESTS
        + lambda_requests
        + lambda_compute
        + DYNAMODB_USD_PER_MILLION_READS
        + DYNAMODB_USD_PER_MILLION_WRITES
    )
    # Idempotency (the template's default): a conditional write to claim, a write to complete.
    dynamodb = 2 * DYNAMODB_USD_PER_MILLION_WRITES
    # Batches of 100: one request and one invocation per 100 events; compute from the batch test.
    batch = figures.details["batch"]
    batch_ms = batch["cpu_ms"] / share + math.ceil(BATCH_EVENTS / Settings().batch_concurrency) * FRESHDESK_LATENCY_MS
    batch_compute = gb * math.ceil(batch_ms) / 1000 * LAMBDA_ARM_USD_PER_GB_SECOND * 1e6 / BATCH_EVENTS
    batch_total = (http + lambda_requests) / BATCH_EVENTS + batch_compute + queued + dynamodb
    return {
        "memory_mb": memory_mb,
        "cpu_share": share,
        "event_billed_ms": billed_ms,
        "est_cold_ms": cold["cpu_ms"] / share + max(0.0, cold["cold_ms"] - cold["cpu_ms"]),
        "est_cold_shipped_ms": (
            shipped["cpu_ms"] / share + max(0.0, shipped["cold_ms"] - shipped["cpu_ms"]) if shipped else float("nan")
        ),
        "est_batch_s": batch_ms / 1000,
        "http_api": http,
        "lambda_requests": lambda_requests,
        "lambda_compute": lambda_compute,
        "queued": queued,
        "dynamodb": dynamodb,
        "total": http + lambda_requests + lambda_compute + queued + dynamodb,
        "total_without_idempotency": http
        + lambda_requests
        + lambda_compute
        + queued
        - QUEUED_SHARE * (DYNAMODB_USD_PER_MILLION_READS + DYNAMODB_USD_PER_MILLION_WRITES),
        "total_batch100": batch_total,
    }
