"""The ledger's faults: the sandbox faults armed as the run goes (Chaos, at the rates of config.FaultRates),
and the exceptions an injected crash raises."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from .config import FaultRates, LedgerConfig

BASE_RATE_LIMIT = 1_000_000
TIMEOUT_DELAY = 1.0


class SimulatedKill(BaseException):
    """The invocation dies where it stands (not an Exception: the handlers' own guards do not see it)."""


class InvocationLost(Exception):
    """The ingest invocation did its work but its answer never reached Signal."""


class Chaos:
    def __init__(self, config: LedgerConfig, sandbox: Any) -> None:
        self.rates = config.faults
        self.sandbox = sandbox
        self.enabled = True
        self._lock = threading.Lock()
        self._rngs: dict[str, random.Random] = {}
        self._seed = config.seed
        self.sandbox_rng = random.Random(f"{config.seed}:sandbox")
        self.armed: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.timers: list[threading.Timer] = []
        self.outage_active = False
        self.storm_active = False
        self.outage_steps: set[int] = set()

    def plan_outages(self, steps: int) -> None:
        """Outages at requests spread from a sixth to two thirds of the stream, one per segment."""
        count = self.rates.outages
        if steps and count:
            start = steps // 6
            span = max(count, steps * 2 // 3 - start)
            self.outage_steps = {
                start + n * span // count + self.sandbox_rng.randrange(max(1, span // count)) for n in range(count)
            }

    def roll(self, kind: str) -> bool:
        if not self.enabled:
            return False
        with self._lock:
            rng = self._rngs.setdefault(kind, random.Random(f"{self._seed}:{kind}"))
            hit = rng.random() < getattr(self.rates, kind)
            if hit:
                self.injected[kind] += 1
        return hit

    def _later(self, seconds: float, action: Callable[[], None]) -> None:
        def run() -> None:
            if self.enabled:
                action()

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        self.timers.append(timer)
        timer.start()

    def tick(self, stop: threading.Event, every: float) -> None:
        """Faults over time too, not only per request: the retry function's traffic meets them."""
        while not stop.wait(every) and self.enabled:
            self.step(-1)

    def step(self, index: int) -> None:
        """Before Signal's request `index` (-1: a tick of the clock): perhaps arm one sandbox fault."""
        if not self.enabled:
            return
        rng, box, rates = self.sandbox_rng, self.sandbox, self.rates
        with self._lock:
            self._step(index, rng, box, rates)

    def _step(self, index: int, rng: random.Random, box: Any, rates: FaultRates) -> None:
        if index in self.outage_steps and not self.outage_active:
            self.outage_active = True
            self.armed["outage"] += 1
            box.fail_next(503, count=None)

            def end_outage() -> None:
                box.fail_next(503, count=0)
                self.outage_active = False

            self._later(rng.uniform(5.0, 7.0), end_outage)
            return
        draw = rng.random()
        edges = []
        total = 0.0
        for name in (
            "freshdesk_5xx",
            "freshdesk_429",
            "freshdesk_timeout",
            "freshdesk_slow",
            "freshdesk_drop",
            "rate_storm",
            "field_toggle",
        ):
            total += getattr(rates, name)
            edges.append((total, name))
        kind = next((name for edge, name in edges if draw < edge), None)
        if kind is None:
            return
        if kind in ("freshdesk_5xx", "freshdesk_429") and self.outage_active:
            return
        self.armed[kind] += 1
        if kind == "freshdesk_5xx":
            box.fail_next(rng.choice((500, 502, 503, 504)), count=rng.randint(1, 3))
        elif kind == "freshdesk_429":
            box.fail_next(429, count=rng.randint(2, 6), retry_after=rng.randint(1, 2))
        elif kind == "freshdesk_timeout":
            box.delay(TIMEOUT_DELAY, count=rng.randint(1, 2))
        elif kind == "freshdesk_slow":
            box.delay(rng.uniform(0.05, 0.3), count=rng.randint(1, 4))
        elif kind == "freshdesk_drop":
            box.drop_next(rng.randint(1, 2))
        elif kind == "rate_storm":
            if self.storm_active:
                return
            self.storm_active = True
            box.set_rate_limit(rng.randint(3, 6), 2.0)

            def end_storm() -> None:
                box.set_rate_limit(BASE_RATE_LIMIT, 60.0)
                self.storm_active = False

            self._later(rng.uniform(2.0, 4.0), end_storm)
        elif kind == "field_toggle":
            box.custom_fields = () if box.custom_fields else ("signup_method",)

    def calm(self) -> None:
        """No more faults: Freshdesk healthy, every injection off."""
        self.enabled = False
        for timer in self.timers:
            timer.cancel()
        self.sandbox.clear_faults()
        self.sandbox.set_rate_limit(BASE_RATE_LIMIT, 60.0)
        self.sandbox.custom_fields = ("signup_method",)
        self.outage_active = self.storm_active = False
