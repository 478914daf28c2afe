"""Module-level Logger and Metrics shared by both functions (no Tracer: see the template's Tracing)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "signal-freshdesk"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SignalFreshdesk"),
                  service=os.environ.get("POWERTOOLS_SERVICE_NAME", "signal-freshdesk"))


def count(name: str, value: int = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
