"""The ingest function: Signal's webhook (API Gateway HTTP API, payload v2) into Freshdesk contacts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.errors import ConfigError
from ..core.ingest import configuration_failed, handle_webhook
from ..core.timing import ingest_deadline, invocation
from ..runtime import get_runtime


def handle(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        runtime = get_runtime()
    except ConfigError as exc:
        return configuration_failed(exc)
    timing = runtime.settings.timing
    deadline = ingest_deadline(timing, context, runtime.clock.monotonic)
    # The store adapters bound their calls by this invocation's time (core.timing.current_invocation).
    with invocation(
        deadline, reserve=timing.ingest_reserve_seconds, min_delivery_window=timing.min_delivery_window_seconds
    ):
        return handle_webhook(event, runtime, deadline=deadline)
