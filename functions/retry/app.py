"""Retry Lambda: drains the retry queue (SQS, ReportBatchItemFailures) into Freshdesk or the DLQ."""

from signal_freshdesk.observability import logger, metrics
from signal_freshdesk.retry import handle_retry_batch


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    return handle_retry_batch(event, context)
