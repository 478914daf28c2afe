"""POWERTOOLS_LOGGER_LOG_EVENT=true must not make the handlers log their events.

Powertools' `inject_lambda_context` logs the whole Lambda event when that variable is true, unless the
decorator says `log_event=False`: for the webhook that is the Authorization header (Signal's bearer
token) and the body (names, emails, phones). The variable is read when the decorator is applied, so
each handler module is loaded afresh here with it set.
"""

from __future__ import annotations

import importlib.util
import uuid
from types import ModuleType

import pytest

from signal_freshdesk_dev.apigw import LOCAL_WEBHOOK_TOKEN, LambdaContext
from signal_freshdesk_dev.handlers import REPO_ROOT, load_event, signal_events_of


def _fresh_handler_module(function: str) -> ModuleType:
    path = REPO_ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"log_event_{function}_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def log_event_on(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")


def test_ingest_handler_logs_neither_the_bearer_token_nor_the_body(stack, log_event_on, log_privacy):
    handler = _fresh_handler_module("ingest").lambda_handler
    request = load_event("signed-up")
    request["headers"]["authorization"] = f"Bearer {LOCAL_WEBHOOK_TOKEN}"
    traits = signal_events_of(request)[0]["context"]["traits"]
    answer = handler(request, LambdaContext(function_name="ingest"))
    assert answer["statusCode"] == 201, answer

    records = [r for r in log_privacy.records() if r.logger.startswith("signal-freshdesk")]
    assert records, "the handler logged nothing: the test would prove nothing"
    for record in records:
        assert LOCAL_WEBHOOK_TOKEN not in record.text, f"bearer token logged: {record.message}"
        assert "authorization" not in record.text.lower(), f"headers logged: {record.message}"
        assert request["body"] not in record.text and "requestContext" not in record.text, record.message
        for value in (traits["email"], traits["email"].lower(), traits["name"], traits["phone"]):
            assert value not in record.text, f"the body's {value!r} logged: {record.message}"
    assert not log_privacy.offences(records)


def test_retry_handler_does_not_log_its_sqs_event(stack, log_event_on, log_privacy):
    stack.freshdesk.fail_next(503)
    status, _ = stack.post("identified")
    assert status == 202
    queued = stack.sqs.receive_message(QueueUrl=stack.resources.retry_queue_url, WaitTimeSeconds=2)["Messages"]
    handler = _fresh_handler_module("retry").lambda_handler
    sqs_event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:retry",
            }
            for m in queued
        ]
    }
    before = len(log_privacy.records())
    handler(sqs_event, LambdaContext(function_name="retry"))
    records = [r for r in log_privacy.records()[before:] if r.logger.startswith("signal-freshdesk")]
    assert records
    for record in records:
        assert "receiptHandle" not in record.text and "Records" not in record.text, record.message
        assert queued[0]["Body"] not in record.text, record.message
    assert not log_privacy.offences(records)
