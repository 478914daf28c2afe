"""The ledger: push a large, mixed, seeded stream of Signal events through the real handlers while
faults are injected at random, drain everything, and account for every event ("nothing is lost").

    python -m signal_freshdesk_dev.ledger [--events 1000] [--seed N]      (or: make ledger EVENTS=1000 SEED=N)

The handlers run in this process, as the tests run them: the ingest handler called with API Gateway
HTTP API requests by a Signal simulator, the retry handler called by stand-ins for Lambda's SQS event
source mapping (batches, visibility timeouts, redelivery, partial batch failures, redrive to the DLQ
after maxReceiveCount receives), against moto (SQS, Secrets Manager, DynamoDB) and the Freshdesk sandbox.

Faults, drawn from random.Random instances derived from one seed (printed; LEDGER_SEED / --seed):
- Freshdesk (the sandbox): 5xx answers, timeouts (an answer slower than FRESHDESK_READ_TIMEOUT=0.5, which
  Freshdesk still carries out), dropped connections, 429 storms with a short Retry-After (injected, and
  a real rate limit lowered for a few seconds), slow answers, outages (every call 503 for seconds),
  and the `signup_method` custom field disappearing from the account for a while;
- Secrets Manager: `read_secret_json` raising SecretUnavailable (cache age SECRET_MAX_AGE_SECONDS=1);
- SQS: `RetryQueues._send` raising QueueError (both the retry queue and the DLQ);
- the retry function: an invocation crashing after its work (the event source returns the whole batch),
  or killed mid-batch, between a Freshdesk answer and securing it (the rest of the batch not started),
  or a poison message: a few events' retry messages fail in the retry function every time (an
  unexpected error: the record is reported as a batch item failure) until SQS's redrive policy moves
  them raw to the DLQ;
- the ingest function: an invocation crashing after its work (Signal sees no answer);
- Signal: re-sending the identical request on 5xx or no answer (5 attempts in all, exponential
  backoff, as Signal's webhook does), re-sending a request that got 2xx a little later (a lost answer),
  and sending the same request twice at once (a re-send overlapping the original).
The seed fixes the stream and each fault source's sequence of draws; threads make the interleaving,
and so which event meets which fault, vary from run to run.
The package: stream.py builds the stream, chaos.py the faults, run.py the run (with the
instrumentation of the connector in one section), reconcile.py the accounting (what "accounted for"
means, and every check), __main__.py the command line.
"""

from __future__ import annotations

from .config import DEFAULT_EVENTS, LEDGER_ENV, LedgerConfig
from .reconcile import LedgerReport, Observed, reconcile
from .run import Run, run_ledger

__all__ = ["DEFAULT_EVENTS", "LEDGER_ENV", "LedgerConfig", "LedgerReport", "Observed", "Run", "reconcile", "run_ledger"]
