"""A local webhook: POST /events answered by the real ingest handler, the retry queue drained by the real retry handler.

    python -m signal_freshdesk_dev.serve [--port 3000] [--host 127.0.0.1]        (or: make serve)

No AWS account and no Docker: AWS is moto as a server on loopback (the secret, the retry queue, the DLQ)
and Freshdesk is the project's sandbox. With FRESHDESK_DOMAIN and FRESHDESK_API_KEY set, events go to
that real Freshdesk account instead. The webhook answers as the deployed HTTP API does: the same
bearer token check, the same answers, the same payload-format-2.0 request handed to the handler, and
404 {"message":"Not Found"} for any other route. One line per event is printed as it happens (time,
messageId, outcome, Freshdesk status, reason: never contact data); the functions' own JSON log lines
go to .local/serve-logs.jsonl. Ctrl-C (or SIGTERM) stops it cleanly.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs

from signal_freshdesk.core.credentials import parse_credentials
from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.settings import Settings

from .apigw import LOCAL_WEBHOOK_TOKEN, LambdaContext, http_api_event
from .event_source import DrainStats, SqsEventSource
from .handlers import REPO_ROOT, ingest_handler, retry_handler
from .local_aws import FAKE_CREDENTIALS, REGION, LocalAws, local_secret, provision
from .logcapture import LogCapture, is_processed, redirect_streams, restore_streams
from .sandbox import FreshdeskSandbox

LOCAL_DIR = REPO_ROOT / ".local"
STATE_FILE = LOCAL_DIR / "serve.json"
LOG_FILE = LOCAL_DIR / "serve-logs.jsonl"
DEFAULT_PORT = 3000
WEBHOOK_ROUTE = ("POST", "/events")
# API Gateway HTTP APIs refuse payloads over 10 MB themselves; below that the ingest function decides (1 MiB).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INGEST_TIMEOUT_SECONDS = 29.0  # template.yaml: IngestFunction Timeout
RETRY_TIMEOUT_SECONDS = 60.0  # template.yaml: RetryFunction Timeout
STACK_NAME = "signal-freshdesk-local"

# The functions see the developer's shell, except where serve sets a value: these it takes from the
# shell when they are set there, instead of the template's or its own local default.
PASSTHROUGH_SETTINGS = (
    "CONSENT_MODE",
    "DEFAULT_PHONE_REGION",
    "MAX_ATTEMPTS",
    "MAX_RETRY_AGE_SECONDS",
    "RETRY_BASE_SECONDS",
    "BATCH_CONCURRENCY",
    "FRESHDESK_CONNECT_TIMEOUT",
    "FRESHDESK_READ_TIMEOUT",
    "SECRET_MAX_AGE_SECONDS",
    "POWERTOOLS_LOG_LEVEL",
)
# Local defaults: retries back off from 1 s (10 s deployed) so the drain is visible while you watch;
# there is no Parameters and Secrets extension on a laptop.
LOCAL_DEFAULTS = {
    "RETRY_BASE_SECONDS": "1",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "SECRETS_EXTENSION": "off",
}
# Variables that would send the functions' boto3 calls somewhere other than the embedded moto.
ENDPOINT_OVERRIDES = ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
JSON_CONTENT = "application/json"


class ServeError(Exception):
    """serve cannot start; the message says why."""


def event_line(serve: LocalServe, record: logging.LogRecord) -> None:
    """Print one line for a handler's structured log record (ids and outcomes only)."""
    message = record.getMessage()
    if is_processed(record):
        source = "ingest" if message == "event processed" else "retry"
        detail = str(getattr(record, "reason", "") or "")
        attempts = getattr(record, "attempts", None)
        if source == "retry" and attempts is not None:
            detail = f"{detail}  attempts={attempts}".strip()
        if getattr(record, "duplicate", False):
            detail = f"{detail}  duplicate: answered from the idempotency record".strip()
        serve.say(
            source,
            getattr(record, "messageId", ""),
            getattr(record, "outcome", ""),
            getattr(record, "status", None),
            detail,
        )
    elif record.levelno >= logging.WARNING:
        # The connector's warnings and errors are fixed texts; their extras may not be, so only
        # the field names of a dropped-fields warning are added.
        fields = getattr(record, "fields", None)
        detail = message + (f" ({', '.join(map(str, fields))})" if isinstance(fields, list) else "")
        level = "error" if record.levelno >= logging.ERROR else "warning"
        serve.say(serve.source_of_thread(), getattr(record, "messageId", ""), level, None, detail)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], serve: LocalServe) -> None:
        self.serve = serve
        super().__init__(address, _WebhookRequest)


class _WebhookRequest(BaseHTTPRequestHandler):
    """One HTTP exchange, answered the way API Gateway's HTTP API answers it."""

    protocol_version = "HTTP/1.1"
    server_version = "signal-freshdesk-serve"
    sys_version = ""
    timeout = 15  # idle keep-alive connections are closed after this many seconds

    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # serve prints its own lines

    def version_string(self) -> str:
        return self.server_version

    def do_POST(self) -> None:
        self._exchange()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_POST

    def _exchange(self) -> None:
        serve = self.server.serve
        with serve.in_flight():
            path, _, query = self.path.partition("?")
            if (self.command, path) != WEBHOOK_ROUTE:
                # No route matched: API Gateway answers without invoking anything.
                self.close_connection = True
                self._reply(404, {"Content-Type": JSON_CONTENT}, b'{"message":"Not Found"}')
                serve.say("http", "", "not_found", 404, f"{self.command} {path}")
                return
            body = self._read_body()
            if body is None:
                return
            event = http_api_event(
                body or None, self._lambda_headers(), method=self.command, path=path, source_ip=self.client_address[0]
            )
            self._add_query_and_cookies(event, query)
            status, headers, payload = serve.invoke_ingest(event)
            self._reply(status, headers, payload, request_id=event["requestContext"]["requestId"])

    def _read_body(self) -> bytes | None:
        """The raw body; None when the request was already answered (too large, malformed framing)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError
        except ValueError:
            self._refuse(400, "Bad Request")
            return None
        if length > MAX_PAYLOAD_BYTES:
            self._refuse(413, "Request Entity Too Large")
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        data = bytearray()
        try:
            while True:
                size = int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass  # trailers
                    return bytes(data)
                if len(data) + size > MAX_PAYLOAD_BYTES:
                    self._refuse(413, "Request Entity Too Large")
                    return None
                data += self.rfile.read(size)
                self.rfile.readline(10)
        except ValueError:
            self._refuse(400, "Bad Request")
            return None

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True
        self._reply(status, {"Content-Type": JSON_CONTENT}, json.dumps({"message": message}).encode())
        self.server.serve.say("http", "", "refused", status, message)

    def _lambda_headers(self) -> dict[str, str]:
        """Header names lower-cased, repeated headers joined with commas, plus the X-Forwarded-* API Gateway adds."""
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        headers.setdefault("x-forwarded-for", self.client_address[0])
        headers.setdefault("x-forwarded-port", str(self.server.server_address[1]))
        headers.setdefault("x-forwarded-proto", "http")
        return headers

    @staticmethod
    def _add_query_and_cookies(event: dict[str, Any], query: str) -> None:
        if query:
            event["rawQueryString"] = query
            event["queryStringParameters"] = {
                k: ",".join(v) for k, v in parse_qs(query, keep_blank_values=True).items()
            }
        cookie = event["headers"].pop("cookie", None)
        if cookie:
            event["cookies"] = [part.strip() for part in cookie.split(";") if part.strip()]

    def _reply(self, status: int, headers: Mapping[str, str], payload: bytes, *, request_id: str = "") -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if request_id:
            self.send_header("Apigw-Requestid", request_id)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class LocalServe:
    """The local stack: webhook server, drain thread, embedded AWS and Freshdesk, started and stopped as one."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        webhook_token: str = LOCAL_WEBHOOK_TOKEN,
        sandbox: FreshdeskSandbox | None = None,
        real_freshdesk: tuple[str, str] | None = None,
        out: TextIO | None = None,
        log_path: Path | None = LOG_FILE,
        state_path: Path | None = STATE_FILE,
        poll_interval: float = 0.5,
        settings_env: Mapping[str, str] | None = None,
        signing_secret: str = "",
        stack_name: str = STACK_NAME,
    ) -> None:
        self.host = host
        self.signing_secret = signing_secret
        self.stack_name = stack_name
        self.port = port
        self.webhook_token = webhook_token
        self.real_freshdesk = real_freshdesk
        self.out = out or sys.stdout
        self.log_path = log_path
        self.state_path = state_path
        self.poll_interval = poll_interval
        source_env = os.environ if settings_env is None else settings_env
        self.settings_env = {
            **LOCAL_DEFAULTS,
            **{k: source_env[k] for k in PASSTHROUGH_SETTINGS if source_env.get(k, "").strip()},
        }
        self.sandbox = sandbox
        self._own_sandbox = sandbox is None and real_freshdesk is None
        self.aws: LocalAws | None = None
        self.resources = None
        self.sqs = None
        self.drain_stats = DrainStats()
        self._server: _HttpServer | None = None
        self._server_thread: threading.Thread | None = None
        self._drain_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._print_lock = threading.Lock()
        self._busy = threading.Condition()
        self._requests_in_flight = 0
        self._saved_environ: dict[str, str] | None = None
        self._log_file: TextIO | None = None
        self._saved_streams: list[tuple[logging.StreamHandler, Any]] = []
        self._tap: LogCapture[None] | None = None
        self._started = False
        self._ingest = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalServe:
        secret = self._secret()
        try:
            Settings.from_env(self.settings_env)
        except ConfigError as exc:
            raise ServeError(str(exc)) from None
        try:
            self._server = _HttpServer((self.host, self.port), self)
        except OSError as exc:
            raise ServeError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                " (is another serve or sam local start-api running? try --port)"
            ) from None
        self._started = True
        try:
            self._start_backends(secret)
        except BaseException:
            self.stop()
            raise
        return self

    def _secret(self) -> dict[str, str]:
        if self.real_freshdesk is not None:
            domain, api_key = self.real_freshdesk
            secret = local_secret(domain=domain, api_key=api_key, webhook_token=self.webhook_token)
        else:
            secret = local_secret(
                api_key=self.sandbox.api_key if self.sandbox else "sandbox-api-key", webhook_token=self.webhook_token
            )
        if self.signing_secret:
            secret["signing_secret"] = self.signing_secret
        try:
            creds = parse_credentials(secret)  # the same validation the functions apply
        except ConfigError as exc:
            raise ServeError(
                str(exc)
                .replace("the secret's 'webhook_token'", "WEBHOOK_TOKEN")
                .replace("the secret's 'signing_secret'", "WEBHOOK_SIGNING_SECRET")
                .replace("the secret's 'domain'", "FRESHDESK_DOMAIN")
                .replace("the secret's 'api_key'", "FRESHDESK_API_KEY")
            ) from None
        return {**secret, "domain": creds.domain, "api_key": creds.api_key, "webhook_token": creds.webhook_token}

    def _start_backends(self, secret: dict[str, str]) -> None:
        import boto3

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self._saved_environ = dict(os.environ)
        # Nothing of the developer's AWS setup may reach the functions: no profile, no endpoint, no keys.
        for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_") or k in ENDPOINT_OVERRIDES]:
            del os.environ[key]
        os.environ.pop("FRESHDESK_BASE_URL", None)
        os.environ.update(FAKE_CREDENTIALS)
        if self._own_sandbox:
            self.sandbox = FreshdeskSandbox(api_key=secret["api_key"]).start()
        self.aws = LocalAws().start()
        self.resources = provision(
            secret, endpoint_url=self.aws.endpoint_url, name=self.stack_name, visibility_timeout=30
        )
        os.environ.update(self.aws.environment())
        os.environ.update(self.resources.environment(freshdesk_base_url=self.freshdesk_base_url, **self.settings_env))
        from signal_freshdesk.runtime import reset_runtime

        reset_runtime()
        self._ingest, retry = ingest_handler(), retry_handler()  # importing them creates the functions' logger
        self._capture_logs()
        self.sqs = boto3.client(
            "sqs",
            region_name=REGION,
            endpoint_url=self.aws.endpoint_url,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        source = SqsEventSource(self.sqs, self.resources.retry_queue_url, retry, function_timeout=RETRY_TIMEOUT_SECONDS)
        self._drain_thread = threading.Thread(target=self._drain, args=(source,), name="serve-retry-drain", daemon=True)
        self._drain_thread.start()
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="serve-http", daemon=True
        )
        self._server_thread.start()
        self._write_state()

    def stop(self) -> None:
        """Stop accepting, let answers in progress finish, stop the drain, the servers, and restore the process."""
        if not self._started:
            return
        self._started = False
        if self._server is not None:
            if self._server_thread is not None:
                self._server.shutdown()
            self._server.server_close()
        with self._busy:
            self._busy.wait_for(lambda: self._requests_in_flight == 0, timeout=INGEST_TIMEOUT_SECONDS + 5)
        self._stopping.set()
        if self._drain_thread is not None:
            self._drain_thread.join(timeout=RETRY_TIMEOUT_SECONDS + 5)
        self._report_leftovers()
        if self.aws is not None:
            self.aws.stop()
        if self._own_sandbox and self.sandbox is not None:
            self.sandbox.stop()
        self._release_logs()
        self._remove_state()
        if self._saved_environ is not None:
            for key in set(os.environ) - set(self._saved_environ):
                del os.environ[key]
            os.environ.update(self._saved_environ)
            from signal_freshdesk.runtime import reset_runtime

            reset_runtime()

    def __enter__(self) -> LocalServe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the outside sees -----------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("serve is not started")
        host, port = self._server.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}{WEBHOOK_ROUTE[1]}"

    @property
    def freshdesk_base_url(self) -> str:
        """The FRESHDESK_BASE_URL the functions get: the sandbox's, or "" for a real account."""
        return "" if self.real_freshdesk is not None or self.sandbox is None else self.sandbox.base_url

    def state(self) -> dict[str, Any]:
        """What .local/serve.json holds: enough for `dlq --local` and `check --local` to find this run."""
        assert self.aws is not None and self.resources is not None
        return {
            "pid": os.getpid(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "webhook_url": self.url,
            "aws_endpoint_url": self.aws.endpoint_url,
            "region": REGION,
            "secret_arn": self.resources.secret_arn,
            "retry_queue_url": self.resources.retry_queue_url,
            "dlq_url": self.resources.dlq_url,
            "freshdesk": "sandbox" if self.freshdesk_base_url else f"https://{self._secret_domain()}.freshdesk.com",
            "freshdesk_base_url": self.freshdesk_base_url,
            "log_file": str(self.log_path) if self.log_path else "",
        }

    def banner(self) -> str:
        token = self.webhook_token if self.webhook_token == LOCAL_WEBHOOK_TOKEN else "$WEBHOOK_TOKEN"
        if self.freshdesk_base_url:
            freshdesk = f"the sandbox at {self.freshdesk_base_url} (no real account is called)"
        else:
            freshdesk = (
                f"https://{self._secret_domain()}.freshdesk.com — a REAL account: events you send create real contacts"
            )
        lines = [
            "signal-freshdesk local webhook (the real ingest and retry handlers; Ctrl-C stops it)",
            f"  webhook    POST {self.url}   Authorization: Bearer {token}",
            f"  Freshdesk  {freshdesk}",
            f"  AWS        embedded moto at {self.aws.endpoint_url}: "
            "the secret, the retry queue (drained here), the DLQ",
        ]
        if self.log_path:
            lines.append(f"  logs       {_shown(self.log_path)} (the functions' JSON log lines)")
        if self.state_path:
            lines.append(f"  state      {_shown(self.state_path)} (for dlq --local and check --local)")
        lines.append("")
        lines.append(f"  {'time':<8}  {'source':<6}  {'messageId':<36}  {'outcome':<12}  {'status':<6}  reason")
        return "\n".join(lines)

    def _secret_domain(self) -> str:
        return self._secret()["domain"]

    def say(self, source: str, message_id: Any, outcome: Any, status: Any, detail: str = "") -> None:
        stamp = time.strftime("%H:%M:%S")
        status_text = "-" if status in (None, "") else str(status)
        line = f"  {stamp:<8}  {source:<6}  {message_id or '-'!s:<36}  {outcome!s:<12}  {status_text:<6}  {detail}"
        with self._print_lock:
            self.out.write(line.rstrip() + "\n")
            self.out.flush()

    def source_of_thread(self) -> str:
        return "retry" if threading.current_thread() is self._drain_thread else "ingest"

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        with self._busy:
            self._requests_in_flight += 1
        try:
            yield
        finally:
            with self._busy:
                self._requests_in_flight -= 1
                self._busy.notify_all()

    # -- the two functions ---------------------------------------------------------------------
    def invoke_ingest(self, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Invoke the ingest handler as Lambda would, and turn its answer into HTTP as API Gateway does."""
        context = LambdaContext(function_name="signal-freshdesk-ingest", timeout_seconds=INGEST_TIMEOUT_SECONDS)
        try:
            answer = self._ingest(event, context)
        except Exception:
            self._log_raw(traceback.format_exc())
            self.say("ingest", "", "error", 500, "the ingest handler raised; the traceback is in the log file")
            return 500, {"Content-Type": JSON_CONTENT}, b'{"message":"Internal Server Error"}'
        if not isinstance(answer, dict) or "statusCode" not in answer:
            # Payload format 2.0: a response without statusCode is taken as a 200 JSON body.
            return 200, {"Content-Type": JSON_CONTENT}, json.dumps(answer).encode()
        body = answer.get("body") or ""
        payload = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode("utf-8")
        headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
        status = int(answer["statusCode"])
        self._note_refusal(status, payload)
        return status, headers, payload

    def _note_refusal(self, status: int, payload: bytes) -> None:
        """Requests the handler refused before looking at any event get a line too (events log their own)."""
        try:
            body = json.loads(payload)
        except ValueError:
            return
        if isinstance(body, dict) and body.get("outcome") in ("unauthorized", "bad_request", "error"):
            self.say("ingest", "", body["outcome"], status, str(body.get("message", "")))

    def _drain(self, source: SqsEventSource) -> None:
        """Lambda's SQS event source mapping, locally: poll, invoke the retry handler, delete what succeeded."""
        while not self._stopping.is_set():
            try:
                handled = source.poll_once(self.drain_stats)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                self.say("retry", "", "error", None, f"could not poll the retry queue ({type(exc).__name__})")
                handled = 0
            if not handled:
                self._stopping.wait(self.poll_interval)

    # -- logs and state ------------------------------------------------------------------------
    def _capture_logs(self) -> None:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("a", encoding="utf-8")
            self._saved_streams.extend(redirect_streams(self._log_file))
        # One printed line per event; a printing problem must never break a handler.
        self._tap = LogCapture(lambda record: event_line(self, record), contain_errors=True).attach()

    def _release_logs(self) -> None:
        if self._tap is not None:
            self._tap.detach()
            self._tap = None
        restore_streams(self._saved_streams)
        self._saved_streams.clear()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _log_raw(self, text: str) -> None:
        if self._log_file is not None:
            with self._print_lock:
                self._log_file.write(text)
                self._log_file.flush()

    def _write_state(self) -> None:
        if not self.state_path:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.state_path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(self.state(), indent=2) + "\n")
        partial.replace(self.state_path)

    def _remove_state(self) -> None:
        if not self.state_path:
            return
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self.state_path.read_text()).get("pid") == os.getpid():
                self.state_path.unlink()

    def _report_leftovers(self) -> None:
        if self.sqs is None or self.resources is None:
            return
        try:
            left = {}
            for name, url in (("retry queue", self.resources.retry_queue_url), ("DLQ", self.resources.dlq_url)):
                attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                left[name] = sum(
                    int(attrs.get(k, 0))
                    for k in (
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed",
                    )
                )
        except Exception:
            return
        if any(left.values()):
            with self._print_lock:
                self.out.write(
                    f"  discarded with the embedded AWS: {left['retry queue']} message(s) in the retry "
                    f"queue, {left['DLQ']} in the DLQ\n"
                )


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_state(path: Path = STATE_FILE) -> dict[str, Any]:
    """The endpoint and queue URLs of a running `make serve`, or ServeError when none is running."""
    try:
        state = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ServeError(f"no {path}: start the local webhook first (make serve)") from None
    except ValueError:
        raise ServeError(f"{path} is not valid JSON: restart make serve") from None
    pid = state.get("pid")
    if isinstance(pid, int) and not _process_exists(pid):
        raise ServeError(f"{path} names process {pid}, which is not running: start make serve again")
    return state


def serve_client(state: dict[str, Any], service: str) -> Any:
    """A boto3 client for the embedded AWS of a running `make serve` (from read_state)."""
    import boto3

    return boto3.client(
        service,
        region_name=state["region"],
        endpoint_url=state["aws_endpoint_url"],
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def real_freshdesk_from_env(env: Mapping[str, str]) -> tuple[str, str] | None:
    domain, api_key = env.get("FRESHDESK_DOMAIN", "").strip(), env.get("FRESHDESK_API_KEY", "").strip()
    if domain and api_key:
        return domain, api_key
    if domain or api_key:
        raise ServeError(
            "set both FRESHDESK_DOMAIN and FRESHDESK_API_KEY to use a real Freshdesk account, "
            "or neither to use the sandbox"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m signal_freshdesk_dev.serve", description=__doc__.strip().splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument(
        "--log-file", type=Path, default=LOG_FILE, help=f"where the functions' JSON log lines go (default {LOG_FILE})"
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=STATE_FILE,
        help=f"where the endpoint and queue URLs are written (default {STATE_FILE})",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        serve = LocalServe(
            host=args.host,
            port=args.port,
            webhook_token=os.environ.get("WEBHOOK_TOKEN", "").strip() or LOCAL_WEBHOOK_TOKEN,
            real_freshdesk=real_freshdesk_from_env(os.environ),
            signing_secret=os.environ.get("WEBHOOK_SIGNING_SECRET", "").strip(),
            log_path=args.log_file,
            state_path=args.state_file,
        )
        serve.start()
    except ServeError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    try:
        print(serve.banner(), flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"  note: listening on {args.host}, reachable from other machines", flush=True)
        while not stop.wait(0.2):
            pass
        print("\n  stopping: no new requests; finishing answers and the retry drain", flush=True)
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean stop
        serve.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("  stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
