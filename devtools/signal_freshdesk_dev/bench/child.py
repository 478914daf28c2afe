"""One benchmark process, standing in for one Lambda execution environment (bench only).

    python -P child.py MODE HANDLER PARAMS_JSON OUT_JSON

MODE: cold | warm | batch | rss | drain | stream | stream_drain. HANDLER: ours | naive (the ingest
handler, or the naive baseline in naive.py) or retry (drain, stream_drain). The parent (measure.py) sets the environment: the
function's settings, moto's AWS_ENDPOINT_URL and the Freshdesk sandbox's URL. Run by file path and
importing only `time` and `sys` before the clock starts, so a cold start counts the handler's own
imports and nothing of the benchmark's.
"""

import time

T0 = time.perf_counter()
CPU0 = time.process_time()

import sys  # noqa: E402  (after the clock on purpose)


class Context:
    """Enough of Lambda's context object for the handlers and Powertools."""

    function_name = "signal-freshdesk-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:signal-freshdesk-bench"
    log_group_name = "/aws/lambda/signal-freshdesk-bench"
    log_stream_name = "bench"

    def __init__(self, timeout: float = 29.0) -> None:
        self._ends = time.monotonic() + timeout
        self.aws_request_id = f"req-{time.perf_counter_ns()}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._ends - time.monotonic()) * 1000))


def load_handler(which: str, root: str):
    if which == "naive":
        from signal_freshdesk_dev.bench import naive

        return naive.lambda_handler
    import importlib.util

    function = "retry" if which == "retry" else "ingest"
    spec = importlib.util.spec_from_file_location(f"bench_{function}_app", f"{root}/functions/{function}/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


# -- events ---------------------------------------------------------------------------------------
def signal_event(prefix: str, i: int) -> dict:
    """A Signed Up event (as events/signed-up.json), unique per (prefix, i) so Freshdesk answers 201.

    Its phone is unique too: the identity map knows a person by their phone as well as their user id
    and email, so events sharing one phone would be one person (a Signed Up of a known person is a
    `conflict`, and a batch runs one person's events one after another).
    """
    import hashlib

    tag = f"{prefix}-{i}"
    phone = "+44 7" + f"{int(hashlib.sha256(tag.encode()).hexdigest(), 16) % 10**9:09d}"
    return {
        "type": "track",
        "event": "Signed Up",
        "properties": {"method": "email"},
        "traits": {},
        "userId": f"usr_{tag}",
        "anonymousId": f"anon_{tag}",
        "context": {
            "page": {"url": "https://shop.example.com/signup", "path": "/signup", "title": "Sign up"},
            "locale": "en-GB",
            "ip": "203.0.113.42",
            "userAgent": "Mozilla/5.0",
            "traits": {
                "name": "John Doe",
                "email": f"John.Doe.{tag}@example.com",
                "phone": phone,
                "title": "Head of Growth",
            },
            "consent": {
                "categories": {"necessary": True, "marketing": True},
                "canonical": {"essential": True, "functional": True, "analytics": True, "marketing": True},
            },
        },
        "timestamp": "2026-02-25T14:30:00.000Z",
        "messageId": f"msg-{tag}",
    }


def api_request(body: str, token: str) -> dict:
    """The HTTP API (payload 2.0) request Lambda receives for a POST /events."""
    return {
        "version": "2.0",
        "routeKey": "POST /events",
        "rawPath": "/events",
        "rawQueryString": "",
        "headers": {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "user-agent": "Datafly-Signal-Webhook",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "127.0.0.1",
            "http": {
                "method": "POST",
                "path": "/events",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "Datafly-Signal-Webhook",
            },
            "requestId": f"bench-{time.perf_counter_ns()}",
            "routeKey": "POST /events",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
        "body": body,
    }


def single(prefix: str, i: int, token: str) -> dict:
    import json

    return api_request(json.dumps(signal_event(prefix, i)), token)


def batch(prefix: str, n: int, token: str) -> dict:
    import json

    return api_request(json.dumps({"batch": [signal_event(prefix, i) for i in range(n)]}), token)


def quiet_logs() -> None:
    """Lambda sends stdout to CloudWatch; here it goes to /dev/null, with the same writes."""
    import logging
    import os

    sink = open(os.devnull, "w")  # noqa: SIM115 - kept open for the life of this child process
    for name in ("signal-freshdesk", "signal-freshdesk-naive"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)
    sys.stdout = sink


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


# -- modes ----------------------------------------------------------------------------------------
def run_cold(which: str, params: dict) -> dict:
    handler = load_handler(which, params["root"])
    imported = time.perf_counter()
    request = single(params["prefix"], 0, params["token"])
    started = time.perf_counter()
    answer = handler(request, Context())
    done = time.perf_counter()
    return {
        "import_ms": (imported - T0) * 1000,
        "first_event_ms": (done - started) * 1000,
        "cold_ms": (imported - T0 + done - started) * 1000,
        "cpu_ms": (time.process_time() - CPU0) * 1000,
        "status": answer["statusCode"],
        "boto3_loaded": "boto3" in sys.modules,
        "modules": len(sys.modules),
    }


def run_warm(which: str, params: dict) -> dict:
    import base64
    import json

    import urllib3

    from signal_freshdesk.core.mapping import plan_event

    handler = load_handler(which, params["root"])
    quiet_logs()
    prefix, token, rounds, per_round = params["prefix"], params["token"], params["rounds"], params["per_round"]
    url = params["freshdesk_url"] + "/api/v2/contacts"
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{params['api_key']}:X".encode()).decode("ascii"),
        "Accept": "application/json",
        "User-Agent": "signal-freshdesk/0.1",
        "Content-Type": "application/json",
    }
    bare = urllib3.PoolManager(maxsize=1, retries=False)
    total = 20 + rounds * per_round
    requests = [single(f"{prefix}h", i, token) for i in range(total)]
    bodies = [
        json.dumps(
            plan_event(signal_event(f"{prefix}b", i), region="GB", consent_mode="require").contact,
            separators=(",", ":"),
        ).encode()
        for i in range(total)
    ]
    handler_ms: list[float] = []
    bare_ms: list[float] = []
    statuses: dict[str, int] = {}
    handler_cpu = 0.0

    def call_handler(i: int) -> None:
        nonlocal handler_cpu
        context = Context()
        started, cpu = time.perf_counter(), time.process_time()
        answer = handler(requests[i], context)
        ended = time.perf_counter()
        if i >= 20:
            handler_cpu += time.process_time() - cpu
            handler_ms.append((ended - started) * 1000)
        statuses[str(answer["statusCode"])] = statuses.get(str(answer["statusCode"]), 0) + 1

    def call_bare(i: int) -> None:
        started = time.perf_counter()
        response = bare.request("POST", url, body=bodies[i], headers=headers)
        _ = response.data
        ended = time.perf_counter()
        if i >= 20:
            bare_ms.append((ended - started) * 1000)
        statuses[f"bare_{response.status}"] = statuses.get(f"bare_{response.status}", 0) + 1

    for i in range(total):  # in turn, each first every other time, so both see the same conditions
        first, second = (call_handler, call_bare) if i % 2 == 0 else (call_bare, call_handler)
        first(i)
        second(i)
    rounds_out = []
    for r in range(rounds):
        part = slice(r * per_round, (r + 1) * per_round)
        rounds_out.append({"handler_ms": median(handler_ms[part]), "bare_ms": median(bare_ms[part])})
    return {
        "rounds": rounds_out,
        "statuses": statuses,
        "handler_cpu_ms_per_event": handler_cpu * 1000 / (rounds * per_round),
    }


def run_batch(which: str, params: dict) -> dict:
    import json

    handler = load_handler(which, params["root"])
    quiet_logs()
    handler(single(f"{params['prefix']}w", 0, params["token"]), Context())  # warm
    runs = []
    for r in range(params["runs"]):
        request = batch(f"{params['prefix']}r{r}", params["events"], params["token"])
        cpu = time.process_time()
        started = time.perf_counter()
        answer = handler(request, Context())
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        outcomes: dict[str, int] = {}
        results = json.loads(answer["body"]).get("results", [])
        for result in results:
            outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
        runs.append(
            {
                "seconds": elapsed,
                "cpu_ms": cpu * 1000,
                "status": answer["statusCode"],
                "results": len(results),
                "outcomes": outcomes,
            }
        )
    return {"runs": runs}


def run_rss(which: str, params: dict) -> dict:
    import json
    import resource

    import urllib3

    handler = load_handler(which, params["root"])
    quiet_logs()
    prefix, token = params["prefix"], params["token"]
    for i in range(20):
        handler(single(prefix, i, token), Context())
    answer = handler(batch(f"{prefix}b", 100, token), Context())
    delivered = sum(1 for r in json.loads(answer["body"])["results"] if r["outcome"] == "delivered")
    before_queue = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    urllib3.request("POST", params["freshdesk_url"] + "/_sandbox/faults", json={"fail_status": 503, "count": 1})
    queued = handler(single(f"{prefix}q", 0, token), Context())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rss_kb_before_queue": before_queue,
        "rss_kb": peak,
        "batch_delivered": delivered,
        "queued_status": queued["statusCode"],
        "boto3_loaded": "boto3" in sys.modules,
    }


def drain_until_settled(source, stats, *, ends: float, settle: float, idle_sleep: float, may_stop=lambda: True) -> None:  # type: ignore[no-untyped-def]
    """Poll the retry queue through the event source until `ends`, or until `may_stop()` and the queue
    has stayed empty for `settle` seconds."""
    idle_since = None
    while time.monotonic() < ends:
        if source.poll_once(stats):
            idle_since = None
            continue
        if may_stop() and source.pending() == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > settle:
                break
        else:
            idle_since = None
        time.sleep(idle_sleep)


def run_drain(which: str, params: dict) -> dict:
    import os

    import boto3

    from signal_freshdesk_dev.event_source import DrainStats, SqsEventSource

    if params.get("unpaced"):  # the "unpaced" figure: the retry function without its pacing
        from signal_freshdesk.core.pacing import RateBudget

        RateBudget.pacing_delay = lambda self, reserve=1: 0.0  # type: ignore[method-assign]
    handler = load_handler("retry", params["root"])
    quiet_logs()
    sqs = boto3.client("sqs", region_name=os.environ["AWS_DEFAULT_REGION"])
    source = SqsEventSource(sqs, params["queue_url"], handler, batch_size=10, function_timeout=60.0)
    stats = DrainStats()
    drain_until_settled(source, stats, ends=time.monotonic() + params["timeout"], settle=0.5, idle_sleep=0.05)
    import resource

    return {
        "invocations": stats.invocations,
        "records": stats.records,
        "failures": stats.failures,
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


# -- the calls figure: a stream of identified events, sent as Signal would, and its retry drain ------------
def record_calls() -> list:
    """Note every Freshdesk call a delivery makes, with its event: (messageId, call, status).

    Bench instrumentation only (the product is unchanged): wraps the one method every Freshdesk call of
    an event goes through, a contact's and a company's alike (both conversations inherit it). The
    sandbox's own request log stays the count that matters; this one says which event each call was for.
    """
    from signal_freshdesk.core import conversation

    calls: list = []
    original = conversation.Conversation._call

    def _call(self, method, *args):  # type: ignore[no-untyped-def]
        answer = original(self, method, *args)
        calls.append([self.message_id, getattr(method, "__name__", "?"), answer.status])
        return answer

    conversation.Conversation._call = _call
    return calls


class Timed:
    """A handler that adds up the wall and CPU time of its invocations (ms)."""

    def __init__(self, handler) -> None:  # type: ignore[no-untyped-def]
        self.handler = handler
        self.wall_ms = 0.0
        self.cpu_ms = 0.0
        self.invocations = 0

    def __call__(self, event, context):  # type: ignore[no-untyped-def]
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return self.handler(event, context)
        finally:
            self.wall_ms += (time.perf_counter() - started) * 1000
            self.cpu_ms += (time.process_time() - cpu) * 1000
            self.invocations += 1

    def figures(self) -> dict:
        return {"handler_ms": self.wall_ms, "handler_cpu_ms": self.cpu_ms, "handler_invocations": self.invocations}


def run_stream(which: str, params: dict) -> dict:
    """Signal's side: the stream's requests (batches and single events) to the ingest handler, one at a
    time, never faster than `rate` events per second (a request of n events waits n / rate after the
    one before). A call answered 503 is sent again after a second, as Signal retries it."""
    import json

    handler = Timed(load_handler("ingest", params["root"]))
    quiet_logs()
    calls = record_calls()
    rate = float(params["rate"])
    answers: dict[str, list] = {}
    requests_out = []
    resent = 0
    started = time.monotonic()
    last_sent = started - 1e9
    for request in params["requests"]:
        events = request["events"]
        send_at = last_sent + len(events) / rate
        now = time.monotonic()
        if send_at > now:
            time.sleep(send_at - now)
        last_sent = time.monotonic()
        body = json.dumps({"batch": events} if request["batch"] else events[0])
        tries = 0
        while True:
            tries += 1
            answer = handler(api_request(body, params["token"]), Context())
            payload = json.loads(answer["body"])
            results = payload.get("results", []) if request["batch"] else [payload]
            for result in results:
                answers.setdefault(result.get("messageId", ""), []).append(
                    [result.get("outcome"), result.get("reason"), result.get("status")]
                )
            if answer["statusCode"] != 503 or tries == 5:
                break
            resent += 1
            time.sleep(1.0)
        requests_out.append(
            {"at": last_sent - started, "events": len(events), "status": answer["statusCode"], "tries": tries}
        )
    return {
        "answers": answers,
        "calls": calls,
        "requests": requests_out,
        "resent": resent,
        "seconds": time.monotonic() - started,
        **handler.figures(),
    }


def run_stream_drain(which: str, params: dict) -> dict:
    """The retry function behind the SQS event source stand-in, while the stream is sent and after: it
    stops once `until_flag` exists (the sender is done) and the retry queue has stayed empty for a while."""
    import os

    import boto3

    from signal_freshdesk_dev.event_source import DrainStats, SqsEventSource
    from signal_freshdesk_dev.logcapture import LogCapture

    handler = Timed(load_handler("retry", params["root"]))
    quiet_logs()
    calls = record_calls()
    fields = ("messageId", "outcome", "reason", "status", "attempts", "duplicate")
    capture = LogCapture(
        lambda record: (
            {"at": record.created, **{key: getattr(record, key, None) for key in fields}}
            if record.getMessage() == "retry processed"
            else None
        )
    ).attach()
    sqs = boto3.client("sqs", region_name=os.environ["AWS_DEFAULT_REGION"])
    source = SqsEventSource(sqs, params["queue_url"], handler, batch_size=10, function_timeout=60.0)
    stats = DrainStats()
    ends = time.monotonic() + params["timeout"]
    drain_until_settled(
        source,
        stats,
        ends=ends,
        settle=params["settle"],
        idle_sleep=params["idle_sleep"],
        may_stop=lambda: os.path.exists(params["until_flag"]),
    )
    capture.detach()
    return {
        "invocations": stats.invocations,
        "records": stats.records,
        "failures": stats.failures,
        "processed": capture.records,
        "calls": calls,
        "timed_out": time.monotonic() >= ends,
        **handler.figures(),
    }


MODES = {
    "cold": run_cold,
    "warm": run_warm,
    "batch": run_batch,
    "rss": run_rss,
    "drain": run_drain,
    "stream": run_stream,
    "stream_drain": run_stream_drain,
}


def main() -> None:
    mode, which, params_path, out_path = sys.argv[1:5]
    import json

    with open(params_path) as fh:
        params = json.load(fh)
    result = MODES[mode](which, params)
    with open(out_path, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
