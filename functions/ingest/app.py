"""Ingest Lambda: Signal's webhook (API Gateway HTTP API, payload v2) -> Freshdesk contacts."""

from signal_freshdesk.observability import logger, metrics
from signal_freshdesk.webhook import handle_webhook


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    return handle_webhook(event, context)
