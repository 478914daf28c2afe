"""TLS verification is never disabled in product code, and a Freshdesk with a bad certificate is refused."""

from __future__ import annotations

import datetime
import http.server
import re
import ssl
import threading
from pathlib import Path

import pytest
from urllib3.util.ssl_ import resolve_cert_reqs

import signal_freshdesk
from signal_freshdesk.adapters.dynamodb import DynamoDBClient
from signal_freshdesk.adapters.freshdesk import FreshdeskClient
from signal_freshdesk.core.credentials import Credentials

PACKAGE = Path(signal_freshdesk.__file__).resolve().parent
REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCT_SOURCES = sorted(PACKAGE.rglob("*.py")) + sorted((REPO_ROOT / "functions").glob("*/app.py"))

INSECURE = {
    "cert_reqs CERT_NONE": re.compile(r"CERT_NONE"),
    "verify=False": re.compile(r"verify\s*=\s*False"),
    "assert_hostname=False": re.compile(r"assert_hostname\s*=\s*False"),
    "check_hostname=False": re.compile(r"check_hostname\s*=\s*False"),
    "unverified context": re.compile(r"_create_unverified_context|_create_default_https_context"),
    "silenced TLS warnings": re.compile(r"disable_warnings|InsecureRequestWarning"),
    "PYTHONHTTPSVERIFY": re.compile(r"PYTHONHTTPSVERIFY"),
    "plain-http Freshdesk": re.compile(r"http://\{[^}]*domain"),
}


def test_product_sources_are_found():
    names = {p.name for p in PRODUCT_SOURCES}
    assert {"freshdesk.py", "dynamodb.py", "secrets_extension.py", "app.py"} <= names


@pytest.mark.parametrize("path", PRODUCT_SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_product_source_disables_tls_verification(path):
    source = path.read_text()
    found = [
        f"{what}: line {source[: m.start()].count(chr(10)) + 1}"
        for what, pattern in INSECURE.items()
        for m in pattern.finditer(source)
    ]
    assert found == []


def _https_connection(pool_manager, url):
    pool = pool_manager.connection_from_url(url)
    return pool, pool._new_conn()


def test_the_freshdesk_pool_requires_verified_certificates():
    client = FreshdeskClient()
    assert client._pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    pool, conn = _https_connection(client._pool, "https://acme.freshdesk.com/api/v2/contacts")
    assert resolve_cert_reqs(pool.cert_reqs) == ssl.CERT_REQUIRED
    assert resolve_cert_reqs(conn.cert_reqs) == ssl.CERT_REQUIRED
    assert conn.assert_hostname is not False
    assert Credentials(domain="acme", api_key="k", webhook_token="t" * 16).base_url() == "https://acme.freshdesk.com"


def test_the_dynamodb_pool_requires_verified_certificates():
    client = DynamoDBClient(region="eu-west-1", endpoint="https://dynamodb.eu-west-1.amazonaws.com/")
    _, conn = _https_connection(client._pool, client.endpoint)
    assert resolve_cert_reqs(conn.cert_reqs) == ssl.CERT_REQUIRED
    assert conn.assert_hostname is not False


@pytest.fixture
def self_signed_https_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate no trust store holds."""
    pytest.importorskip("cryptography")  # moto depends on it
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            requests.append(self.path)
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_freshdesk_with_an_untrusted_certificate_gets_no_request(self_signed_https_server):
    url, requests = self_signed_https_server
    client = FreshdeskClient(base_url_override=url, connect_timeout=2, read_timeout=2)
    creds = Credentials(domain="acme", api_key="tls-test-api-key", webhook_token="t" * 16)
    answer = client.create_contact(creds, {"name": "N", "email": "tls@example.com"})
    assert answer.status is None, "an unverified certificate was accepted"
    assert "SSLError" in answer.error
    assert requests == []
