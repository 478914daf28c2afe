"""Reliability: push a large, mixed, faulty stream through the real handlers and account for every event.

The harness is signal_freshdesk_dev/ledger/; the precise meaning of "accounted for" is in its reconcile.py.
CI runs a slice (LEDGER_EVENTS, default 150); the full run is `LEDGER_EVENTS=1000 pytest tests/reliability`
or `make ledger`. LEDGER_SEED replays a stream (the seed is printed with the tally).
"""

from __future__ import annotations

from signal_freshdesk_dev.ledger import LEDGER_ENV, LedgerConfig, run_ledger


def test_every_accepted_event_is_accounted_for(stack, configure, capsys):
    config = LedgerConfig.from_env()
    configure(**LEDGER_ENV)
    report, _ = run_ledger(config, resources=stack.resources, sandbox=stack.freshdesk, sqs_client=stack.sqs)
    with capsys.disabled():
        print("\n" + report.tally)
    assert report.ok, report.failure_text() + "\n" + report.tally


# -- The ledger can fail: each check below breaks the product (or the sandbox) on purpose, with
# monkeypatch, for one small run, and expects the ledger to say so. Nothing here stays broken.


def small_run(stack, configure, seed="7", **faults):
    config = LedgerConfig.from_env(
        {"LEDGER_SEED": seed, "LEDGER_EVENTS": "40"}, chaos_tail_seconds=0.5, drain_timeout=60.0
    )
    quiet = {
        name: 0
        for name in (
            "outages",
            "freshdesk_429",
            "freshdesk_timeout",
            "freshdesk_slow",
            "freshdesk_drop",
            "rate_storm",
            "field_toggle",
            "poison",
            "secret_failure",
            "sqs_send_failure",
            "ingest_crash",
            "retry_crash",
            "retry_kill",
            "signal_resend_2xx",
            "signal_concurrent_copy",
        )
    }
    for name, value in {**quiet, **faults}.items():
        setattr(config.faults, name, value)
    configure(**LEDGER_ENV)
    report, _ = run_ledger(config, resources=stack.resources, sandbox=stack.freshdesk, sqs_client=stack.sqs)
    return report


def wrap_ports(monkeypatch, **wrappers):
    """Build the functions' runtime with some of its ports wrapped (name -> wrapper of the real port)."""
    from signal_freshdesk import runtime as runtime_module

    real_build = runtime_module.build_runtime

    def build(settings):
        built = real_build(settings)
        for name, wrap in wrappers.items():
            setattr(built, name, wrap(getattr(built, name)))
        return built

    monkeypatch.setattr(runtime_module, "build_runtime", build)


def test_the_ledger_fails_when_queued_events_are_lost(stack, configure, monkeypatch):
    class Forgetful:
        """Says it queued the event, but sends nothing to the retry queue."""

        def __init__(self, real):
            self.real = real

        def send_retry(self, envelope, delay_seconds):
            pass

        def park(self, envelope):
            self.real.park(envelope)

    wrap_ports(monkeypatch, queues=Forgetful)
    report = small_run(stack, configure, freshdesk_5xx=1.0)
    assert not report.ok
    assert report.problems["lost"], report.tally


def test_the_ledger_fails_when_an_event_is_both_delivered_and_parked(stack, configure, monkeypatch):
    from signal_freshdesk.core.envelope import make_envelope
    from signal_freshdesk.core.model import Outcome, Result
    from signal_freshdesk.observability import current_message_id
    from signal_freshdesk.runtime import get_runtime

    class AlsoParks:
        """Parks every event Freshdesk created, as if it had been refused too."""

        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def create_contact(self, creds, contact, **kwargs):
            answer = self.real.create_contact(creds, contact, **kwargs)
            if answer.status == 201:
                mid = current_message_id()
                get_runtime().queues.park(
                    make_envelope(
                        {"messageId": mid},
                        Result(mid, Outcome.DELIVERED, 201),
                        attempts=1,
                        first_seen=0.0,
                        outcome="rejected",
                    )
                )
            return answer

    wrap_ports(monkeypatch, freshdesk=AlsoParks)
    report = small_run(stack, configure)
    assert report.problems["contradictory"], report.tally


def test_the_ledger_fails_when_a_contact_is_created_twice(stack, configure, monkeypatch):
    # Without the idempotency store and the identity map (which would answer a re-sent event from what it
    # knows of the person), and with a Freshdesk that lets duplicates through, Signal's re-sent requests
    # create every contact a second time.
    monkeypatch.setattr(stack.freshdesk, "_duplicates", lambda data, exclude_id: [])
    configure(IDEMPOTENCY_TABLE="", IDENTITY_MAP_TABLE="")
    report = small_run(stack, configure, signal_resend_2xx=1.0)
    assert report.problems["created twice"], report.tally


def test_the_ledger_fails_when_an_update_replaces_the_contact_s_tags(stack, configure, monkeypatch):
    class TagReplacer:
        """Sends only our tag on every update, as if Freshdesk's tag list were ours to replace."""

        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def update_contact(self, creds, contact_id, contact, **kwargs):
            return self.real.update_contact(creds, contact_id, {**contact, "tags": ["marketing-consent"]}, **kwargs)

    wrap_ports(monkeypatch, freshdesk=TagReplacer)
    report = small_run(stack, configure, seed="4")  # a stream with 3 returning people an agent created
    assert report.problems["tag damaged"] or report.problems["consent tag wrong"], report.tally


def test_the_ledger_fails_when_older_events_overwrite_newer_ones(stack, configure, monkeypatch):
    # Without the order rule every retried or late event is applied, whatever its timestamp.
    from signal_freshdesk.core import delivery

    monkeypatch.setattr(delivery, "is_older", lambda timestamp, newest: False)
    report = small_run(stack, configure, seed="8")  # a stream with 4 late events
    assert report.problems["newest values lost"], report.tally
