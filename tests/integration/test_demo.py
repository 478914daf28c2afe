"""The README's main-job command: the local run, end to end (sandbox and moto on loopback)."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass

import pytest

from signal_freshdesk.core.rules import DEFAULT_MAPPING
from signal_freshdesk.runtime import reset_runtime
from signal_freshdesk_dev import demo
from signal_freshdesk_dev.sandbox import FreshdeskSandbox


@dataclass
class DemoRun:
    code: int
    text: str
    logs: str
    sandbox: FreshdeskSandbox  # stopped: what it held at the end of the run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One run of the demo as `make demo` does it (MAPPING_FILE unset, no layers/connector/mapping.json), shared
    by this module's tests: the demo's AWS resources have fixed names, and moto keeps them for the life of the
    process."""
    saved = dict(os.environ)
    os.environ.pop("MAPPING_FILE", None)
    started: list[FreshdeskSandbox] = []

    class Kept(FreshdeskSandbox):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    log_path = tmp_path_factory.mktemp("demo") / "logs.jsonl"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "FreshdeskSandbox", Kept)
        patch.setattr(demo, "bundled_mapping_path", lambda: None)
        try:
            code = demo.run(out, log_path)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            reset_runtime()
    [sandbox] = started
    return DemoRun(code, out.getvalue(), log_path.read_text(), sandbox)


def table_rows(text: str) -> list[list[str]]:
    """Every indented line of the output, cut into its cells (two spaces or more between cells)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.startswith("  ")]


def test_demo_sends_every_sample_and_drains_the_retry_queue(demo_run):
    assert demo_run.code == 0
    text = demo_run.text
    rows = table_rows(text)
    assert ["signed-up.json", "Signed Up", "a1b2c3d4", "delivered", "201"] in rows
    assert ["identified.json", "Identified", "b2c3d4e5", "queued", "202", "freshdesk_unavailable"] in rows
    assert ["retry queue", "b2c3d4e5", "delivered", "201"] in rows
    assert ["batch.json", "group", "b8c9d0e1", "delivered", "201"] in rows
    assert ["group.json", "group", "c9d0e1f2", "delivered", "201"] in rows
    assert ["identify-with-company.json", "identify", "d0e1f2a3", "delivered", "201"] in rows
    assert "Dead-letter queue: 0 parked" in text
    assert "Mapping:           docs/mapping.example.json (MAPPING_FILE)" in text
    assert "Companies the Freshdesk sandbox now holds: 4" in text
    assert "Contacts the Freshdesk sandbox now holds: 4" in text
    logs = demo_run.logs
    assert '"messageId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890"' in logs
    # the functions log ids and outcomes, never the people
    for secret in (
        "john.doe@example.com",
        "John Doe",
        "+447700900123",
        "sofia.rossi@northwind.example",
        "Sofia Rossi",
        "+447700900456",
        "sandbox-api-key",
        "local-webhook-token-0123456789abcdef",
    ):
        assert secret not in logs


def test_the_group_sample_creates_the_company_and_the_contact_gets_it_with_custom_fields(demo_run):
    sandbox = demo_run.sandbox
    [northwind] = [c for c in sandbox.companies() if c["name"] == "Northwind Traders"]
    # Created by group.json (domain, industry and tier from its traits) before any contact named it: one
    # create, and no update of a company a contact event would have created by its name alone.
    assert northwind["domains"] == ["northwind.example"]
    assert (northwind["industry"], northwind["account_tier"]) == ("Retail", "Premium")
    company_calls = [
        (r["method"], r["status"]) for r in sandbox.requests() if r["path"].startswith("/api/v2/companies")
    ]
    assert company_calls == [("POST", 201), ("POST", 201)]  # batch.json's Acme Ltd, then Northwind Traders
    [sofia] = [c for c in sandbox.contacts() if c["unique_external_id"] == "usr_654"]
    assert sofia["company_id"] == northwind["id"]
    assert sofia["custom_fields"]["plan"] == "Pro"
    assert sofia["custom_fields"]["seats"] == 12
    assert sofia["custom_fields"]["region"] == "EMEA"
    assert (sofia["mobile"], sofia["language"]) == ("+447700900456", "en")
    # the printed tables say the same
    rows = table_rows(demo_run.text)
    assert [str(northwind["id"]), "Northwind Traders", "northwind.example", "Retail", "Premium"] in rows
    [sofia_row] = [row for row in rows if row[:2] == [str(sofia["id"]), "Sofia Rossi"]]
    assert sofia_row[-2] == str(northwind["id"])
    assert "plan=Pro" in sofia_row[-1] and "seats=12" in sofia_row[-1]


def test_nothing_is_parked_and_every_custom_field_the_mapping_fills_is_declared(demo_run):
    assert "Dead-letter queue: 0 parked" in demo_run.text
    sandbox = demo_run.sandbox
    assert not [r for r in sandbox.requests() if r["status"] == 400]  # no field re-sent without its custom fields
    assert sandbox.custom_field_types["seats"] == "custom_number"
    assert set(sandbox.custom_field_choices["plan"]) == {"Free", "Starter", "Pro", "Enterprise", "Other"}


def test_the_example_mapping_is_the_demos_unless_the_user_chose_one(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "bundled_mapping_path", lambda: None)  # no layers/connector/mapping.json
    env: dict[str, str] = {}
    assert demo.choose_mapping(env).operation_for("trial_started") is not None
    assert env == {"MAPPING_FILE": str(demo.EXAMPLE_MAPPING)}  # the functions read the same
    chosen = {"MAPPING_FILE": "default"}
    assert demo.choose_mapping(chosen) is DEFAULT_MAPPING
    assert chosen == {"MAPPING_FILE": "default"}
    # the user's own mapping file, where the functions would find it, comes before the example
    own = tmp_path / "mapping.json"
    own.write_text('{"extends": "default", "events": [{"event": "Demo Booked", "action": "create"}]}')
    monkeypatch.setattr(demo, "bundled_mapping_path", lambda: own)
    env = {}
    assert demo.choose_mapping(env).operation_for("demo_booked") is not None
    assert env == {"MAPPING_FILE": str(own)}
