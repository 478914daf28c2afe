"""Ingest Lambda: Signal's webhook (API Gateway HTTP API, payload v2) -> Freshdesk contacts."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from signal_freshdesk.entry import ingest
from signal_freshdesk.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ingest.handle(event, context)
