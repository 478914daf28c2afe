"""The performance benchmark: cold start, per-event overhead, batches, rate-limited drain, memory, cost.

    python -m signal_freshdesk_dev.bench           (or: make bench)

Each figure is measured against a baseline run side by side in the same run, because this machine
(2 shared cores) is noisy: targets are ratios, timings are medians of several runs. Every process
being measured is a fresh `bench_child.py` process standing in for one Lambda execution environment;
Freshdesk (the sandbox), AWS (moto as a server) and the Parameters and Secrets extension (a stand-in)
live in another process (`bench_services.py`), so their import and CPU costs are not counted. Prints
a table, writes it with the details to bench/results.md and ends with one `BENCH key=value ...` line.
Never part of the test suite: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signal_freshdesk.config import Settings

from .bench_child import signal_event
from .bench_services import API_KEY, BenchServices
from .handlers import REPO_ROOT
from .local_aws import FAKE_CREDENTIALS, REGION, StackResources
from .apigw import LOCAL_WEBHOOK_TOKEN

CHILD = Path(__file__).with_name("bench_child.py")
TEMPLATE = REPO_ROOT / "template.yaml"
RESULTS = REPO_ROOT / "bench" / "results.md"

# -- targets (the issue's) --------------------------------------------------------------------------
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
DRAIN_LIMIT = 40          # calls per window
DRAIN_WINDOW = 5.0        # seconds per window (Freshdesk: 60)
DRAIN_MEASURED_WINDOWS = 6
DRAIN_BACKLOG = DRAIN_LIMIT * DRAIN_MEASURED_WINDOWS + DRAIN_LIMIT // 2  # outlasts the measured windows
DRAIN_POLLERS = 2         # = the template's RetryMaxConcurrency default (MaximumConcurrency)

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
COLD_SHARE = 0.01             # share of invocations that are cold starts
QUEUED_SHARE = 0.02           # share of events queued once (429, 5xx) and delivered by the retry function
SQS_REQUESTS_PER_QUEUED = 3   # SendMessage, ReceiveMessage, DeleteMessage (pessimistic: one message each)


@dataclass
class Figures:
    values: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


# -- children -----------------------------------------------------------------------------------------
def child_env(services: BenchServices, *, extension: bool = True, idempotency: bool = True,
              **extra: str) -> dict[str, str]:
    """The function's environment as the template sets it (defaults), pointed at the stand-ins."""
    info = services.info
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))
           and k not in ("BATCH_CONCURRENCY", "SECRETS_EXTENSION", "IDEMPOTENCY_TABLE")}
    env.update(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = info["aws_endpoint"]
    resources = StackResources(**info["resources"])
    env.update(resources.environment(freshdesk_base_url=info["freshdesk_url"], POWERTOOLS_LOG_LEVEL="INFO"))
    if not idempotency:
        env.pop("IDEMPOTENCY_TABLE", None)
    # What Lambda's environment tells Powertools and the X-Ray SDK (the naive baseline's Tracer).
    env.update({
        "AWS_LAMBDA_FUNCTION_NAME": "signal-freshdesk-bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13", "LAMBDA_TASK_ROOT": str(REPO_ROOT / "functions" / "ingest"),
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    })
    if extension:
        env["SECRETS_EXTENSION"] = "on"
        env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(info["extension_port"])
    else:
        env["SECRETS_EXTENSION"] = "off"
    env.update(extra)
    return env


def run_child(mode: str, which: str, params: dict[str, Any], env: dict[str, str], *, timeout: float = 300,
              importtime: bool = False) -> dict[str, Any]:
    params = {"root": str(REPO_ROOT), "token": LOCAL_WEBHOOK_TOKEN, "api_key": API_KEY,
              "prefix": uuid.uuid4().hex[:10], **params}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        params_path, out_path = Path(tmp, "params.json"), Path(tmp, "out.json")
        params_path.write_text(json.dumps(params))
        args = [sys.executable, "-P"] + (["-X", "importtime"] if importtime else [])
        args += [str(CHILD), mode, which, str(params_path), str(out_path)]
        started = time.perf_counter()
        done = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout, check=False, text=True)
        wall = (time.perf_counter() - started) * 1000
        if done.returncode != 0 or not out_path.exists():
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"bench child {mode}/{which} failed ({done.returncode}):\n{tail}")
        result = json.loads(out_path.read_text())
    result["process_wall_ms"] = wall
    if importtime:
        result["importtime"] = done.stderr
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- measurements -------------------------------------------------------------------------------------
COLD_VARIANTS = {
    # name: (handler, extension, idempotency)
    "ours": ("ours", True, True),                 # as deployed with the extension layer (template defaults)
    "ours_no_idempotency": ("ours", True, False),
    "ours_boto3_secret": ("ours", False, True),   # before: the secret read with boto3
    "naive": ("naive", False, False),
}


# What the layer holds: `sam build` copies these without bytecode, so Lambda compiles them on every cold
# start (its read-only /opt cannot keep .pyc). The standard library and the runtime's boto3 have theirs.
LAYER_PACKAGES = ("aws_lambda_powertools", "urllib3", "phonenumbers", "jmespath", "typing_extensions.py",
                  "aws_xray_sdk", "wrapt")
PYCACHE = REPO_ROOT / ".local" / "bench-pycache"


def shipped_layer_env(env: dict[str, str]) -> dict[str, str]:
    """`env`, with bytecode only where Lambda has it (PYTHONPYCACHEPREFIX, see prepare_shipped_layer)."""
    return {**env, "PYTHONPYCACHEPREFIX": str(PYCACHE), "PYTHONDONTWRITEBYTECODE": "1"}


def prepare_shipped_layer(services: BenchServices) -> None:
    """Fill PYCACHE with the bytecode of everything the handlers import, then remove the layer's and ours."""
    import shutil
    import sysconfig

    for which, extension, idempotency in (("ours", True, True), ("naive", False, False)):
        env = child_env(services, extension=extension, idempotency=idempotency)
        env = {**env, "PYTHONPYCACHEPREFIX": str(PYCACHE)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        run_child("cold", which, {}, env)
    site = Path(sysconfig.get_paths()["purelib"])
    for name in LAYER_PACKAGES:
        target = PYCACHE / site.relative_to("/") / name.removesuffix(".py")
        shutil.rmtree(target, ignore_errors=True)
        for pyc in (PYCACHE / site.relative_to("/")).glob(f"{name.removesuffix('.py')}.*.pyc"):
            pyc.unlink()
    shutil.rmtree(PYCACHE / REPO_ROOT.relative_to("/"), ignore_errors=True)


def measure_cold(services: BenchServices, figures: Figures, runs: int) -> None:
    log(f"cold start: {runs} fresh processes per variant ...")
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in COLD_VARIANTS}
    names = list(COLD_VARIANTS)
    for r in range(runs):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
            which, extension, idempotency = COLD_VARIANTS[name]
            env = child_env(services, extension=extension, idempotency=idempotency)
            result = run_child("cold", which, {}, env)
            if result["status"] != 201:
                raise RuntimeError(f"cold {name}: the first event answered {result['status']}, not 201")
            samples[name].append(result)
    summary = {}
    for name, rows in samples.items():
        summary[name] = {key: median([row[key] for row in rows])
                         for key in ("cold_ms", "import_ms", "first_event_ms", "cpu_ms", "process_wall_ms",
                                     "modules")}
        summary[name]["boto3_loaded"] = any(row["boto3_loaded"] for row in rows)
    figures.details["cold"] = summary
    figures.values["cold_ms"] = summary["ours"]["cold_ms"]
    figures.values["cold_naive_ms"] = summary["naive"]["cold_ms"]
    figures.values["cold_ratio"] = summary["ours"]["cold_ms"] / summary["naive"]["cold_ms"]
    # CPU time is steadier than wall time when other work shares the machine's cores.
    figures.values["cold_cpu_ratio"] = summary["ours"]["cpu_ms"] / summary["naive"]["cpu_ms"]
    figures.values["cold_ratio_boto3_secret"] = summary["ours_boto3_secret"]["cold_ms"] / summary["naive"]["cold_ms"]

    log("cold start: the layer without bytecode, as `sam build` ships it ...")
    prepare_shipped_layer(services)
    shipped: dict[str, list[dict[str, Any]]] = {"ours": [], "naive": []}
    for r in range(max(3, runs // 2)):
        for name in ("ours", "naive") if r % 2 == 0 else ("naive", "ours"):
            which, extension, idempotency = COLD_VARIANTS[name]
            env = shipped_layer_env(child_env(services, extension=extension, idempotency=idempotency))
            shipped[name].append(run_child("cold", which, {}, env))
    figures.details["cold_shipped"] = {
        name: {key: median([row[key] for row in rows]) for key in ("cold_ms", "import_ms", "first_event_ms", "cpu_ms")}
        for name, rows in shipped.items()}
    figures.values["cold_ratio_shipped"] = (figures.details["cold_shipped"]["ours"]["cold_ms"]
                                            / figures.details["cold_shipped"]["naive"]["cold_ms"])

    log("cold start: import-time breakdown (python -X importtime) ...")
    breakdown = {}
    for name in ("ours", "naive"):
        which, extension, idempotency = COLD_VARIANTS[name]
        result = run_child("cold", which, {}, child_env(services, extension=extension, idempotency=idempotency),
                           importtime=True)
        breakdown[name] = import_breakdown(result["importtime"])
    figures.details["imports"] = breakdown


def import_breakdown(text: str) -> dict[str, float]:
    """Milliseconds of import time per top-level package (sum of the modules' own times)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if not match:
            continue
        package = match.group(4).split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1000
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def measure_warm(services: BenchServices, figures: Figures, rounds: int, per_round: int) -> None:
    for label, idempotency in (("", False), ("_idempotency", True)):
        log(f"warm: {rounds} x {per_round} single events against bare POSTs (idempotency {'on' if idempotency else 'off'}) ...")
        services.call("reset")
        env = child_env(services, idempotency=idempotency)
        result = run_child("warm", "ours", {"rounds": rounds, "per_round": per_round,
                                            "freshdesk_url": services.info["freshdesk_url"]}, env)
        unexpected = {k: n for k, n in result["statuses"].items() if k not in ("201", "bare_201")}
        if unexpected:
            raise RuntimeError(f"warm: answers other than 201 would skew the figure: {unexpected}")
        ratios = [r["handler_ms"] / r["bare_ms"] for r in result["rounds"]]
        figures.details[f"warm{label}"] = {
            "handler_ms": median([r["handler_ms"] for r in result["rounds"]]),
            "bare_ms": median([r["bare_ms"] for r in result["rounds"]]),
            "ratio": median(ratios), "round_ratios": ratios, "statuses": result["statuses"],
            "handler_cpu_ms": result["handler_cpu_ms_per_event"],
        }
        figures.values[f"warm_ratio{label}"] = median(ratios)


def measure_batch(services: BenchServices, figures: Figures, runs: int, sweep: list[int]) -> None:
    log(f"batch: {BATCH_EVENTS} events with {BATCH_DELAY * 1000:.0f} ms per Freshdesk answer, {runs} runs ...")
    services.call("reset")
    services.call("delay", BATCH_DELAY)
    try:
        result = run_child("batch", "ours", {"runs": runs, "events": BATCH_EVENTS}, child_env(services))
        seconds = [r["seconds"] for r in result["runs"]]
        accounted = all(r["results"] == BATCH_EVENTS
                        and sum(r["outcomes"].get(k, 0) for k in ("delivered", "queued")) == BATCH_EVENTS
                        for r in result["runs"])
        figures.details["batch"] = {"runs": result["runs"], "seconds": median(seconds), "accounted": accounted,
                                    "cpu_ms": median([r["cpu_ms"] for r in result["runs"]])}
        figures.values["batch100_s"] = median(seconds)
        figures.values["batch100_accounted"] = BATCH_EVENTS if accounted else min(
            r["outcomes"].get("delivered", 0) + r["outcomes"].get("queued", 0) for r in result["runs"])
        rows = {}
        for concurrency in sweep:
            log(f"batch: BATCH_CONCURRENCY={concurrency} ...")
            services.call("reset")
            services.call("delay", BATCH_DELAY)
            swept = run_child("batch", "ours", {"runs": 1, "events": BATCH_EVENTS},
                              child_env(services, BATCH_CONCURRENCY=str(concurrency)))["runs"][0]
            rows[concurrency] = {"seconds": swept["seconds"], "delivered": swept["outcomes"].get("delivered", 0),
                                 "cpu_ms": swept["cpu_ms"]}
        figures.details["batch_sweep"] = rows
    finally:
        services.call("delay", 0)


def measure_rss(services: BenchServices, figures: Figures) -> None:
    log("memory: peak RSS of a warm ingest process ...")
    services.call("reset")
    ours = run_child("rss", "ours", {"freshdesk_url": services.info["freshdesk_url"]}, child_env(services))
    services.call("reset")
    naive = run_child("rss", "naive", {"freshdesk_url": services.info["freshdesk_url"]},
                      child_env(services, extension=False, idempotency=False))
    figures.details["rss"] = {"ours": ours, "naive": naive}
    figures.values["rss_mb"] = ours["rss_kb"] / 1024
    figures.values["rss_naive_mb"] = naive["rss_kb"] / 1024


def queue_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attrs.values())


def empty_queue(sqs: Any, url: str) -> None:
    """Purge a queue that holds anything (SQS allows one purge a minute: wait for it if need be)."""
    ends = time.monotonic() + 70
    while queue_depth(sqs, url):
        try:
            sqs.purge_queue(QueueUrl=url)
            return
        except sqs.exceptions.PurgeQueueInProgress:
            if time.monotonic() > ends:
                raise
            time.sleep(5)


def measure_drain(services: BenchServices, figures: Figures, *, unpaced: bool = False) -> dict[str, Any]:
    import boto3

    label = "unpaced (before)" if unpaced else "paced"
    log(f"drain ({label}): {DRAIN_BACKLOG} queued events, {DRAIN_POLLERS} pollers, "
        f"limit {DRAIN_LIMIT} per {DRAIN_WINDOW:g} s ...")
    info = services.info
    resources = StackResources(**info["resources"])
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=info["aws_endpoint"],
                       aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing")
    for url in (resources.retry_queue_url, resources.dlq_url):
        empty_queue(sqs, url)
    services.call("reset")
    prefix = uuid.uuid4().hex[:8]
    now = time.time()
    entries = []
    for i in range(DRAIN_BACKLOG):
        event = signal_event(f"d{prefix}", i)
        entries.append({"Id": str(i % 10), "MessageBody": json.dumps({
            "v": 1, "messageId": event["messageId"], "outcome": "queued", "attempts": 1, "first_seen": now,
            "last_error": {"status": 429, "reason": "rate_limited", "error": "", "body": None}, "event": event})})
        if len(entries) == 10:
            sqs.send_message_batch(QueueUrl=resources.retry_queue_url, Entries=entries)
            entries = []
    services.call("rate_limit", DRAIN_LIMIT, DRAIN_WINDOW)
    env = child_env(services, FRESHDESK_RATE_WINDOW_SECONDS=str(DRAIN_WINDOW))
    env["LAMBDA_TASK_ROOT"] = str(REPO_ROOT / "functions" / "retry")
    params = {"root": str(REPO_ROOT), "token": LOCAL_WEBHOOK_TOKEN, "api_key": API_KEY, "prefix": prefix,
              "queue_url": resources.retry_queue_url, "timeout": 180, "unpaced": unpaced}
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        params_path = Path(tmp, "params.json")
        params_path.write_text(json.dumps(params))
        pollers = [subprocess.Popen([sys.executable, "-P", str(CHILD), "drain", "retry", str(params_path),
                                     str(Path(tmp, f"out{i}.json"))], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                   for i in range(DRAIN_POLLERS)]
        errors = [p.communicate(timeout=240)[1] for p in pollers]
        for poller, error in zip(pollers, errors):
            if poller.returncode != 0:
                raise RuntimeError(f"drain poller failed:\n{error[-2000:]}")
        stats = [json.loads(Path(tmp, f"out{i}.json").read_text()) for i in range(DRAIN_POLLERS)]
    services.call("rate_limit", UNLIMITED, 60)
    calls = [(status, at) for status, at, path in services.call("requests") if path.startswith("/api/")]
    contacts = services.call("contacts")
    left = {"retry_queue": queue_depth(sqs, resources.retry_queue_url), "dlq": queue_depth(sqs, resources.dlq_url)}
    start = min(at for _, at in calls)
    measured_until = start + DRAIN_MEASURED_WINDOWS * DRAIN_WINDOW
    in_windows = sum(1 for status, at in calls if status == 201 and at < measured_until)
    ideal = DRAIN_MEASURED_WINDOWS * DRAIN_LIMIT
    n429 = sum(1 for status, _ in calls if status == 429)
    last = max(at for status, at in calls if status == 201)
    result = {
        "delivered_in_measured_windows": in_windows, "ideal": ideal, "ratio": in_windows / ideal,
        "rate_per_s": in_windows / (DRAIN_MEASURED_WINDOWS * DRAIN_WINDOW), "limit_per_s": DRAIN_LIMIT / DRAIN_WINDOW,
        "calls": len(calls), "429": n429, "wasted_429": n429 / len(calls), "contacts": contacts,
        "backlog": DRAIN_BACKLOG, "left": left,
        "lost": DRAIN_BACKLOG - contacts - left["dlq"] - left["retry_queue"],
        "drain_seconds": last - start, "pollers": stats,
    }
    figures.details["drain_unpaced" if unpaced else "drain"] = result
    if not unpaced:
        figures.values["drain_ratio"] = result["ratio"]
        figures.values["wasted_429"] = result["wasted_429"]
        figures.values["drain_lost"] = result["lost"]
    return result


def compile_bytecode() -> None:
    """Write the .pyc files of the code being measured, as site-packages already have theirs.

    Otherwise (PYTHONDONTWRITEBYTECODE, a fresh checkout) every child would compile the connector from
    source while its dependencies load from bytecode, which measures neither case fairly.
    """
    import compileall

    for folder in (REPO_ROOT / "layers" / "connector" / "signal_freshdesk", REPO_ROOT / "functions",
                   Path(__file__).parent):
        compileall.compile_dir(folder, quiet=2)


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
    queued = QUEUED_SHARE * (SQS_REQUESTS_PER_QUEUED * SQS_USD_PER_MILLION_REQUESTS + lambda_requests
                             + lambda_compute + DYNAMODB_USD_PER_MILLION_READS + DYNAMODB_USD_PER_MILLION_WRITES)
    # Idempotency (the template's default): a conditional write to claim, a write to complete.
    dynamodb = 2 * DYNAMODB_USD_PER_MILLION_WRITES
    # Batches of 100: one request and one invocation per 100 events; compute from the batch test.
    batch = figures.details["batch"]
    batch_ms = batch["cpu_ms"] / share + math.ceil(BATCH_EVENTS / Settings().batch_concurrency) * FRESHDESK_LATENCY_MS
    batch_compute = gb * math.ceil(batch_ms) / 1000 * LAMBDA_ARM_USD_PER_GB_SECOND * 1e6 / BATCH_EVENTS
    batch_total = (http + lambda_requests) / BATCH_EVENTS + batch_compute + queued + dynamodb
    return {
        "memory_mb": memory_mb, "cpu_share": share, "event_billed_ms": billed_ms,
        "est_cold_ms": cold["cpu_ms"] / share + max(0.0, cold["cold_ms"] - cold["cpu_ms"]),
        "est_cold_shipped_ms": (shipped["cpu_ms"] / share + max(0.0, shipped["cold_ms"] - shipped["cpu_ms"])
                                if shipped else float("nan")),
        "est_batch_s": batch_ms / 1000,
        "http_api": http, "lambda_requests": lambda_requests, "lambda_compute": lambda_compute,
        "queued": queued, "dynamodb": dynamodb,
        "total": http + lambda_requests + lambda_compute + queued + dynamodb,
        "total_without_idempotency": http + lambda_requests + lambda_compute + queued - QUEUED_SHARE * (
            DYNAMODB_USD_PER_MILLION_READS + DYNAMODB_USD_PER_MILLION_WRITES),
        "total_batch100": batch_total,
    }


# -- report -------------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main_table(figures: Figures) -> list[list[str]]:
    v, d = figures.values, figures.details
    cold, warm, warm_i = d["cold"], d["warm"], d["warm_idempotency"]
    cost = d["cost"]
    rows = [["figure", "measured", "baseline (same run)", "target", "result"]]
    rows.append(["cold_ms / cold_ratio",
                 f"{v['cold_ms']:.0f} ms (import {cold['ours']['import_ms']:.0f} + first event "
                 f"{cold['ours']['first_event_ms']:.0f}); ratio {v['cold_ratio']:.2f} (CPU time: "
                 f"{v['cold_cpu_ratio']:.2f})",
                 f"naive handler {v['cold_naive_ms']:.0f} ms", f"ratio <= {COLD_RATIO_TARGET}",
                 verdict(v["cold_ratio"] <= COLD_RATIO_TARGET)])
    shipped = d.get("cold_shipped")
    if shipped:
        rows.append(["cold_ratio_shipped (layer without .pyc, as `sam build` ships it)",
                     f"{shipped['ours']['cold_ms']:.0f} ms; ratio {v['cold_ratio_shipped']:.2f}",
                     f"naive handler {shipped['naive']['cold_ms']:.0f} ms", f"ratio <= {COLD_RATIO_TARGET}",
                     verdict(v["cold_ratio_shipped"] <= COLD_RATIO_TARGET)])
    rows.append(["warm_ratio",
                 f"{warm['handler_ms']:.2f} ms per event; ratio {v['warm_ratio']:.2f}",
                 f"bare urllib3 POST {warm['bare_ms']:.2f} ms", f"<= {WARM_RATIO_TARGET}",
                 verdict(v["warm_ratio"] <= WARM_RATIO_TARGET)])
    rows.append(["warm_ratio_idempotency (template default)",
                 f"{warm_i['handler_ms']:.2f} ms per event; ratio {v['warm_ratio_idempotency']:.2f}",
                 f"bare urllib3 POST {warm_i['bare_ms']:.2f} ms", "(no target: 2 DynamoDB calls per event)",
                 "info"])
    rows.append(["batch100_s", f"{v['batch100_s']:.2f} s, {v['batch100_accounted']}/{BATCH_EVENTS} accounted for",
                 f"sequential {BATCH_EVENTS * BATCH_DELAY:.0f} s", f"<= {BATCH_TARGET_SECONDS} s, all accounted",
                 verdict(v["batch100_s"] <= BATCH_TARGET_SECONDS and v["batch100_accounted"] == BATCH_EVENTS)])
    drain = d["drain"]
    rows.append(["drain_ratio / wasted_429",
                 f"{drain['rate_per_s']:.2f} events/s, ratio {v['drain_ratio']:.3f}; 429s {drain['429']}/"
                 f"{drain['calls']} = {v['wasted_429']:.1%}; lost {drain['lost']}",
                 f"limit {drain['limit_per_s']:.2f}/s ({DRAIN_LIMIT} per {DRAIN_WINDOW:g} s)",
                 f">= {DRAIN_RATIO_TARGET}, <= {WASTED_429_TARGET:.0%}, none lost",
                 verdict(v["drain_ratio"] >= DRAIN_RATIO_TARGET and v["wasted_429"] <= WASTED_429_TARGET
                         and drain["lost"] == 0)])
    rows.append(["rss_mb", f"{v['rss_mb']:.1f} MB", f"Lambda {LAMBDA_MEMORY_FLOOR_MB} MB "
                 f"(naive: {v['rss_naive_mb']:.1f} MB)", f"fits in {LAMBDA_MEMORY_FLOOR_MB} MB",
                 verdict(v["rss_mb"] < LAMBDA_MEMORY_FLOOR_MB)])
    rows.append(["usd_per_million", f"${cost['total']:.2f} (single events, {cost['memory_mb']} MB)",
                 f"batches of 100: ${cost['total_batch100']:.2f}", "stated with assumptions", "info"])
    return rows


def markdown(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join(" --- " for _ in rows[0]) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(out)


def plain(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)


def bench_line(figures: Figures) -> str:
    v = figures.values
    keys = [("cold_ms", "{:.0f}"), ("cold_naive_ms", "{:.0f}"), ("cold_ratio", "{:.3f}"), ("cold_cpu_ratio", "{:.3f}"),
            ("cold_ratio_shipped", "{:.3f}"),
            ("warm_ratio", "{:.3f}"), ("warm_ratio_idempotency", "{:.3f}"), ("batch100_s", "{:.2f}"),
            ("batch100_accounted", "{}"), ("drain_ratio", "{:.3f}"), ("wasted_429", "{:.4f}"),
            ("drain_lost", "{}"), ("rss_mb", "{:.1f}"), ("usd_per_million", "{:.3f}"),
            ("usd_per_million_batch100", "{:.3f}"), ("memory_mb", "{}")]
    return "BENCH " + " ".join(f"{key}={fmt.format(v[key])}" for key, fmt in keys if key in v)


def details_markdown(figures: Figures, command: str, elapsed: float) -> str:
    d = figures.details
    lines = [
        "# Benchmark results", "",
        f"`{command}` on {platform.machine()} Linux, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed:.0f} s. Timings are medians; every "
        "target is a ratio to a baseline measured in the same run (this machine is shared and noisy).", "",
        markdown(main_table(figures)), "",
        "## Cold start", "",
        "A fresh process imports the ingest handler and answers one event (Signed Up: secret read, "
        "idempotency claim, Freshdesk POST, idempotency record, log line, EMF metrics). Freshdesk, AWS "
        "(moto server via AWS_ENDPOINT_URL) and the extension stand-in run in another process.", "",
        "| variant | cold ms | import ms | first event ms | CPU ms | process wall ms | modules | boto3 imported |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    labels = {"ours": "connector, secret via the extension (template default)",
              "ours_no_idempotency": "connector, extension, EnableIdempotency=false",
              "ours_boto3_secret": "connector, secret via boto3 (before)",
              "naive": "naive baseline (Logger, Metrics, Tracer, boto3 clients at import)"}
    for name, row in d["cold"].items():
        lines.append(f"| {labels[name]} | {row['cold_ms']:.0f} | {row['import_ms']:.0f} | {row['first_event_ms']:.0f} "
                     f"| {row['cpu_ms']:.0f} | {row['process_wall_ms']:.0f} | {row['modules']:.0f} "
                     f"| {'yes' if row['boto3_loaded'] else 'no'} |")
    shipped = d.get("cold_shipped")
    if shipped:
        lines += ["", "Above, every module loads from bytecode (the bench compiles the connector first; site-packages "
                  "have theirs). `sam build` copies the layer without `.pyc` files, and Lambda cannot write them "
                  "to its read-only /opt, so a real cold start also compiles every layer module it imports. "
                  "Emulated with PYTHONPYCACHEPREFIX holding bytecode for the standard library and boto3 only:", "",
                  "| variant (layer without bytecode) | cold ms | import ms | first event ms | CPU ms |",
                  "| --- | --- | --- | --- | --- |"]
        for name in ("ours", "naive"):
            row = shipped[name]
            lines.append(f"| {labels[name]} | {row['cold_ms']:.0f} | {row['import_ms']:.0f} | "
                         f"{row['first_event_ms']:.0f} | {row['cpu_ms']:.0f} |")
        lines.append(f"\nRatio without bytecode: {shipped['ours']['cold_ms'] / shipped['naive']['cold_ms']:.2f}.")
    lines += ["", "Import time by package (`python -X importtime`, one run, ms; the modules' own times summed):", "",
              "| package | connector | naive |", "| --- | --- | --- |"]
    ours, naive = d["imports"]["ours"], d["imports"]["naive"]
    for package in list(dict.fromkeys(list(ours)[:10] + list(naive)[:10])):
        lines.append(f"| {package} | {ours.get(package, 0):.1f} | {naive.get(package, 0):.1f} |")
    lines += ["", "## Warm per-event time", "",
              "One process answers single events in turn with a bare urllib3 POST of the same contact body "
              "to the same sandbox (keep-alive), rounds of events, medians per round.", "",
              "| configuration | handler ms | bare POST ms | ratio | handler CPU ms | round ratios |",
              "| --- | --- | --- | --- | --- | --- |"]
    for key, label in (("warm", "EnableIdempotency=false"), ("warm_idempotency", "template default (idempotency on)")):
        w = d[key]
        lines.append(f"| {label} | {w['handler_ms']:.2f} | {w['bare_ms']:.2f} | {w['ratio']:.2f} | "
                     f"{w['handler_cpu_ms']:.2f} | {', '.join(f'{r:.2f}' for r in w['round_ratios'])} |")
    b = d["batch"]
    lines += ["", "## Batch of 100", "",
              f"The sandbox adds {BATCH_DELAY * 1000:.0f} ms to every answer. Default settings: "
              f"{', '.join(f'{r['seconds']:.2f} s' for r in b['runs'])} (median {b['seconds']:.2f} s); "
              f"handler CPU {b['cpu_ms']:.0f} ms per batch.", "",
              "| BATCH_CONCURRENCY | seconds | delivered | CPU ms |", "| --- | --- | --- | --- |"]
    for concurrency, row in d.get("batch_sweep", {}).items():
        lines.append(f"| {concurrency} | {row['seconds']:.2f} | {row['delivered']} | {row['cpu_ms']:.0f} |")
    retry_rss = max(p["rss_kb"] for p in d["drain"]["pollers"]) / 1024
    lines += ["", "## Draining a backlog under the rate limit", "",
              f"{DRAIN_BACKLOG} events queued in the retry queue, drained by {DRAIN_POLLERS} concurrent retry "
              f"processes (SqsEventSource, as MaximumConcurrency {DRAIN_POLLERS}) against a sandbox limit of "
              f"{DRAIN_LIMIT} calls per {DRAIN_WINDOW:g} s window (Freshdesk: per minute; "
              f"FRESHDESK_RATE_WINDOW_SECONDS={DRAIN_WINDOW:g} here). Deliveries are counted over the first "
              f"{DRAIN_MEASURED_WINDOWS} windows, while the backlog outlasts them.", "",
              "| retry function | delivered / ideal | rate | Freshdesk calls | 429s | lost | drain time |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, label in (("drain", "paced (now)"), ("drain_unpaced", "unpaced (before)")):
        if key in d:
            r = d[key]
            lines.append(f"| {label} | {r['delivered_in_measured_windows']}/{r['ideal']} = {r['ratio']:.3f} | "
                         f"{r['rate_per_s']:.2f}/s of {r['limit_per_s']:.2f}/s | {r['calls']} | {r['429']} "
                         f"({r['wasted_429']:.1%}) | {r['lost']} | {r['drain_seconds']:.1f} s |")
    lines += ["", f"Peak RSS of a retry process (boto3 loaded for SQS): {retry_rss:.1f} MB."]
    rss = d["rss"]
    lines += ["", "## Memory", "",
              f"Peak RSS (ru_maxrss) of a warm ingest process after 20 single events and a batch of 100: "
              f"{rss['ours']['rss_kb_before_queue'] / 1024:.1f} MB; after also queueing one event (boto3 "
              f"imported for SQS): {rss['ours']['rss_kb'] / 1024:.1f} MB. Naive baseline, same events: "
              f"{rss['naive']['rss_kb'] / 1024:.1f} MB. Lambda's own runtime process and the extension "
              "use memory of their own on top.", "",
              "## Cost and memory size", "",
              "| memory | CPU share | est. cold start (bytecode / as shipped) | billed ms per event | est. batch of 100 | USD per million events | batches of 100 |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in d["memory_sizes"]:
        lines.append(f"| {row['memory_mb']} MB | {row['cpu_share']:.3f} | {row['est_cold_ms']:.0f} / "
                     f"{row['est_cold_shipped_ms']:.0f} ms | "
                     f"{row['event_billed_ms']} | {row['est_batch_s']:.2f} s | ${row['total']:.3f} | "
                     f"${row['total_batch100']:.3f} |")
    cost = d["cost"]
    lines += ["", f"At the configured {cost['memory_mb']} MB, per million single events: HTTP API "
              f"${cost['http_api']:.2f}, Lambda requests ${cost['lambda_requests']:.2f}, Lambda compute "
              f"${cost['lambda_compute']:.3f}, DynamoDB idempotency ${cost['dynamodb']:.3f}, queued share "
              f"${cost['queued']:.3f}: ${cost['total']:.2f} (${cost['total_without_idempotency']:.2f} with "
              "EnableIdempotency=false).", "",
              "Assumptions: public on-demand prices for US East (N. Virginia), arm64 (constants in "
              "`devtools/signal_freshdesk_dev/bench.py`, with the pricing pages they come from): HTTP API "
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
              ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and no before/after extras (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results (bench/results.md)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    figures = Figures()
    quick = args.quick
    compile_bytecode()
    with BenchServices() as services:
        services.call("rate_limit", UNLIMITED, 60)  # only the drain meets the rate limit
        measure_cold(services, figures, runs=3 if quick else 9)
        measure_warm(services, figures, rounds=3 if quick else 5, per_round=50 if quick else 100)
        measure_batch(services, figures, runs=1 if quick else 3, sweep=[] if quick else [4, 8, 10, 16])
        measure_rss(services, figures)
        measure_drain(services, figures)
        if not quick:
            measure_drain(services, figures, unpaced=True)
    memory = configured_memory_mb()
    figures.details["memory_sizes"] = [cost_model(figures, size) for size in (128, 256, 512, 1024)]
    figures.details["cost"] = cost_model(figures, memory)
    figures.values["usd_per_million"] = figures.details["cost"]["total"]
    figures.values["usd_per_million_batch100"] = figures.details["cost"]["total_batch100"]
    figures.values["memory_mb"] = memory
    elapsed = time.monotonic() - started
    command = "make bench" + (" (python -m signal_freshdesk_dev.bench --quick)" if quick else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(details_markdown(figures, command, elapsed))
    print(plain(main_table(figures)))
    print(f"\nDetails: {args.out}")
    print(bench_line(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
