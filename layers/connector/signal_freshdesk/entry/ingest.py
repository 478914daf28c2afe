"""The ingest function: Signal's webhook (API Gateway HTTP API, payload v2) into Freshdesk contacts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.errors import ConfigError
from ..core.ingest import configuration_failed, handle_webhook
from ..core.timing import ingest_deadline
from ..runtime import get_runtime


def handle(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        runtime = get_runtime()
    except ConfigError as exc:
        return configuration_failed(exc)
    deadline = ingest_deadline(runtime.settings.timing, context, runtime.clock.monotonic)
    return handle_webhook(event, runtime, deadline=deadline)
