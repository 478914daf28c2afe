"""Module-level Logger and Metrics shared by both functions (no Tracer: see the template's Tracing),
and the messageId of the event a thread is working on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "signal-freshdesk"))
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SignalFreshdesk"),
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", "signal-freshdesk"),
)

_current_message_id: ContextVar[str] = ContextVar("signal_freshdesk_message_id", default="")


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@contextmanager
def correlate(message_id: str) -> Iterator[None]:
    """Mark the event this thread works on, for whatever wants to correlate its calls with it."""
    token = _current_message_id.set(message_id)
    try:
        yield
    finally:
        _current_message_id.reset(token)


def current_message_id() -> str:
    return _current_message_id.get()
