"""`explain` with the mapping in use: each field of the request names the rule that fills it, its conversion,
its policy and when it is sent; update-only events, companies and group events are explained too."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from signal_freshdesk.core.rules import DEFAULT_MAPPING
from signal_freshdesk_dev import explain
from signal_freshdesk_dev.handlers import EVENTS_DIR

CONSENTED = {"consent": {"canonical": {"marketing": True}}}
# A mapping file extending the Default preset. The line of each rule is where its object starts.
PLAN_MAPPING = """{
  "extends": "default",
  "events": [
    {"event": "Plan Changed", "action": "update"}
  ],
  "fields": [
    {"target": "custom_fields.plan", "source": "traits.plan",
     "convert": {"table": {"pro": "Pro", "free": "Free"}, "otherwise": "Other"}, "policy": "if_empty"},
    {"target": "mobile", "source": "traits.mobile", "convert": "phone", "policy": "create_only"}
  ],
  "companies": {"fields": [{"target": "industry", "source": "traits.industry"}]}
}
"""
PLAN_RULE = "mapping.json fields line 7 (fields[0])"
MOBILE_RULE = "mapping.json fields line 9 (fields[1])"


@pytest.fixture
def plan_mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.json"
    path.write_text(PLAN_MAPPING, encoding="utf-8")
    return path


def run(*argv: str, env: dict | None = None, stdin: object = None) -> tuple[int, str]:
    out = io.StringIO()
    text = json.dumps(stdin) if stdin is not None else None
    code = explain.main(
        list(argv),
        out=out,
        env={"MAPPING_FILE": "default"} if env is None else env,
        stdin=io.StringIO(text) if text is not None else None,
    )
    return code, out.getvalue()


def explained(*argv: str, **kwargs) -> list[dict]:
    code, text = run("--json", *argv, **kwargs)
    assert code == 0, text
    return json.loads(text)["events"]


def rows_by_target(event: dict) -> dict[str, dict]:
    return {row["target"]: row for row in event["fields"]}


def default_label(target: str, number: int = 0) -> str:
    return DEFAULT_MAPPING.rules_for(target)[number].label


def test_each_field_of_the_default_request_names_its_rule_conversion_and_policy():
    [event] = explained(str(EVENTS_DIR / "signed-up.json"))
    rows = rows_by_target(event)
    body = event["request"]["body"]
    custom = [f"custom_fields.{name}" for name in body.get("custom_fields", {})]
    assert list(rows) == [key for key in body if key not in ("tags", "custom_fields")] + custom + ["tags"]
    assert rows["email"] == {
        "target": "email",
        "value": "john.doe@example.com",
        "rule": default_label("email"),
        "convert": "email",
        "policy": "overwrite",
        "sent_on": ["create"],  # a Signed Up never updates a contact
    }
    assert rows["custom_fields.signup_method"]["rule"] == default_label("custom_fields.signup_method")
    assert rows["custom_fields.signup_method"]["rule"] == "default mapping fields line 20 (fields[7])"
    assert rows["tags"]["rule"].startswith("the connector's own")


def test_an_identify_names_the_rule_of_each_field_on_create_and_on_update():
    event = {"type": "identify", "userId": "u1", "traits": {"email": "Ann@Example.com"}, "context": CONSENTED}
    [found] = explained("-", stdin=event)
    # No name in the traits: the create names the contact by its email (a create_only rule); the update
    # leaves the name alone.
    rows = rows_by_target(found)
    assert rows["name"]["rule"] == default_label("name", 1)
    assert (rows["name"]["policy"], rows["name"]["sent_on"]) == ("create_only", ["create"])
    assert rows["email"]["sent_on"] == ["create", "update"]
    code, text = run("-", stdin=event)
    assert code == 0
    assert f"name                {default_label('name', 1)}; convert email, policy create_only, on create\n" in text
    assert "create only, never in an update: name\n" in text


def test_a_custom_mapping_names_its_own_lines_and_the_defaults_it_extends(plan_mapping):
    event = {
        "type": "identify",
        "userId": "u2",
        "traits": {"name": "Ann", "plan": " PRO ", "mobile": "07911 123456"},
        "context": CONSENTED,
    }
    [found] = explained("-", "--mapping", str(plan_mapping), stdin=event)
    rows = rows_by_target(found)
    assert rows["custom_fields.plan"] == {
        "target": "custom_fields.plan",
        "value": "Pro",
        "rule": PLAN_RULE,
        "convert": "table",
        "policy": "if_empty",
        "sent_on": ["create", "update_if_empty"],
    }
    assert (rows["mobile"]["rule"], rows["mobile"]["sent_on"]) == (MOBILE_RULE, ["create"])
    assert rows["name"]["rule"] == default_label("name")
    code, text = run("-", "--mapping", str(plan_mapping), stdin=event)
    assert code == 0
    assert "Mapping: mapping.json, extending the Default preset;" in text
    assert (
        f"{PLAN_RULE}; convert table, policy if_empty, on create and update where the contact's field is empty" in text
    )
    assert "update, only where the contact's field is empty: custom_fields.plan\n" in text
    assert "create only, never in an update: mobile\n" in text
    assert "custom_fields.plan only where the contact has no value (the policy if_empty)" in text


def test_the_mapping_is_the_functions_own_unless_the_option_overrides_it(plan_mapping):
    event = {"type": "identify", "userId": "u3", "traits": {"name": "Ann", "plan": "free"}, "context": CONSENTED}
    [found] = explained("-", env={"MAPPING_FILE": str(plan_mapping)}, stdin=event)
    assert found["request"]["body"]["custom_fields"] == {"plan": "Free"}
    [found] = explained("-", "--mapping", "default", env={"MAPPING_FILE": str(plan_mapping)}, stdin=event)
    assert "custom_fields" not in found["request"]["body"]


def test_an_update_only_event_finds_the_contact_first_and_a_person_without_one_gets_nothing(plan_mapping):
    event = {
        "type": "track",
        "event": "plan-changed",
        "userId": "u4",
        "traits": {"email": "ann@example.com", "plan": "pro", "mobile": "07911 123456"},
        "context": CONSENTED,
    }
    [found] = explained("-", "--mapping", str(plan_mapping), "--domain", "acme", stdin=event)
    assert (found["decision"], found["operation"]) == ("deliver", "update")
    assert "a person without a contact gets none (dropped no_contact)" in found["why"]
    assert found["request"]["method"] == "PUT"
    assert found["request"]["url"] == "https://acme.freshdesk.com/api/v2/contacts/{id}"
    assert found["request"]["body"] == {
        "email": "ann@example.com",
        "unique_external_id": "u4",
        "custom_fields": {"plan": "Pro"},
    }
    assert "on_409" not in found and "name" not in found  # an update never names the contact
    steps = " ".join(found["before"])
    assert "GET https://acme.freshdesk.com/api/v2/contacts?email=ann%40example.com" in steps
    assert "nothing is sent, and the event ends dropped, reason no_contact" in steps
    rows = rows_by_target(found)
    assert "mobile" not in rows  # create_only: an update never sends it
    assert rows["custom_fields.plan"]["sent_on"] == ["update_if_empty"]
    assert rows["email"]["sent_on"] == ["update"]


def test_a_contact_event_naming_a_company_has_it_found_or_created_first():
    event = {
        "type": "identify",
        "userId": "u5",
        "traits": {"name": "Ann", "company": {"name": "Acme Ltd"}},
        "context": {**CONSENTED, "groupId": "grp_1"},
    }
    [found] = explained("-", "--domain", "acme", stdin=event)
    assert found["company"] == {"name": "Acme Ltd", "group_id": "grp_1"}
    [step] = found["before"]
    assert 'POST https://acme.freshdesk.com/api/v2/companies {"name": "Acme Ltd"}' in step
    assert "its id goes into the request as company_id" in step
    assert "plus company_id of the company the event names" in " ".join(found["on_409"]["then"])


def test_a_group_event_is_a_company_request_and_a_duplicate_name_is_found_read_and_merged(plan_mapping):
    event = {
        "type": "group",
        "groupId": "grp_1",
        "traits": {"name": "Acme Ltd", "website": "https://www.Acme.com/about", "industry": "Retail"},
    }
    [found] = explained("-", "--mapping", str(plan_mapping), "--domain", "acme", stdin=event)
    assert (found["decision"], found["operation"]) == ("deliver", "company")
    assert found["consent"].startswith("not read")
    request = found["request"]
    assert (request["method"], request["url"]) == ("POST", "https://acme.freshdesk.com/api/v2/companies")
    assert request["body"] == {"name": "Acme Ltd", "domains": ["acme.com"], "industry": "Retail"}
    rows = rows_by_target(found)
    assert rows["industry"]["rule"] == "mapping.json companies.fields line 11 (fields[0])"
    assert rows["domains"]["policy"] == "merge"
    steps = found["on_409"]["then"]
    assert found["on_409"]["final"] is False
    assert "GET https://acme.freshdesk.com/api/v2/companies/autocomplete?name=Acme%20Ltd" in steps[1]
    assert steps[2].startswith("GET https://acme.freshdesk.com/api/v2/companies/{id} to read its domains")
    assert steps[3].startswith("PUT https://acme.freshdesk.com/api/v2/companies/{id} with")
    assert steps[3].endswith("its domains merged into the company's own")
    code, text = run("-", "--mapping", str(plan_mapping), stdin=event)
    assert code == 0
    assert "on 409    updated: the existing company is updated instead" in text


def test_a_group_event_without_a_name_is_dropped_and_says_why():
    [found] = explained("-", stdin={"type": "group", "groupId": "grp_2", "traits": {}})
    assert (found["decision"], found["reason"]) == ("drop", "no_company_name")
    assert "traits.name" in found["why"]


def test_drops_explain_the_mapping_in_use(plan_mapping):
    [found] = explained("-", "--mapping", str(plan_mapping), stdin={"type": "track", "event": "Checkout"})
    assert found["reason"] == "unsupported_event"
    assert "the track events identified, signed_up and plan_changed" in found["why"]
    [found] = explained("-", stdin={"type": "identify", "userId": "u6", "context": CONSENTED})
    assert found["reason"] == "missing_name"
    assert default_label("name") in found["why"] and default_label("name", 1) in found["why"]


def test_a_mapping_file_the_connector_cannot_use_is_an_error_naming_its_line(tmp_path, capsys):
    path = tmp_path / "mapping.json"
    path.write_text('{\n  "extends": "default",\n  "fields": [\n    {"target": "tags", "source": "traits.x"}\n  ]\n}\n')
    code, text = run(str(EVENTS_DIR / "signed-up.json"), "--mapping", str(path))
    assert code == 2 and text == ""
    assert "mapping.json line 4 (fields[0]): 'tags' cannot be a target" in capsys.readouterr().err
