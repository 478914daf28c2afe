"""The benchmark's measurements: each in fresh child processes (child.py) against the services process."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ..apigw import LOCAL_WEBHOOK_TOKEN
from ..handlers import REPO_ROOT
from ..local_aws import FAKE_CREDENTIALS, REGION, StackResources
from .child import signal_event
from .model import (
    BATCH_DELAY,
    BATCH_EVENTS,
    DRAIN_BACKLOG,
    DRAIN_LIMIT,
    DRAIN_MEASURED_WINDOWS,
    DRAIN_POLLERS,
    DRAIN_WINDOW,
    UNLIMITED,
    Figures,
)
from .services import API_KEY, BenchServices

# Run by file path (python -P child.py ...), so that it imports nothing of the benchmark's before its clock starts.
CHILD = Path(__file__).with_name("child.py")


# -- children -----------------------------------------------------------------------------------------
def child_env(
    services: BenchServices,
    *,
    extension: bool = True,
    idempotency: bool = True,
    identity_map: bool = True,
    **extra: str,
) -> dict[str, str]:
    """The function's environment as the template sets it (defaults), pointed at the stand-ins.

    `idempotency` False: EnableIdempotency=false; `identity_map` False: EnableIdentityMap=false."""
    info = services.info
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "POWERTOOLS_"))
        and k not in ("BATCH_CONCURRENCY", "SECRETS_EXTENSION", "IDEMPOTENCY_TABLE", "IDENTITY_MAP_TABLE")
    }
    env.update(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = info["aws_endpoint"]
    resources = StackResources(**info["resources"])
    env.update(resources.environment(freshdesk_base_url=info["freshdesk_url"], POWERTOOLS_LOG_LEVEL="INFO"))
    if not idempotency:
        env.pop("IDEMPOTENCY_TABLE", None)
    if not identity_map:
        env.pop("IDENTITY_MAP_TABLE", None)
    # What Lambda's environment tells Powertools and the X-Ray SDK (the naive baseline's Tracer).
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "signal-freshdesk-bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(REPO_ROOT / "functions" / "ingest"),
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        }
    )
    if extension:
        env["SECRETS_EXTENSION"] = "on"
        env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(info["extension_port"])
    else:
        env["SECRETS_EXTENSION"] = "off"
    env.update(extra)
    return env


def run_child(
    mode: str,
    which: str,
    params: dict[str, Any],
    env: dict[str, str],
    *,
    timeout: float = 300,
    importtime: bool = False,
) -> dict[str, Any]:
    params = {
        "root": str(REPO_ROOT),
        "token": LOCAL_WEBHOOK_TOKEN,
        "api_key": API_KEY,
        "prefix": uuid.uuid4().hex[:10],
        **params,
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        params_path, out_path = Path(tmp, "params.json"), Path(tmp, "out.json")
        params_path.write_text(json.dumps(params))
        args = [sys.executable, "-P"] + (["-X", "importtime"] if importtime else [])
        args += [str(CHILD), mode, which, str(params_path), str(out_path)]
        started = time.perf_counter()
        done = subprocess.run(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
            text=True,
        )
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
    # name: (handler, extension, idempotency and identity map)
    "ours": ("ours", True, True),  # as deployed with the extension layer (template defaults)
    "ours_no_idempotency": ("ours", True, False),
    "ours_boto3_secret": ("ours", False, True),  # the secret read with boto3, not the extension
    "naive": ("naive", False, False),
}


# What the layer holds: `sam build` copies these without bytecode, so Lambda compiles them on every cold
# start (its read-only /opt cannot keep .pyc). The standard library and the runtime's boto3 have theirs.
LAYER_PACKAGES = (
    "aws_lambda_powertools",
    "urllib3",
    "phonenumbers",
    "jmespath",
    "typing_extensions.py",
    "aws_xray_sdk",
    "wrapt",
)
PYCACHE = REPO_ROOT / ".local" / "bench-pycache"


def shipped_layer_env(env: dict[str, str]) -> dict[str, str]:
    """`env`, with bytecode only where Lambda has it (PYTHONPYCACHEPREFIX, see prepare_shipped_layer)."""
    return {**env, "PYTHONPYCACHEPREFIX": str(PYCACHE), "PYTHONDONTWRITEBYTECODE": "1"}


def prepare_shipped_layer(services: BenchServices) -> None:
    """Fill PYCACHE with the bytecode of everything the handlers import, then remove the layer's and ours."""
    import shutil
    import sysconfig

    for which, extension, idempotency in (("ours", True, True), ("naive", False, False)):
        env = child_env(services, extension=extension, idempotency=idempotency, identity_map=idempotency)
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
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            which, extension, idempotency = COLD_VARIANTS[name]
            env = child_env(services, extension=extension, idempotency=idempotency, identity_map=idempotency)
            result = run_child("cold", which, {}, env)
            if result["status"] != 201:
                raise RuntimeError(f"cold {name}: the first event answered {result['status']}, not 201")
            samples[name].append(result)
    summary = {}
    for name, rows in samples.items():
        summary[name] = {
            key: median([row[key] for row in rows])
            for key in ("cold_ms", "import_ms", "first_event_ms", "cpu_ms", "process_wall_ms", "modules")
        }
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
            env = shipped_layer_env(
                child_env(services, extension=extension, idempotency=idempotency, identity_map=idempotency)
            )
            shipped[name].append(run_child("cold", which, {}, env))
    figures.details["cold_shipped"] = {
        name: {key: median([row[key] for row in rows]) for key in ("cold_ms", "import_ms", "first_event_ms", "cpu_ms")}
        for name, rows in shipped.items()
    }
    figures.values["cold_ratio_shipped"] = (
        figures.details["cold_shipped"]["ours"]["cold_ms"] / figures.details["cold_shipped"]["naive"]["cold_ms"]
    )

    log("cold start: import-time breakdown (python -X importtime) ...")
    breakdown = {}
    for name in ("ours", "naive"):
        which, extension, idempotency = COLD_VARIANTS[name]
        result = run_child(
            "cold",
            which,
            {},
            child_env(services, extension=extension, idempotency=idempotency, identity_map=idempotency),
            importtime=True,
        )
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
        log(
            f"warm: {rounds} x {per_round} single events against bare POSTs (idempotency {'on' if idempotency else 'off'}) ..."
        )
        services.call("reset")
        env = child_env(services, idempotency=idempotency, identity_map=idempotency)
        result = run_child(
            "warm",
            "ours",
            {"rounds": rounds, "per_round": per_round, "freshdesk_url": services.info["freshdesk_url"]},
            env,
        )
        unexpected = {k: n for k, n in result["statuses"].items() if k not in ("201", "bare_201")}
        if unexpected:
            raise RuntimeError(f"warm: answers other than 201 would skew the figure: {unexpected}")
        ratios = [r["handler_ms"] / r["bare_ms"] for r in result["rounds"]]
        figures.details[f"warm{label}"] = {
            "handler_ms": median([r["handler_ms"] for r in result["rounds"]]),
            "bare_ms": median([r["bare_ms"] for r in result["rounds"]]),
            "ratio": median(ratios),
            "round_ratios": ratios,
            "statuses": result["statuses"],
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
        accounted = all(
            r["results"] == BATCH_EVENTS
            and sum(r["outcomes"].get(k, 0) for k in ("delivered", "queued")) == BATCH_EVENTS
            for r in result["runs"]
        )
        figures.details["batch"] = {
            "runs": result["runs"],
            "seconds": median(seconds),
            "accounted": accounted,
            "cpu_ms": median([r["cpu_ms"] for r in result["runs"]]),
        }
        figures.values["batch100_s"] = median(seconds)
        figures.values["batch100_accounted"] = (
            BATCH_EVENTS
            if accounted
            else min(r["outcomes"].get("delivered", 0) + r["outcomes"].get("queued", 0) for r in result["runs"])
        )
        rows = {}
        for concurrency in sweep:
            log(f"batch: BATCH_CONCURRENCY={concurrency} ...")
            services.call("reset")
            services.call("delay", BATCH_DELAY)
            swept = run_child(
                "batch",
                "ours",
                {"runs": 1, "events": BATCH_EVENTS},
                child_env(services, BATCH_CONCURRENCY=str(concurrency)),
            )["runs"][0]
            rows[concurrency] = {
                "seconds": swept["seconds"],
                "delivered": swept["outcomes"].get("delivered", 0),
                "cpu_ms": swept["cpu_ms"],
            }
        figures.details["batch_sweep"] = rows
    finally:
        services.call("delay", 0)


def measure_rss(services: BenchServices, figures: Figures) -> None:
    log("memory: peak RSS of a warm ingest process ...")
    services.call("reset")
    ours = run_child("rss", "ours", {"freshdesk_url": services.info["freshdesk_url"]}, child_env(services))
    services.call("reset")
    naive = run_child(
        "rss",
        "naive",
        {"freshdesk_url": services.info["freshdesk_url"]},
        child_env(services, extension=False, idempotency=False, identity_map=False),
    )
    figures.details["rss"] = {"ours": ours, "naive": naive}
    figures.values["rss_mb"] = ours["rss_kb"] / 1024
    figures.values["rss_naive_mb"] = naive["rss_kb"] / 1024


def queue_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
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


def fresh_stack(services: BenchServices) -> tuple[StackResources, Any]:
    """The services' stack with both queues emptied and the sandbox reset, and an SQS client for it."""
    import boto3

    info = services.info
    resources = StackResources(**info["resources"])
    sqs = boto3.client(
        "sqs",
        region_name=REGION,
        endpoint_url=info["aws_endpoint"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )
    for url in (resources.retry_queue_url, resources.dlq_url):
        empty_queue(sqs, url)
    services.call("reset")
    return resources, sqs


def measure_drain(services: BenchServices, figures: Figures, *, unpaced: bool = False) -> dict[str, Any]:

    label = "unpaced (before)" if unpaced else "paced"
    log(
        f"drain ({label}): {DRAIN_BACKLOG} queued events, {DRAIN_POLLERS} pollers, "
        f"limit {DRAIN_LIMIT} per {DRAIN_WINDOW:g} s ..."
    )
    resources, sqs = fresh_stack(services)
    prefix = uuid.uuid4().hex[:8]
    now = time.time()
    entries = []
    for i in range(DRAIN_BACKLOG):
        event = signal_event(f"d{prefix}", i)
        entries.append(
            {
                "Id": str(i % 10),
                "MessageBody": json.dumps(
                    {
                        "v": 1,
                        "messageId": event["messageId"],
                        "outcome": "queued",
                        "attempts": 1,
                        "first_seen": now,
                        "last_error": {"status": 429, "reason": "rate_limited", "error": "", "body": None},
                        "event": event,
                    }
                ),
            }
        )
        if len(entries) == 10:
            sqs.send_message_batch(QueueUrl=resources.retry_queue_url, Entries=entries)
            entries = []
    services.call("rate_limit", DRAIN_LIMIT, DRAIN_WINDOW)
    env = child_env(services, FRESHDESK_RATE_WINDOW_SECONDS=str(DRAIN_WINDOW))
    env["LAMBDA_TASK_ROOT"] = str(REPO_ROOT / "functions" / "retry")
    params = {
        "root": str(REPO_ROOT),
        "token": LOCAL_WEBHOOK_TOKEN,
        "api_key": API_KEY,
        "prefix": prefix,
        "queue_url": resources.retry_queue_url,
        "timeout": 180,
        "unpaced": unpaced,
    }
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        params_path = Path(tmp, "params.json")
        params_path.write_text(json.dumps(params))
        pollers = [
            subprocess.Popen(
                [sys.executable, "-P", str(CHILD), "drain", "retry", str(params_path), str(Path(tmp, f"out{i}.json"))],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(DRAIN_POLLERS)
        ]
        errors = [p.communicate(timeout=240)[1] for p in pollers]
        for poller, error in zip(pollers, errors, strict=False):
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
        "delivered_in_measured_windows": in_windows,
        "ideal": ideal,
        "ratio": in_windows / ideal,
        "rate_per_s": in_windows / (DRAIN_MEASURED_WINDOWS * DRAIN_WINDOW),
        "limit_per_s": DRAIN_LIMIT / DRAIN_WINDOW,
        "calls": len(calls),
        "429": n429,
        "wasted_429": n429 / len(calls),
        "contacts": contacts,
        "backlog": DRAIN_BACKLOG,
        "left": left,
        "lost": DRAIN_BACKLOG - contacts - left["dlq"] - left["retry_queue"],
        "drain_seconds": last - start,
        "pollers": stats,
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

    for folder in (
        REPO_ROOT / "layers" / "connector" / "signal_freshdesk",
        REPO_ROOT / "functions",
        Path(__file__).parent.parent,
    ):  # all of signal_freshdesk_dev
        compileall.compile_dir(folder, quiet=2)
