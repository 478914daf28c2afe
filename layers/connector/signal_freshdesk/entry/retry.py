"""The retry function: drains the retry queue (SQS, ReportBatchItemFailures) into Freshdesk or the DLQ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.retry import handle_retry_batch
from ..core.timing import retry_deadline
from ..runtime import get_runtime


def handle(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    runtime = get_runtime()
    deadline = retry_deadline(runtime.settings.timing, context, runtime.clock.monotonic)
    return handle_retry_batch(event, runtime, deadline=deadline, context=context)
