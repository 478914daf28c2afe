"""Retry Lambda: drains the retry queue (SQS, ReportBatchItemFailures) into Freshdesk or the DLQ."""

from signal_freshdesk.entry import retry
from signal_freshdesk.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event, context):
    return retry.handle(event, context)
