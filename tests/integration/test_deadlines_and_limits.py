"""Every outside call keeps within the invocation's time, and a queued event always
fits one SQS message.

- DynamoDB that accepts connections and never answers: a batch of 100 took 40 s, past API Gateway's
  30 s, so Signal re-sent the whole batch. Store calls are now bounded by the time left, and a store that
  failed is not called again for a while.
- Freshdesk trickling its answer: urllib3's read timeout is per socket read, so a byte every 0.2 s never
  trips it. Each call now has a total limit.
- A 361 KB body of emoji made a retry envelope SQS refused, so the event failed (503) on every re-send.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest

from signal_freshdesk.adapters.dynamodb import DynamoDBClient, DynamoDBError, DynamoDBIdempotencyStore
from signal_freshdesk.adapters.freshdesk import FreshdeskClient
from signal_freshdesk.adapters.sqs import SqsQueues
from signal_freshdesk.core.credentials import Credentials
from signal_freshdesk.core.errors import QueueError, StoreUnavailable
from signal_freshdesk.core.mapping import NAME_KEYS
from signal_freshdesk.core.timing import Deadline, invocation
from signal_freshdesk.runtime import reset_runtime
from signal_freshdesk_dev.apigw import LambdaContext

CREDS = Credentials(domain="acme", api_key="key", webhook_token="token")


class SilentServer:
    """Accepts connections and reads what comes, never answering (a DynamoDB endpoint that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.connections = 0
        self._open: list[socket.socket] = []
        self._stop = threading.Event()

    def __enter__(self) -> SilentServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self._open:
            conn.close()


class TricklingServer(SilentServer):
    """Answers 200 with a JSON body of `length` bytes, one byte every `interval` seconds."""

    def __init__(self, length: int = 60, interval: float = 0.2) -> None:
        super().__init__()
        self.length, self.interval = length, interval

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        body = b'{"id": 1, "name": "' + b"x" * (self.length - 20) + b'"}'
        try:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            for byte in body:
                if self._stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(self.interval)
        except OSError:
            return


# --------------------------------------------------------------------------- DynamoDB


@pytest.fixture
def silent_dynamodb(monkeypatch):
    with SilentServer() as server:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield server


def test_a_store_call_ends_when_the_invocation_time_does(silent_dynamodb):
    client = DynamoDBClient(endpoint=silent_dynamodb.url, region="eu-west-1")
    with invocation(Deadline.after(0.3), reserve=0.4, min_delivery_window=1.5):
        started = time.monotonic()
        with pytest.raises(DynamoDBError):
            client.call("GetItem", {"TableName": "t", "Key": {"id": {"S": "k"}}})
        took = time.monotonic() - started
    # Without the bound: a 2 s read timeout, then a retry of it.
    assert took < 1.0


def test_a_store_that_failed_is_not_called_again_for_a_while(silent_dynamodb):
    client = DynamoDBClient(endpoint=silent_dynamodb.url, region="eu-west-1", timeout=0.3)
    with pytest.raises(DynamoDBError):
        client.call("GetItem", {"TableName": "t", "Key": {"id": {"S": "k"}}})
    seen = silent_dynamodb.connections
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(DynamoDBError, match="StoreDown"):
            client.call("GetItem", {"TableName": "t", "Key": {"id": {"S": "k"}}})
    assert time.monotonic() - started < 0.1
    assert silent_dynamodb.connections == seen


def test_no_claim_is_made_when_too_little_time_is_left_to_deliver(silent_dynamodb):
    store = DynamoDBIdempotencyStore("t", DynamoDBClient(endpoint=silent_dynamodb.url, region="eu-west-1"))
    with invocation(Deadline.after(1.0), reserve=4.0, min_delivery_window=1.5):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="too little time"):
            store.claim("msg-1", hold_seconds=5)
        assert time.monotonic() - started < 0.1
    assert silent_dynamodb.connections == 0


def batch_of(count: int) -> list[dict]:
    run = uuid.uuid4().hex[:8]
    return [
        {
            "type": "identify",
            "messageId": f"msg-{run}-{n}",
            "userId": f"usr_{run}_{n}",
            "timestamp": "2026-02-25T14:30:00Z",
            "traits": {"name": f"Person {n}", "email": f"p{n}.{run}@example.com"},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
        for n in range(count)
    ]


def test_a_batch_finishes_within_the_deadline_when_dynamodb_never_answers(stack, monkeypatch):
    with SilentServer() as dynamodb:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url)
        reset_runtime()
        events = batch_of(100)
        started = time.monotonic()
        status, answer = stack.post(events, context=LambdaContext(timeout_seconds=29))
        took = time.monotonic() - started
        assert dynamodb.connections > 0  # the table was tried, and did not answer
    assert took < 25, f"the batch took {took:.1f} s"
    assert status in (200, 202)
    outcomes = [r["outcome"] for r in answer["results"]]
    assert "failed" not in outcomes and set(outcomes) <= {"delivered", "queued"}
    assert outcomes.count("delivered") >= 90
    stack.drain()
    assert len(stack.freshdesk.contacts()) == 100


# --------------------------------------------------------------------------- Freshdesk


def test_a_trickling_freshdesk_answer_is_cut_at_the_deadline():
    with TricklingServer(length=60, interval=0.2) as server:
        client = FreshdeskClient(base_url_override=server.url.rstrip("/"), read_timeout=10.0)
        started = time.monotonic()
        answer = client.get_contact(CREDS, 1, deadline=Deadline.after(1.5))
        took = time.monotonic() - started
    # Without the total limit: 60 bytes at 0.2 s each, 12 s, each read well inside the 10 s read timeout.
    assert took < 2.0
    assert answer.status is None and answer.error


def test_a_prompt_freshdesk_answer_is_read_in_full(freshdesk):
    freshdesk.api_key = "key"
    client = FreshdeskClient(base_url_override=freshdesk.base_url)
    created = client.create_contact(CREDS, {"name": "Ann", "email": "ann@example.com"}, deadline=Deadline.after(5))
    assert created.status == 201 and created.body["email"] == "ann@example.com"
    again = client.get_contact(CREDS, created.body["id"], deadline=Deadline.after(5))
    assert again.status == 200 and again.body["id"] == created.body["id"]


# --------------------------------------------------------------------------- SQS


def limit_queues(stack, size: int = 262_144) -> None:
    for url in (stack.resources.retry_queue_url, stack.resources.dlq_url):
        stack.sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": str(size)})


def test_a_361_kb_emoji_event_is_queued_and_delivered_later(stack):
    limit_queues(stack)
    emoji = "\U0001f600" * 9000
    texts = {key: emoji for key in (*NAME_KEYS, "title")}
    event = {
        "type": "identify",
        "messageId": "msg-emoji",
        "userId": "usr_emoji",
        "timestamp": "2026-02-25T14:30:00Z",
        "traits": {**texts, "email": "emoji@example.com"},
        "context": {"traits": dict(texts), "consent": {"canonical": {"marketing": True}}},
    }
    assert len(json.dumps(event, ensure_ascii=False).encode()) > 361_000
    stack.freshdesk.fail_next(503, count=1)
    status, answer = stack.post(json.dumps(event, ensure_ascii=False).encode())
    assert (status, answer["outcome"]) == (202, "queued")
    stack.drain()
    [contact] = stack.freshdesk.contacts()
    assert contact["email"] == "emoji@example.com" and contact["name"] == emoji[:255]
    assert stack.parked() == []


def test_a_refused_send_names_the_sqs_error_code(stack):
    queues = SqsQueues(stack.resources.retry_queue_url + "-missing", stack.resources.dlq_url)
    with pytest.raises(QueueError, match=r"SendMessage failed: \w+ \(\S+\)"):
        queues.send_retry({"v": 1, "messageId": "m", "outcome": "queued", "event": {}}, 0)
