"""FreshdeskClient's company and contact-field calls: the request each sends, and the answer it hands back.

A loopback server records each request as it arrived (method, raw target, headers, body) and answers
what the test set, so the paths, the query encoding and the JSON bodies are checked byte for byte.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from signal_freshdesk.adapters.freshdesk import FreshdeskClient
from signal_freshdesk.core.credentials import Credentials
from signal_freshdesk.core.timing import Deadline

CREDS = Credentials(domain="acme", api_key="company-key", webhook_token="token")


@dataclass
class Recorded:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    """Answers every request with `status` and `answer` (JSON), keeping what came."""

    url: str = ""
    status: int = 200
    answer: Any = None
    requests: list[Recorded] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recording.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            data = b"" if recording.answer is None else json.dumps(recording.answer).encode()
            self.send_response(recording.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _record

        def log_message(self, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    recording.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield recording
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def client(server: RecordingServer) -> FreshdeskClient:
    return FreshdeskClient(base_url_override=server.url)


def only(server: RecordingServer) -> Recorded:
    [request] = server.requests
    return request


def test_create_company_posts_the_company_as_json_with_basic_auth(server, client):
    server.status, server.answer = 201, {"id": 1, "name": "Acme Corporation"}
    answer = client.create_company(CREDS, {"name": "Acme Corporation", "domains": ["acme.com"]})
    request = only(server)
    assert (request.method, request.target) == ("POST", "/api/v2/companies")
    assert json.loads(request.body) == {"name": "Acme Corporation", "domains": ["acme.com"]}
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"company-key:X").decode()
    assert request.headers["Accept"] == "application/json"
    assert (answer.status, answer.body, answer.error) == (201, {"id": 1, "name": "Acme Corporation"}, "")


def test_update_company_puts_to_the_companys_path(server, client):
    server.answer = {"id": 7, "domains": ["acme.io"]}
    answer = client.update_company(CREDS, 7, {"domains": ["acme.io"]})
    request = only(server)
    assert (request.method, request.target) == ("PUT", "/api/v2/companies/7")
    assert json.loads(request.body) == {"domains": ["acme.io"]}
    assert (answer.status, answer.body) == (200, {"id": 7, "domains": ["acme.io"]})


def test_get_company_sends_no_body(server, client):
    server.answer = {"id": 3, "name": "Initech"}
    answer = client.get_company(CREDS, 3)
    request = only(server)
    assert (request.method, request.target, request.body) == ("GET", "/api/v2/companies/3", b"")
    assert "Content-Type" not in request.headers
    assert answer.body == {"id": 3, "name": "Initech"}


def test_company_ids_are_sent_as_integers_so_no_text_reaches_the_path(server, client):
    client.get_company(CREDS, "12")
    with pytest.raises(ValueError):
        client.update_company(CREDS, "12/../../contacts", {})
    assert [r.target for r in server.requests] == ["/api/v2/companies/12"]


@pytest.mark.parametrize(
    "name,query",
    [
        ("Acme", "name=Acme"),
        ("Acme Corp", "name=Acme%20Corp"),
        ("R&D / Labs?x=1#top", "name=R%26D%20%2F%20Labs%3Fx%3D1%23top"),
        ("Zürich+", "name=Z%C3%BCrich%2B"),
    ],
    ids=["plain", "space", "reserved_characters", "non_ascii_and_plus"],
)
def test_find_companies_gets_autocomplete_with_the_name_url_encoded(server, client, name, query):
    server.answer = {"companies": [{"id": 1, "name": "Acme Corporation"}]}
    answer = client.find_companies(CREDS, name)
    request = only(server)
    assert (request.method, request.target) == ("GET", f"/api/v2/companies/autocomplete?{query}")
    assert answer.body == {"companies": [{"id": 1, "name": "Acme Corporation"}]}


def test_contact_fields_gets_the_schema_and_list_contact_fields_is_the_same_call(server, client):
    server.answer = [{"id": 1, "name": "name", "type": "default_name"}]
    first = client.contact_fields(CREDS)
    second = client.list_contact_fields(CREDS)
    assert [(r.method, r.target) for r in server.requests] == [("GET", "/api/v2/contact_fields")] * 2
    assert first.body == second.body == [{"id": 1, "name": "name", "type": "default_name"}]


def test_error_answers_come_back_as_they_are(server, client):
    server.status = 409
    server.answer = {
        "description": "Validation failed",
        "errors": [{"field": "name", "message": "It should be a unique value", "code": "duplicate_value"}],
    }
    answer = client.create_company(CREDS, {"name": "Acme"})
    assert answer.status == 409 and answer.body == server.answer and answer.error == ""
    server.status, server.answer = 404, None
    missing = client.get_company(CREDS, 99)
    assert (missing.status, missing.body) == (404, None)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, d: c.create_company(CREDS, {"name": "Acme"}, deadline=d),
        lambda c, d: c.update_company(CREDS, 1, {"name": "Acme"}, deadline=d),
        lambda c, d: c.get_company(CREDS, 1, deadline=d),
        lambda c, d: c.find_companies(CREDS, "Acme", deadline=d),
        lambda c, d: c.contact_fields(CREDS, deadline=d),
    ],
    ids=["create_company", "update_company", "get_company", "find_companies", "contact_fields"],
)
def test_no_call_is_made_when_the_deadline_leaves_no_time(server, client, call):
    answer = call(client, Deadline.after(0.0))
    assert answer.status is None and answer.error == "no time left before the deadline"
    assert server.requests == []


def test_an_unreachable_freshdesk_is_an_answer_without_a_status():
    client = FreshdeskClient(base_url_override="http://127.0.0.1:9", connect_timeout=0.5, read_timeout=0.5)
    answer = client.find_companies(CREDS, "Acme")
    assert answer.status is None and answer.error
