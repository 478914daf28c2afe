"""A ledger run: the stream sent as Signal sends it, the retry function fed as Lambda's SQS event
source feeds it, faults injected throughout, then everything drained and gathered for reconcile()."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from signal_freshdesk.core.credentials import CredentialStore
from signal_freshdesk.core.errors import QueueError, SecretUnavailable
from signal_freshdesk.core.model import Answer
from signal_freshdesk.core.ports import Claim, Freshdesk, IdempotencyStore, Queues, Runtime, SecretSource
from signal_freshdesk.observability import current_message_id
from signal_freshdesk.observability import logger as powertools_logger
from signal_freshdesk.runtime import build_secret_source, get_runtime

from ..apigw import LOCAL_WEBHOOK_TOKEN, LambdaContext, http_api_event
from ..event_source import DrainStats, SqsEventSource
from ..handlers import ingest_handler, retry_handler
from ..logcapture import LogCapture, connector_logger, record_fields
from .chaos import BASE_RATE_LIMIT, Chaos, InvocationLost, SimulatedKill
from .config import LedgerConfig
from .reconcile import (
    BATCH_CRASHED,
    BATCH_KILLED,
    BATCH_RAISED,
    DELETED,
    RECORD_RETURNED,
    LedgerReport,
    Observed,
    reconcile,
)
from .stream import SignalRequest, build_stream


# ---------------------------------------------------------------------------------------------
# Instrumentation: the run wraps the ports of the functions' runtime, the way the connector's own
# composition root hands them to the core. Each wrapper injects a fault (Chaos.roll) or records what
# happened, for reconcile():
#   the secret source     raises SecretUnavailable (secret_failure)
#   the queues            raise QueueError (sqs_send_failure); count the sends that went; in a retry
#                         invocation, may kill it before it secures its record (retry_kill)
#   Freshdesk             records each call (messageId, method, path, status, error); in a retry
#                         invocation, a poison event's call breaks the record, every time
#   the idempotency store in a retry invocation: a poison event breaks its record on the first look,
#                         and a kill may come before the outcome is recorded (retry_kill)
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


class Hooks:
    """What the wrappers share: the run's chaos and observations, and what this thread is doing."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.chaos = run.chaos
        self.seen = run.seen

    def in_retry(self) -> bool:
        return bool(getattr(self.run.local, "in_retry", False))

    def poison_breaks_this_record(self) -> None:
        # A poison message stays poison after the faults stop: only the redrive policy ends it.
        if self.in_retry() and current_message_id() in self.run.poison:
            with self.run.lock:
                self.seen.retry["poison records failed"] += 1
            raise ValueError("injected: this record breaks the retry function every time")

    def maybe_kill(self, outcome: str) -> None:
        """In a retry invocation, at most one roll per record, at its first step of securing or recording."""
        mid = current_message_id()
        if not self.in_retry() or getattr(self.run.local, "kill_rolled_for", None) == mid:
            return
        self.run.local.kill_rolled_for = mid
        if self.chaos.roll("retry_kill"):
            attempted = mid in getattr(self.run.local, "called", set())
            with self.run.lock:
                self.seen.kills.append({"messageId": mid, "outcome": outcome, "attempted": attempted})
            raise SimulatedKill("the retry invocation was killed before securing its record")


class ChaoticSecretSource:
    def __init__(self, real: SecretSource, hooks: Hooks) -> None:
        self.real, self.hooks = real, hooks

    def read_secret(self, *, force: bool = False) -> Any:
        if self.hooks.chaos.roll("secret_failure"):
            raise SecretUnavailable("injected: Secrets Manager could not be reached")
        return self.real.read_secret(force=force)


class ChaoticQueues:
    def __init__(self, real: Queues, hooks: Hooks) -> None:
        self.real, self.hooks = real, hooks

    def _send(self, kind: str, envelope: dict[str, Any], send: Any) -> None:
        self.hooks.maybe_kill(str(envelope.get("outcome")))
        if self.hooks.chaos.roll("sqs_send_failure"):
            raise QueueError("injected: SQS SendMessage failed")
        send()
        with self.hooks.run.lock:
            self.hooks.seen.sends[kind] += 1

    def send_retry(self, envelope: dict[str, Any], delay_seconds: int) -> None:
        self._send("retry", envelope, lambda: self.real.send_retry(envelope, delay_seconds))

    def park(self, envelope: dict[str, Any]) -> None:
        self._send("park", envelope, lambda: self.real.park(envelope))


class RecordedFreshdesk:
    def __init__(self, real: Freshdesk, hooks: Hooks) -> None:
        self.real, self.hooks = real, hooks

    def _call(self, method: str, path: str, call: Any, body: dict[str, Any] | None = None) -> Answer:
        """`body`: what a write sends (kept in memory for the per-person checks, never logged)."""
        self.hooks.poison_breaks_this_record()
        mid = current_message_id() or None
        local = self.hooks.run.local
        if not hasattr(local, "called"):
            local.called = set()
        local.called.add(mid)
        started = time.monotonic()
        answer: Answer = call()
        record = {
            "messageId": mid,
            "method": method,
            "path": path,
            "status": answer.status,
            "error": answer.error,
            "started": started,
            "ended": time.monotonic(),
        }
        if body is not None:
            record["body"] = copy.deepcopy(body)
        with self.hooks.run.lock:
            self.hooks.seen.calls.append(record)
        return answer

    def create_contact(self, creds: Any, contact: dict[str, Any], **kwargs: Any) -> Answer:
        return self._call(
            "POST", "/api/v2/contacts", lambda: self.real.create_contact(creds, contact, **kwargs), contact
        )

    def update_contact(self, creds: Any, contact_id: int, contact: dict[str, Any], **kwargs: Any) -> Answer:
        return self._call(
            "PUT",
            f"/api/v2/contacts/{contact_id}",
            lambda: self.real.update_contact(creds, contact_id, contact, **kwargs),
            contact,
        )

    def get_contact(self, creds: Any, contact_id: int, **kwargs: Any) -> Answer:
        return self._call(
            "GET", f"/api/v2/contacts/{contact_id}", lambda: self.real.get_contact(creds, contact_id, **kwargs)
        )

    def find_contacts(self, creds: Any, field: str, value: str, **kwargs: Any) -> Answer:
        return self._call(
            "GET", f"/api/v2/contacts?{field}=", lambda: self.real.find_contacts(creds, field, value, **kwargs)
        )

    def contact_fields(self, creds: Any, **kwargs: Any) -> Answer:
        return self._call("GET", "/api/v2/contact_fields", lambda: self.real.contact_fields(creds, **kwargs))

    def create_company(self, creds: Any, company: dict[str, Any], **kwargs: Any) -> Answer:
        return self._call(
            "POST", "/api/v2/companies", lambda: self.real.create_company(creds, company, **kwargs), company
        )

    def update_company(self, creds: Any, company_id: int, company: dict[str, Any], **kwargs: Any) -> Answer:
        return self._call(
            "PUT",
            f"/api/v2/companies/{company_id}",
            lambda: self.real.update_company(creds, company_id, company, **kwargs),
            company,
        )

    def get_company(self, creds: Any, company_id: int, **kwargs: Any) -> Answer:
        return self._call(
            "GET", f"/api/v2/companies/{company_id}", lambda: self.real.get_company(creds, company_id, **kwargs)
        )

    def find_companies(self, creds: Any, name: str, **kwargs: Any) -> Answer:
        return self._call(
            "GET", "/api/v2/companies/autocomplete?name=", lambda: self.real.find_companies(creds, name, **kwargs)
        )


class ChaoticIdempotencyStore:
    def __init__(self, real: IdempotencyStore, hooks: Hooks) -> None:
        self.real, self.hooks = real, hooks

    def claim(self, key: str, hold_seconds: float | None = None) -> Claim:
        return self.real.claim(key, hold_seconds)

    def read(self, key: str) -> Claim | None:
        self.hooks.poison_breaks_this_record()
        return self.real.read(key)

    def complete(self, key: str, summary: dict[str, Any]) -> None:
        self.hooks.maybe_kill(str(summary.get("outcome")))
        self.real.complete(key, summary)

    def release(self, key: str) -> None:
        self.real.release(key)


def instrument(run: Run, patch: Patcher) -> None:
    """Wrap the ports of the functions' runtime (undone by patch.undo())."""
    hooks = Hooks(run)
    runtime: Runtime = get_runtime()
    settings = runtime.settings
    patch.setattr(
        runtime,
        "credentials",
        CredentialStore(
            ChaoticSecretSource(build_secret_source(settings), hooks), max_age=settings.secret_max_age_seconds
        ),
    )
    patch.setattr(runtime, "queues", ChaoticQueues(runtime.queues, hooks))
    patch.setattr(runtime, "freshdesk", RecordedFreshdesk(runtime.freshdesk, hooks))
    if runtime.idempotency is not None:
        patch.setattr(runtime, "idempotency", ChaoticIdempotencyStore(runtime.idempotency, hooks))


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
        self.poison = {
            mid
            for mid, item in planned.items()
            if item.expect == "deliver" and poison_rng.random() < config.faults.poison
        }
        self.late: list[tuple[int, SignalRequest]] = []  # re-sends of requests that got 2xx: (due at, request)
        self.step_index = 0  # the index of the request Signal sends now

    # -- Signal ----------------------------------------------------------------------------------
    def ingest(self, request: SignalRequest, copy: str) -> dict[str, Any] | None:
        event = http_api_event(
            request.body,
            {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {LOCAL_WEBHOOK_TOKEN}",
                "User-Agent": "Datafly-Signal/ledger",
            },
        )
        answer = ingest_handler()(event, LambdaContext(function_name="ingest", timeout_seconds=29))
        if self.chaos.roll("ingest_crash"):
            raise InvocationLost("the ingest invocation crashed after its work")
        return answer

    def send(self, request: SignalRequest, copy: str) -> None:
        """One request as Signal sends it: re-sent on 5xx or no answer, up to signal_attempts in all."""
        previous: int | None = None
        for attempt in range(1, self.config.signal_attempts + 1):
            record: dict[str, Any] = {
                "request": request.index,
                "copy": copy,
                "attempt": attempt,
                "message_ids": request.message_ids,
            }
            try:
                answer = self.ingest(request, copy)
                status = answer["statusCode"]
                body = json.loads(answer["body"])
            except InvocationLost as exc:  # injected: the work was done, the answer lost
                status, body = None, {}
                record["error"] = str(exc)
            except Exception as exc:
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
        self.local.in_retry, self.local.called, self.local.kill_rolled_for = True, set(), None
        try:
            answer = retry_handler()(event, context)
        except SimulatedKill:
            with self.lock:
                self.seen.retry["killed mid-batch"] += 1
            self.note_receipts(event, BATCH_KILLED)
            raise RuntimeError("the retry invocation was killed mid-batch") from None
        except Exception as exc:  # not injected: the handler itself raised (the batch returns)
            with self.lock:
                self.seen.handler_errors.append(f"retry invocation: {type(exc).__name__}: {exc}")
            self.note_receipts(event, BATCH_RAISED)
            raise
        finally:
            self.local.in_retry = False
        if self.chaos.roll("retry_crash"):
            with self.lock:
                self.seen.retry["crashed after work"] += 1
            self.note_receipts(event, BATCH_CRASHED)
            raise RuntimeError("the retry invocation crashed after its work")
        failed = {f.get("itemIdentifier") for f in (answer or {}).get("batchItemFailures", [])}
        self.note_receipts(event, RECORD_RETURNED, failed=failed)
        return answer

    def note_receipts(self, event: dict[str, Any], ended: str, failed: set[Any] | None = None) -> None:
        """How each receive of a retry message ended, by its SQS MessageId (kept by SQS when it redrives the
        message to the DLQ): deleted, returned on its own (a batch item failure), or returned with its whole
        batch (an injected crash or kill, or the handler raising)."""
        with self.lock:
            for record in event.get("Records", []):
                try:
                    body = json.loads(record.get("body") or "")
                except ValueError:
                    body = None
                sqs_id = record.get("messageId")
                self.seen.receipts.append(
                    {
                        "sqsMessageId": sqs_id,
                        "messageId": body.get("messageId") if isinstance(body, dict) else None,
                        "receive_count": int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 0),
                        "ended": ended if failed is None else (RECORD_RETURNED if sqs_id in failed else DELETED),
                    }
                )

    def poll(self, stats: DrainStats) -> None:
        source = SqsEventSource(self.sqs, self.resources.retry_queue_url, self.retry_invocation, function_timeout=60.0)
        while not self.stop_pollers.is_set():
            try:
                handled = source.poll_once(stats)
            except Exception:
                with self.lock:
                    self.seen.retry["event source errors"] += 1
                handled = 0
            if not handled:
                self.stop_pollers.wait(0.1)

    def pending(self) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.retry_queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {k.removeprefix("ApproximateNumberOf"): int(v) for k, v in attrs.items()}

    # -- the whole run ---------------------------------------------------------------------------
    def execute(self) -> Observed:
        started = time.monotonic()
        config, seen, chaos = self.config, self.seen, self.chaos
        self.sandbox.set_rate_limit(BASE_RATE_LIMIT, 60.0)
        self.sandbox.custom_fields = ("signup_method",)
        self.seed_contacts()
        chaos.plan_outages(len(seen.requests))
        with captured_connector_logs() as tap:
            patch = Patcher()
            stats = DrainStats()
            pollers = [
                threading.Thread(target=self.poll, args=(stats,), name=f"ledger-retry-{n}", daemon=True)
                for n in range(config.retry_workers)
            ]
            ticker = threading.Thread(
                target=chaos.tick, args=(self.stop_pollers, config.chaos_tick), name="ledger-chaos", daemon=True
            )
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
        seen.max_receive_count = max_receive_count(self.sqs, self.resources.retry_queue_url)
        seen.contacts = self.sandbox.contacts(include_deleted=True)
        seen.sandbox_requests = self.sandbox.requests()
        seen.armed, seen.injected = chaos.armed, chaos.injected
        seen.elapsed = time.monotonic() - started
        return seen

    def seed_contacts(self) -> None:
        """The contacts agents created before the run (Person.seed), in the sandbox as they left them."""
        for person in self.seen.persons:
            if person.seed is not None:
                person.seed_id = self.sandbox.seed_contact(**person.seed)["id"]

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
        while time.monotonic() < tail_ends or (
            (chaos.outage_active or chaos.storm_active) and time.monotonic() < tail_ends + 20
        ):
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
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=600,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            empty += 1
            continue
        for message in messages:
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = None
            found.append(
                {
                    "sqsMessageId": message.get("MessageId"),
                    "body": body,
                    "raw": message["Body"],
                    "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                }
            )
    return found


def max_receive_count(sqs: Any, url: str) -> int:
    """The retry queue's redrive policy: receives after which SQS moves a message to the DLQ (0: none)."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    try:
        return int(json.loads(attrs.get("RedrivePolicy") or "{}").get("maxReceiveCount") or 0)
    except (ValueError, TypeError):
        return 0


def run_ledger(config: LedgerConfig, *, resources: Any, sandbox: Any, sqs_client: Any) -> tuple[LedgerReport, Observed]:
    """Run with the functions' environment already set (the stack's resources + LEDGER_ENV) and the
    runtime reset. Returns the report and what was observed."""
    seen = Run(config, resources=resources, sandbox=sandbox, sqs_client=sqs_client).execute()
    return reconcile(seen), seen
