"""`serve`: real HTTP on loopback, through the real ingest handler, with the retry queue drained in the background."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest

from signal_freshdesk_dev import check, dlq
from signal_freshdesk_dev.apigw import LOCAL_WEBHOOK_TOKEN
from signal_freshdesk_dev.handlers import REPO_ROOT, load_event
from signal_freshdesk_dev.local_aws import REGION
from signal_freshdesk_dev.serve import LocalServe

PEOPLE = (
    "john.doe@example.com",
    "John.Doe@example.com",
    "John Doe",
    "+447700900123",
    "07700 900123",
    "priya.shah@example.org",
    "Priya",
    "Shah",
)


class Output(io.StringIO):
    """What serve prints, readable while its threads write."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()


@pytest.fixture(scope="module")
def served(sandbox_server, tmp_path_factory):
    """serve's server started in-process on port 0, with the shared Freshdesk sandbox and its own moto."""
    state = tmp_path_factory.mktemp("serve")
    out = Output()
    serve = LocalServe(
        port=0,
        sandbox=sandbox_server,
        out=out,
        log_path=state / "logs.jsonl",
        state_path=state / "serve.json",
        poll_interval=0.1,
        settings_env={},
        stack_name=f"serve-{uuid.uuid4().hex[:8]}",
    )
    serve.start()
    yield serve
    serve.stop()


@pytest.fixture
def serve(served, freshdesk):
    """The running serve, with the sandbox emptied and the idempotency records and the identity map
    forgotten for each test."""
    for table in filter(None, (os.environ.get("IDEMPOTENCY_TABLE"), os.environ.get("IDENTITY_MAP_TABLE"))):
        dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=served.aws.endpoint_url)
        keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
        for item in dynamodb.scan(TableName=table).get("Items", []):
            dynamodb.delete_item(TableName=table, Key={k: item[k] for k in keys})
    return served


def request(
    serve: LocalServe,
    body: bytes | None = None,
    *,
    token: str | None = LOCAL_WEBHOOK_TOKEN,
    method: str = "POST",
    path: str = "/events",
    headers: dict | None = None,
) -> tuple[int, dict, dict]:
    host, port = serve._server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data else {}, dict(response.getheaders())


def sample_body(name: str) -> bytes:
    return load_event(name)["body"].encode("utf-8")


def wait_for(condition, timeout: float = 15.0) -> bool:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def seen_requests(serve, monkeypatch):
    """The API Gateway events the ingest handler was given."""
    events: list[dict] = []
    real = serve._ingest

    def spy(event, context):
        events.append(event)
        return real(event, context)

    monkeypatch.setattr(serve, "_ingest", spy)
    return events


def test_signed_up_is_created_and_answered_201_through_the_real_ingest_handler(serve, seen_requests):
    status, body, headers = request(serve, sample_body("signed-up"))
    assert status == 201
    assert body["outcome"] == "delivered" and body["messageId"] == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert headers["Content-Type"] == "application/json" and "Apigw-Requestid" in headers
    [contact] = serve.sandbox.contacts()
    assert contact["email"] == "john.doe@example.com"
    [event] = seen_requests
    assert event["version"] == "2.0" and event["routeKey"] == "POST /events" and event["rawPath"] == "/events"
    assert event["isBase64Encoded"] is False and json.loads(event["body"])["event"] == "Signed Up"
    assert event["headers"]["authorization"] == f"Bearer {LOCAL_WEBHOOK_TOKEN}"
    assert event["requestContext"]["http"]["method"] == "POST"


def test_each_event_is_printed_as_one_line_without_contact_data(serve):
    request(serve, sample_body("signed-up"))
    assert wait_for(lambda: "a1b2c3d4-e5f6-7890-abcd-ef1234567890  delivered" in serve.out.text())
    printed = serve.out.text()
    for value in PEOPLE:
        assert value not in printed
    logs = serve.log_path.read_text()
    assert '"message":"event processed"' in logs and "a1b2c3d4-e5f6-7890-abcd-ef1234567890" in logs


def test_the_same_event_twice_is_answered_from_the_idempotency_record(serve):
    assert request(serve, sample_body("signed-up"))[0] == 201
    status, body, _ = request(serve, sample_body("signed-up"))
    assert status == 201 and body["duplicate"] is True
    assert len(serve.sandbox.contacts()) == 1
    assert wait_for(lambda: "duplicate: answered from the idempotency record" in serve.out.text())


def test_wrong_webhook_token_is_answered_401_unauthorized(serve):
    status, body, _ = request(serve, sample_body("signed-up"), token="not-the-token-at-all")
    assert status == 401 and body["outcome"] == "unauthorized"
    status, body, _ = request(serve, sample_body("signed-up"), token=None)
    assert status == 401 and "missing webhook token" in body["message"]
    assert serve.sandbox.contacts() == []


def test_a_body_that_is_not_json_is_answered_400(serve):
    status, body, _ = request(serve, b"{not json")
    assert status == 400 and body["outcome"] == "bad_request" and "not JSON" in body["message"]


def test_a_body_over_one_mebibyte_is_answered_413_by_the_handler(serve):
    status, body, _ = request(serve, b"[" + b" " * (1024 * 1024) + b"]")
    assert status == 413 and body["outcome"] == "bad_request"


def test_a_payload_over_api_gateways_limit_is_refused_413_without_reading_it(serve):
    host, port = serve._server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.putrequest("POST", "/events")
    connection.putheader("Content-Length", str(20 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read()) == {"message": "Request Entity Too Large"}
    connection.close()


@pytest.mark.parametrize("method, path", [("POST", "/other"), ("GET", "/events"), ("PUT", "/events"), ("POST", "/")])
def test_other_routes_answer_404_not_found_like_an_http_api(serve, seen_requests, method, path):
    status, body, _ = request(serve, b"{}", method=method, path=path)
    assert (status, body) == (404, {"message": "Not Found"})
    assert seen_requests == []


def test_a_body_that_is_not_utf8_reaches_the_handler_base64_encoded(serve, seen_requests):
    raw = b'{"type": "identify", "traits": {"name": "\xff\xfe"}}'
    status, body, _ = request(serve, raw)
    [event] = seen_requests
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw
    assert status == 400 and body["message"] == "the body is not UTF-8 text"


def test_query_string_and_repeated_headers_take_api_gateways_shape(serve, seen_requests):
    request(serve, sample_body("page-view"), path="/events?source=signal&x=1")
    [event] = seen_requests
    assert event["rawPath"] == "/events" and event["rawQueryString"] == "source=signal&x=1"
    assert event["queryStringParameters"] == {"source": "signal", "x": "1"}
    assert event["headers"]["x-forwarded-proto"] == "http"


def test_a_503_is_queued_and_then_delivered_by_the_background_drain(serve):
    serve.sandbox.fail_next(503, count=1)
    status, body, _ = request(serve, sample_body("identified"))
    assert status == 202 and body["outcome"] == "queued"
    assert wait_for(lambda: len(serve.sandbox.contacts()) == 1)
    assert serve.sandbox.contacts()[0]["unique_external_id"] == "usr_456"
    assert wait_for(lambda: "retry   b2c3d4e5-f6a7-4890-8bcd-ef1234567891  delivered" in serve.out.text())


def test_the_state_file_lets_check_and_dlq_find_the_running_serve(serve):
    state = json.loads(serve.state_path.read_text())
    assert state["webhook_url"] == serve.url and state["dlq_url"] and state["retry_queue_url"]
    out = io.StringIO()
    assert check.main(["--local", "--state-file", str(serve.state_path)], out=out) == 0
    assert "200 OK" in out.getvalue()
    out = io.StringIO()
    assert dlq.main(["list", "--local", "--state-file", str(serve.state_path)], out=out) == 0
    assert "Dead-letter queue: 0 parked" in out.getvalue()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_command_stops_cleanly_on_sigint_and_sigterm(tmp_path, stop_signal):
    state = tmp_path / "serve.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FRESHDESK_DOMAIN", "FRESHDESK_API_KEY", "WEBHOOK_TOKEN", "WEBHOOK_SIGNING_SECRET")
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signal_freshdesk_dev.serve",
            "--port",
            "0",
            "--state-file",
            str(state),
            "--log-file",
            str(tmp_path / "logs.jsonl"),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_for(state.exists, timeout=30), "serve did not start"
        url = json.loads(state.read_text())["webhook_url"]
        host, port = url.removeprefix("http://").split("/")[0].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request(
            "POST", "/events", body=sample_body("signed-up"), headers={"Authorization": f"Bearer {LOCAL_WEBHOOK_TOKEN}"}
        )
        assert connection.getresponse().status == 201
        connection.close()
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "stopped" in output and "delivered" in output
    assert not state.exists()


def test_serve_refuses_a_webhook_token_shorter_than_the_secret_allows(sandbox_server):
    from signal_freshdesk_dev.serve import ServeError

    with pytest.raises(ServeError, match="WEBHOOK_TOKEN"):
        LocalServe(port=0, sandbox=sandbox_server, webhook_token="short", state_path=None, log_path=None).start()


def test_real_freshdesk_needs_both_domain_and_key():
    from signal_freshdesk_dev.serve import ServeError, real_freshdesk_from_env

    assert real_freshdesk_from_env({}) is None
    assert real_freshdesk_from_env({"FRESHDESK_DOMAIN": "acme", "FRESHDESK_API_KEY": "k"}) == ("acme", "k")
    with pytest.raises(ServeError, match="both"):
        real_freshdesk_from_env({"FRESHDESK_DOMAIN": "acme"})


def test_default_state_and_logs_live_under_the_repositorys_local_directory():
    from signal_freshdesk_dev import serve as module

    assert Path(REPO_ROOT) / ".local" / "serve.json" == module.STATE_FILE
    assert module.LOG_FILE.parent == Path(REPO_ROOT) / ".local"


def test_a_signing_secret_from_the_environment_goes_into_the_local_secret(sandbox_server):
    serve = LocalServe(port=0, sandbox=sandbox_server, signing_secret="s" * 32, state_path=None, log_path=None)
    secret = serve._secret()
    assert secret["signing_secret"] == "s" * 32 and secret["webhook_token"] == LOCAL_WEBHOOK_TOKEN
