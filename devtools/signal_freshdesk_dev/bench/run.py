"""The performance benchmark: cold start, per-event overhead, batches, rate-limited drain, memory, cost.

    python -m signal_freshdesk_dev.bench           (or: make bench)

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
from .measure import compile_bytecode, measure_batch, measure_cold, measure_drain, measure_rss, measure_warm
from .model import UNLIMITED, Figures, configured_memory_mb, cost_model
from .report import bench_line, details_markdown, main_table, plain
from .services import BenchServices

RESULTS = REPO_ROOT / "bench" / "results.md"


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
