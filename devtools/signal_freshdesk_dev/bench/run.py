"""The performance benchmark: cold start, per-event overhead, batches, drain, memory, cost, calls per event.

Freshdesk calls per event are measured with the identity map and without it, in the same run; then calls
and handler time per event through a ten-field custom mapping with companies, against the Default preset.

    python -m signal_freshdesk_dev.bench           (or: make bench)
    python -m signal_freshdesk_dev.bench --only calls     (one part; prints, writes only with --out)
    python -m signal_freshdesk_dev.bench --only calls --only mapping   (the mapping reuses the calls figure)

Each figure is measured against a baseline run side by side in the same run, because this machine
(2 shared cores) is noisy: targets are ratios, timings are medians of several runs. Every process
being measured is a fresh `bench/child.py` process standing in for one Lambda execution environment;
Freshdesk (the sandbox), AWS (moto as a server) and the Parameters and Secrets extension (a stand-in)
live in another process (`bench/services.py`), so their import and CPU costs are not counted. Prints
a table, writes it with the details to bench/results.md and ends with one `BENCH key=value ...` line.
Never part of the test suite: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..handlers import REPO_ROOT
from .calls import measure_calls
from .mapping import measure_mapping
from .measure import compile_bytecode, measure_batch, measure_cold, measure_drain, measure_rss, measure_warm
from .model import CALLS_EVENTS, UNLIMITED, Figures, configured_memory_mb, cost_model
from .report import bench_line, details_markdown, main_table, plain
from .services import BenchServices

RESULTS = REPO_ROOT / "bench" / "results.md"
PARTS = ("cold", "warm", "batch", "rss", "drain", "calls", "mapping")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and no before/after extras (a smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="measure only this part (repeatable); the results are written only with --out",
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write the results (bench/results.md)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    figures = Figures()
    quick = args.quick
    parts = set(args.only or PARTS)
    out = args.out if args.out is not None or args.only else RESULTS
    compile_bytecode()
    with BenchServices() as services:
        services.call("rate_limit", UNLIMITED, 60)  # only the drain and the calls figure meet the rate limit
        if "cold" in parts:
            measure_cold(services, figures, runs=3 if quick else 9)
        if "warm" in parts:
            measure_warm(services, figures, rounds=3 if quick else 5, per_round=50 if quick else 100)
        if "batch" in parts:
            measure_batch(services, figures, runs=1 if quick else 3, sweep=[] if quick else [4, 8, 10, 16])
        if "rss" in parts:
            measure_rss(services, figures)
        if "drain" in parts:
            measure_drain(services, figures)
            if not quick:
                measure_drain(services, figures, unpaced=True)
        if "calls" in parts:
            measure_calls(services, figures, events=300 if quick else CALLS_EVENTS)
        if "mapping" in parts:  # after calls: it reuses the Default preset's figures of the same run
            measure_mapping(services, figures, events=300 if quick else CALLS_EVENTS)
    memory = configured_memory_mb()
    if {"cold", "warm", "batch"} <= parts:
        figures.details["memory_sizes"] = [cost_model(figures, size) for size in (128, 256, 512, 1024)]
        figures.details["cost"] = cost_model(figures, memory)
        figures.values["usd_per_million"] = figures.details["cost"]["total"]
        figures.values["usd_per_million_batch100"] = figures.details["cost"]["total_batch100"]
        figures.values["memory_mb"] = memory
    elapsed = time.monotonic() - started
    flags = " ".join(["--quick"] * quick + [f"--only {part}" for part in args.only or ()])
    command = "make bench" + (f" (python -m signal_freshdesk_dev.bench {flags})" if flags else "")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(details_markdown(figures, command, elapsed))
    print(plain(main_table(figures)))
    if out is not None:
        print(f"\nDetails: {out}")
    print(bench_line(figures))
    return 0
