"""A ledger run: the stream sent as Signal sends it, the retry function fed as Lambda's SQS event
source feeds it, faults injected throughout, then everything drained and gathered for reconcile()."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from signal_freshdesk import pipeline as pipeline_module
from signal_freshdesk import retry as retry_module
from signal_freshdesk import secrets_manager as secrets_module
from signal_freshdesk.credentials import SecretUnavailable
from signal_freshdesk.freshdesk import FreshdeskClient
from signal_freshdesk.observability import logger as powertools_logger
from signal_freshdesk.preset import message_id_of
from signal_freshdesk.sqs import QueueError, RetryQueues

from ..apigw import LOCAL_WEBHOOK_TOKEN, LambdaContext, http_api_event
from ..event_source import DrainStats, SqsEventSource
from ..handlers import ingest_handler, retry_handler
from ..logcapture import LogCapture, connector_logger, record_fields
from .chaos import BASE_RATE_LIMIT, Chaos, InvocationLost, SimulatedKill
from .config import LedgerConfig
from .reconcile import LedgerReport, Observed, reconcile
from .stream import SignalRequest, build_stream


# ---------------------------------------------------------------------------------------------
# Instrumentation: every place the run reaches into the connector's internals is in this section.
# Each hook either injects a fault (Chaos.roll) or records what happened, for reconcile():
#   secrets_manager.read_secret_json  raises SecretUnavailable (secret_failure)
#   RetryQueues._send                 raises QueueError (sqs_send_failure); counts the sends that went
#   pipeline.deliver_contact          tags the thread with the messageId being delivered
#   FreshdeskClient._request          records each Freshdesk call (messageId, method, path, status, error)
#   retry.retry_record                fails a poison event's retry messages, every time
#   retry.secure                      kills the retry invocation before it secures its record (retry_kill)
# ---------------------------------------------------------------------------------------------
class Patcher:
    """setattr with undo, so the harness needs no pytest (make ledger) and restores what it wraps."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        self._undo.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._undo:
            target, name, value = self._undo.pop()
            setattr(target, name, value)


def instrument(run: Run, patch: Patcher) -> None:
    """Install the hooks listed above (undone by patch.undo())."""
    chaos, seen = run.chaos, run.seen

    real_read = secrets_module.read_secret_json

    def read_secret_json(secret_id: str) -> dict[str, Any]:
        if chaos.roll("secret_failure"):
            raise SecretUnavailable("injected: Secrets Manager could not be reached")
        return real_read(secret_id)
    patch.setattr(secrets_module, "read_secret_json", read_secret_json)

    real_send = RetryQueues._send

    def send(queues: RetryQueues, url: str, setting: str, envelope: dict[str, Any], delay: int) -> None:
        if chaos.roll("sqs_send_failure"):
            raise QueueError("injected: SQS SendMessage failed")
        real_send(queues, url, setting, envelope, delay)
        with run.lock:
            seen.sends["park" if setting == "DLQ_URL" else "retry"] += 1
    patch.setattr(RetryQueues, "_send", send)

    real_deliver = pipeline_module.deliver_contact

    def deliver_contact(delivery: Any, **kwargs: Any) -> Any:
        run.local.message_id = delivery.message_id
        try:
            return real_deliver(delivery, **kwargs)
        finally:
            run.local.message_id = None
    patch.setattr(pipeline_module, "deliver_contact", deliver_contact)

    real_request = FreshdeskClient._request

    def request(client: FreshdeskClient, creds: Any, method: str, path: str, body: Any, deadline: Any) -> Any:
        answer = real_request(client, creds, method, path, body, deadline)
        with run.lock:
            seen.calls.append({"messageId": getattr(run.local, "message_id", None), "method": method,
                               "path": path, "status": answer.status, "error": answer.error})
        return answer
    patch.setattr(FreshdeskClient, "_request", request)

    real_retry_record = retry_module.retry_record

    def retry_record(record: Any, runtime: Any, **kwargs: Any) -> bool:
        # A poison message stays poison after the faults stop: only the redrive policy ends it.
        try:
            mid = json.loads(record["body"]).get("messageId")
        except (ValueError, AttributeError, TypeError):
            mid = None
        if mid in run.poison:
            with run.lock:
                seen.retry["poison records failed"] += 1
            raise ValueError("injected: this record breaks the retry function every time")
        return real_retry_record(record, runtime, **kwargs)
    patch.setattr(retry_module, "retry_record", retry_record)

    real_secure = retry_module.secure

    def secure(event: Any, result: Any, runtime: Any, **kwargs: Any) -> Any:
        if chaos.roll("retry_kill"):
            with run.lock:
                seen.kills.append({"messageId": message_id_of(event), "outcome": result.outcome.value,
                                   "attempted": result.attempted})
            raise SimulatedKill("the retry invocation was killed before securing its record")
        return real_secure(event, result, runtime, **kwargs)
    patch.setattr(retry_module, "secure", secure)


@contextlib.contextmanager
def captured_connector_logs() -> Iterator[LogCapture[dict[str, Any]]]:
    """The connector's log records, kept (ids, outcomes, reasons: no contact data) while inside.

    Powertools' own stdout handler is muted (thousands of JSON lines) and nothing propagates to the
    root logger (pytest would keep every record for its report). Any other handler on the connector's
    logger (the suite's log privacy scanner) still sees all.
    """
    std = connector_logger()
    tap = LogCapture(record_fields, level=logging.DEBUG)
    mute = logging.Filter("--nothing--")
    stdout_handler = powertools_logger.registered_handler
    saved_propagate = std.propagate
    stdout_handler.addFilter(mute)
    tap.attach()
    std.propagate = False
    try:
        yield tap
    finally:
        tap.detach()
        stdout_handler.removeFilter(mute)
        std.propagate = saved_propagate


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
class Run:
    def __init__(self, config: LedgerConfig, *, resources: Any, sandbox: Any, sqs_client: Any) -> None:
        self.config = config
        self.resources = resources
        self.sandbox = sandbox
        self.sqs = sqs_client
        planned, requests, persons = build_stream(config.events, config.seed, config.max_batch)
        self.seen = Observed(config, planned, requests, persons)
        self.chaos = Chaos(config, sandbox)
        self.lock = threading.Lock()
        self.local = threading.local()
        self.signal_rng = random.Random(f"{config.seed}:signal")
        self.stop_pollers = threading.Event()
        poison_rng = random.Random(f"{config.seed}:poison")
        self.poison = {mid for mid, item in planned.items()
                       if item.expect == "deliver" and poison_rng.random() < config.faults.poison}
        self.late: list[tuple[int, SignalRequest]] = []  # re-sends of requests that got 2xx: (due at, request)
        self.step_index = 0  # the index of the request Signal sends now

    # -- Signal ----------------------------------------------------------------------------------
    def ingest(self, request: SignalRequest, copy: str) -> dict[str, Any] | None:
        event = http_api_event(request.body, {"Content-Type": "application/json",
                                              "Authorization": f"Bearer {LOCAL_WEBHOOK_TOKEN}",
                                              "User-Agent": "Datafly-Signal/ledger"})
        answer = ingest_handler()(event, LambdaContext(function_name="ingest", timeout_seconds=29))
        if self.chaos.roll("ingest_crash"):
            raise InvocationLost("the ingest invocation crashed after its work")
        return answer

    def send(self, request: SignalRequest, copy: str) -> None:
        """One request as Signal sends it: re-sent on 5xx or no answer, up to signal_attempts in all."""
        previous: int | None = None
        for attempt in range(1, self.config.signal_attempts + 1):
            record: dict[str, Any] = {"request": request.index, "copy": copy, "attempt": attempt,
                                      "message_ids": request.message_ids}
            try:
                answer = self.ingest(request, copy)
                status = answer["statusCode"]
                body = json.loads(answer["body"])
            except InvocationLost as exc:  # injected: the work was done, the answer lost
                status, body = None, {}
                record["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - the handler raised: API Gateway answers 502, Signal re-sends
                status, body = None, {}
                record["error"] = f"{type(exc).__name__}: {exc}"
                with self.lock:
                    self.seen.handler_errors.append(f"ingest request {request.index}: {type(exc).__name__}: {exc}")
            record["status"] = status
            if isinstance(body.get("results"), list):
                record["results"] = body["results"]
            elif isinstance(body, dict) and body.get("messageId"):
                record["results"] = [body]
            else:
                record["results"] = []
                record["outcome"] = body.get("outcome") if isinstance(body, dict) else None
            with self.lock:
                self.seen.answers.append(record)
                self.seen.signal["attempts"] += 1
                if attempt > 1:
                    self.seen.signal["re-sent after " + ("no answer" if previous is None else "5xx")] += 1
            previous = status
            if status is not None and status < 500:
                if copy == "original" and status < 300 and self.chaos.roll("signal_resend_2xx"):
                    with self.lock:
                        self.late.append((self.step_index + self.signal_rng.randint(1, 6), request))
                return
            if attempt < self.config.signal_attempts:
                time.sleep(self.config.signal_backoff * 2 ** (attempt - 1))
        with self.lock:
            self.seen.signal["requests given up"] += 1

    # -- the retry function's event source -------------------------------------------------------
    def retry_invocation(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self.lock:
            self.seen.retry["invocations"] += 1
        try:
            answer = retry_handler()(event, context)
        except SimulatedKill:
            with self.lock:
                self.seen.retry["killed mid-batch"] += 1
            raise RuntimeError("the retry invocation was killed mid-batch") from None
        except Exception as exc:  # not injected: the handler itself raised (the batch returns)
            with self.lock:
                self.seen.handler_errors.append(f"retry invocation: {type(exc).__name__}: {exc}")
            raise
        if self.chaos.roll("retry_crash"):
            with self.lock:
                self.seen.retry["crashed after work"] += 1
            raise RuntimeError("the retry invocation crashed after its work")
        return answer

    def poll(self, stats: DrainStats) -> None:
        source = SqsEventSource(self.sqs, self.resources.retry_queue_url, self.retry_invocation,
                                function_timeout=60.0)
        while not self.stop_pollers.is_set():
            try:
                handled = source.poll_once(stats)
            except Exception:  # noqa: BLE001 - an SQS call of the event source itself failed
                with self.lock:
                    self.seen.retry["event source errors"] += 1
                handled = 0
            if not handled:
                self.stop_pollers.wait(0.1)

    def pending(self) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.resources.retry_queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return {k.removeprefix("ApproximateNumberOf"): int(v) for k, v in attrs.items()}
    # -- the whole run ---------------------------------------------------------------------------
    def execute(self) -> Observed:
        started = time.monotonic()
        config, seen, chaos = self.config, self.seen, self.chaos
        self.sandbox.set_rate_limit(BASE_RATE_LIMIT, 60.0)
        self.sandbox.custom_fields = ("signup_method",)
        chaos.plan_outages(len(seen.requests))
        with captured_connector_logs() as tap:
            patch = Patcher()
            stats = DrainStats()
            pollers = [threading.Thread(target=self.poll, args=(stats,), name=f"ledger-retry-{n}", daemon=True)
                       for n in range(config.retry_workers)]
            ticker = threading.Thread(target=chaos.tick, args=(self.stop_pollers, config.chaos_tick),
                                      name="ledger-chaos", daemon=True)
            try:
                instrument(self, patch)
                for thread in pollers:
                    thread.start()
                ticker.start()
                self.play_signal()
                seen.signal["requests"] = len(seen.requests)
                self.let_faults_run_their_course()
                chaos.calm()
                self.wait_for_drain()
            finally:
                chaos.calm()
                self.stop_pollers.set()
                for thread in [*pollers, ticker]:
                    if thread.is_alive():
                        thread.join(timeout=90)
                patch.undo()
        seen.retry["records received"] = stats.records
        seen.retry["records returned"] = stats.failures
        seen.pending_at_end = self.pending()
        seen.logs = tap.records
        seen.dlq = read_queue(self.sqs, self.resources.dlq_url)
        seen.contacts = self.sandbox.contacts(include_deleted=True)
        seen.sandbox_requests = self.sandbox.requests()
        seen.armed, seen.injected = chaos.armed, chaos.injected
        seen.elapsed = time.monotonic() - started
        return seen

    def play_signal(self) -> None:
        """Every request of the stream, as Signal sends them (a few at once), with the re-sends after 2xx."""
        config, seen, chaos = self.config, self.seen, self.chaos
        slots = threading.Semaphore(config.signal_workers)
        futures = []

        def submit(pool: ThreadPoolExecutor, request: SignalRequest, copy: str) -> None:
            slots.acquire()

            def job() -> None:
                try:
                    self.send(request, copy)
                finally:
                    slots.release()
            futures.append(pool.submit(job))

        with ThreadPoolExecutor(max_workers=config.signal_workers + 2, thread_name_prefix="ledger-signal") as pool:
            for request in seen.requests:
                self.step_index = request.index
                chaos.step(request.index)
                with self.lock:
                    due = [r for at, r in self.late if at <= request.index]
                    self.late = [(at, r) for at, r in self.late if at > request.index]
                for again in due:
                    seen.signal["re-sent after 2xx"] += 1
                    submit(pool, again, "re-send of 2xx")
                submit(pool, request, "original")
                if len(request.message_ids) <= 10 and chaos.roll("signal_concurrent_copy"):
                    seen.signal["concurrent copies"] += 1
                    submit(pool, request, "concurrent copy")
            for future in futures:
                future.result()
            with self.lock:
                leftover, self.late = [r for _, r in self.late], []
            for again in leftover:
                seen.signal["re-sent after 2xx"] += 1
                submit(pool, again, "re-send of 2xx")
            for future in futures:
                future.result()

    def let_faults_run_their_course(self) -> None:
        """Faults keep coming for a while: an outage or a rate-limit storm under way runs its course."""
        chaos = self.chaos
        tail_ends = time.monotonic() + self.config.chaos_tail_seconds
        while time.monotonic() < tail_ends or ((chaos.outage_active or chaos.storm_active)
                                               and time.monotonic() < tail_ends + 20):
            time.sleep(0.1)

    def wait_for_drain(self) -> None:
        """Until the retry queue holds nothing (three looks in a row), or the drain timeout."""
        ends = time.monotonic() + self.config.drain_timeout
        quiet = 0
        while time.monotonic() < ends and quiet < 3:
            quiet = quiet + 1 if sum(self.pending().values()) == 0 else 0
            time.sleep(0.3)


def read_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message of a queue (received and left hidden for the rest of the run)."""
    found: list[dict[str, Any]] = []
    empty = 0
    while empty < 2:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                       AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            empty += 1
            continue
        for message in messages:
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = None
            found.append({"body": body, "raw": message["Body"],
                          "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0))})
    return found


def run_ledger(config: LedgerConfig, *, resources: Any, sandbox: Any, sqs_client: Any) -> tuple[LedgerReport, Observed]:
    """Run with the functions' environment already set (the stack's resources + LEDGER_ENV) and the
    runtime reset. Returns the report and what was observed."""
    seen = Run(config, resources=resources, sandbox=sandbox, sqs_client=sqs_client).execute()
    return reconcile(seen), seen
