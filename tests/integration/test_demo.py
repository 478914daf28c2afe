"""The README's main-job command: the local run, end to end (sandbox and moto on loopback)."""

from __future__ import annotations

import io
import os

import pytest

from signal_freshdesk.runtime import reset_runtime
from signal_freshdesk_dev import demo


@pytest.fixture
def clean_environment(monkeypatch):
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    reset_runtime()


def test_demo_sends_every_sample_and_drains_the_retry_queue(tmp_path, clean_environment):
    out = io.StringIO()
    assert demo.run(out, tmp_path / "logs.jsonl") == 0
    text = out.getvalue()
    assert "signed-up.json        Signed Up   a1b2c3d4   delivered  201" in text
    assert "identified.json       Identified  b2c3d4e5   queued     202   freshdesk_unavailable" in text
    assert "retry queue         b2c3d4e5   delivered  201" in text
    assert "Dead-letter queue: 0 parked" in text
    assert "Contacts the Freshdesk sandbox now holds: 3" in text
    logs = (tmp_path / "logs.jsonl").read_text()
    assert '"messageId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890"' in logs
    # the functions log ids and outcomes, never the people
    for secret in (
        "john.doe@example.com",
        "John Doe",
        "+447700900123",
        "sandbox-api-key",
        "local-webhook-token-0123456789abcdef",
    ):
        assert secret not in logs
