"""The retry function: drains the retry queue (SQS, ReportBatchItemFailures) into Freshdesk or the DLQ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.retry import handle_retry_batch
from ..core.timing import invocation, retry_deadline
from ..runtime import get_runtime


def handle(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    runtime = get_runtime()
    timing = runtime.settings.timing
    deadline = retry_deadline(timing, context, runtime.clock.monotonic)
    # The store adapters bound their calls by this invocation's time (core.timing.current_invocation).
    with invocation(
        deadline, reserve=timing.retry_reserve_seconds, min_delivery_window=timing.min_delivery_window_seconds
    ):
        return handle_retry_batch(event, runtime, deadline=deadline, context=context)
