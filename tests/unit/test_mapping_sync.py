"""A user's mapping against a Freshdesk people already use: if_empty, update-only events and companies.

The real core runs against the in-memory fakes of tests/fakes.py; calls are counted from the fake.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from signal_freshdesk.core.ingest import handle_webhook
from signal_freshdesk.core.model import Answer
from signal_freshdesk.core.rules import mapping_from
from signal_freshdesk.core.settings import Settings
from tests.fakes import WEBHOOK_TOKEN, Ports, fake_ports

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "mapping.example.json"
T1, T2, T3 = "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z", "2026-11-30T12:00:00Z"


def identify(message_id: str, at: str = T2, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": "usr-1",
        "timestamp": at,
        "traits": {"name": "Jane Doe", "email": "jane@example.com", **traits},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }


def plan_changed(message_id: str, plan: str, at: str = T2) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Plan Changed",
        "messageId": message_id,
        "userId": "usr-1",
        "timestamp": at,
        "properties": {"plan": plan},
        "traits": {"email": "jane@example.com"},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }


def group(message_id: str, at: str = T2, **traits: Any) -> dict[str, Any]:
    return {
        "type": "group",
        "messageId": message_id,
        "groupId": "grp-1",
        "timestamp": at,
        "traits": {"name": "Acme Ltd", "website": "https://www.acme.example", **traits},
    }


def post(ports: Ports, body: Any) -> tuple[int, dict[str, Any]]:
    request = {"headers": {"authorization": f"Bearer {WEBHOOK_TOKEN}"}, "body": json.dumps(body)}
    answer = handle_webhook(request, ports.runtime, deadline=ports.deadline())
    return answer["statusCode"], json.loads(answer["body"])


@pytest.fixture
def ports() -> Ports:
    settings = Settings(retry_queue_url="fake-retry", dlq_url="fake-dlq", mapping=mapping_from(EXAMPLE))
    return fake_ports(settings, identity_map=True)


def bodies(ports: Ports, method: str) -> list[dict[str, Any]]:
    return [call.body or {} for call in ports.freshdesk.calls if call.method == method]


# --------------------------------------------------------------------------- if_empty


def test_if_empty_fields_go_on_create_and_the_map_then_knows_them_filled(ports):
    status, _ = post(ports, identify("m-1", T1, mobile="+447700900456", account_manager="Sam"))
    assert status == 201
    assert bodies(ports, "create")[0]["mobile"] == "+447700900456"
    ports.freshdesk.calls.clear()
    status, body = post(ports, identify("m-2", T2, mobile="+447700900999", account_manager="Alex", plan="pro"))
    assert (status, body["outcome"]) == (200, "updated")
    # No read: the map knows both were filled; neither is overwritten, the plan is.
    assert ports.freshdesk.methods() == ["update"]
    assert bodies(ports, "update")[0] == {
        "name": "Jane Doe",
        "email": "jane@example.com",
        "unique_external_id": "usr-1",
        "custom_fields": {"plan": "Pro"},
    }


def test_if_empty_fields_of_an_existing_contact_fill_only_what_is_empty(ports):
    ports.freshdesk.script("create", Answer(409, {"errors": [{"field": "email", "additional_info": {"user_id": 7}}]}))
    ports.freshdesk.script(
        "get",
        Answer(
            200,
            {"id": 7, "tags": [], "mobile": "+15550001111", "custom_fields": {"account_manager": None, "plan": "Free"}},
        ),
    )
    status, _ = post(ports, identify("m-1", mobile="+447700900456", account_manager="Sam", plan="pro"))
    assert status == 200
    assert ports.freshdesk.methods() == ["create", "get", "update"]  # the read the 409 path already makes
    sent = bodies(ports, "update")[0]
    assert "mobile" not in sent  # the agent's number stays
    assert sent["custom_fields"] == {"plan": "Pro", "account_manager": "Sam"}


def test_a_known_contact_is_read_once_for_an_if_empty_field_the_map_cannot_answer(ports):
    post(ports, identify("m-1", T1))  # created without a mobile: the map knows nothing of it
    ports.freshdesk.calls.clear()
    ports.freshdesk.script("get", Answer(200, {"id": 101, "tags": ["marketing-consent"], "mobile": None}))
    post(ports, identify("m-2", T2, mobile="+447700900456"))
    assert ports.freshdesk.methods() == ["get", "update"]
    assert bodies(ports, "update")[0]["mobile"] == "+447700900456"
    ports.freshdesk.calls.clear()
    status, body = post(ports, identify("m-3", T3, mobile="+447700900999"))
    assert (status, body["outcome"], ports.freshdesk.methods()) == (200, "unchanged", [])


def test_create_only_fields_never_reach_an_update(ports):
    post(ports, identify("m-1", T1, utm_source="newsletter"))
    assert bodies(ports, "create")[0]["custom_fields"]["first_source"] == "newsletter"
    post(ports, identify("m-2", T2, utm_source="ads", plan="pro"))
    assert "first_source" not in bodies(ports, "update")[0].get("custom_fields", {})


# --------------------------------------------------------------------------- update-only events


def test_an_update_only_event_of_a_known_person_is_one_put(ports):
    post(ports, identify("m-1", T1))
    ports.freshdesk.calls.clear()
    status, body = post(ports, plan_changed("m-2", "enterprise"))
    assert (status, body["outcome"], ports.freshdesk.methods()) == (200, "updated", ["update"])
    assert bodies(ports, "update")[0]["custom_fields"] == {"plan": "Enterprise"}


def test_an_update_only_event_of_a_stranger_finds_the_contact_with_one_lookup(ports):
    ports.freshdesk.script("find", Answer(200, [{"id": 55, "email": "jane@example.com", "tags": []}]))
    status, body = post(ports, plan_changed("m-1", "pro"))
    assert (status, body["outcome"], body["contact_id"]) == (200, "updated", 55)
    assert ports.freshdesk.methods() == ["find", "update"]  # the lookup's record is the read
    assert [call.contact_id for call in ports.freshdesk.calls if call.method == "update"] == [55]


def test_an_update_only_event_creates_nobody(ports):
    status, body = post(ports, plan_changed("m-1", "pro"))
    assert (status, body["outcome"], body["reason"]) == (200, "dropped", "no_contact")
    assert ports.freshdesk.methods() == ["find"]
    # Looked up again next time: an agent may have created the contact meanwhile.
    ports.freshdesk.script("find", Answer(200, [{"id": 56, "tags": []}]))
    status, body = post(ports, plan_changed("m-2", "pro", at=T3))
    assert (body["outcome"], ports.freshdesk.methods()) == ("updated", ["find", "find", "update"])


def test_an_update_only_lookup_that_fails_is_queued(ports):
    ports.freshdesk.script("find", Answer(503))
    status, body = post(ports, plan_changed("m-1", "pro"))
    assert (status, body["outcome"]) == (202, "queued")
    assert len(ports.queues.retries) == 1


# --------------------------------------------------------------------------- group events


def test_a_group_event_creates_the_company_and_a_repeat_costs_nothing(ports):
    status, body = post(ports, group("g-1", T1, industry="Retail"))
    assert (status, body["outcome"]) == (201, "delivered")
    company = ports.freshdesk.companies[body["company_id"]]
    assert (company["name"], company["domains"], company["industry"]) == ("Acme Ltd", ["acme.example"], "Retail")
    ports.freshdesk.calls.clear()
    status, body = post(ports, group("g-2", T2, industry="Retail"))
    assert (status, body["outcome"], ports.freshdesk.methods()) == (200, "unchanged", [])


def test_a_company_an_agent_made_is_found_by_name_and_its_domains_kept(ports):
    agent_made = ports.freshdesk.seed_company(name="ACME LTD", domains=["acme.co.uk"], industry="Wholesale")
    status, body = post(ports, group("g-1", industry="Retail"))
    assert (status, body["outcome"], body["company_id"]) == (200, "updated", agent_made["id"])
    assert ports.freshdesk.methods() == ["create_company", "find_companies", "get_company", "update_company"]
    company = ports.freshdesk.companies[agent_made["id"]]
    assert company["domains"] == ["acme.co.uk", "acme.example"]
    assert len(ports.freshdesk.companies) == 1


def test_autocomplete_matches_that_only_start_alike_are_not_taken(ports):
    ports.freshdesk.seed_company(name="Acme Ltd Holdings")
    ports.freshdesk.script("create_company", Answer(409, {"errors": [{"field": "name", "code": "duplicate_value"}]}))
    status, body = post(ports, group("g-1"))
    assert (status, body["outcome"]) == (409, "conflict")
    assert [c["name"] for c in ports.freshdesk.companies.values()] == ["Acme Ltd Holdings"]
    assert ports.freshdesk.methods() == ["create_company", "find_companies"]


def test_an_older_group_event_is_stale(ports):
    post(ports, group("g-2", T2, industry="Retail"))
    ports.freshdesk.calls.clear()
    _status, body = post(ports, group("g-1", T1, industry="Mining"))
    assert (body["outcome"], ports.freshdesk.methods()) == ("stale", [])


def test_a_group_event_during_an_outage_is_queued(ports):
    ports.freshdesk.script("create_company", Answer(429, headers={"Retry-After": "30"}))
    status, body = post(ports, group("g-1"))
    assert (status, body["outcome"], body["retry_in_seconds"]) == (202, "queued", 30)


# --------------------------------------------------------------------------- contacts naming a company


def test_a_contact_naming_a_new_company_creates_it_first_and_links_it(ports):
    status, _body = post(ports, identify("m-1", company={"name": "Acme Ltd"}))
    assert status == 201
    assert ports.freshdesk.methods() == ["create_company", "create"]
    company_id = next(iter(ports.freshdesk.companies))
    assert bodies(ports, "create")[0]["company_id"] == company_id


def test_a_company_the_map_knows_costs_no_call(ports):
    _, grouped = post(ports, group("g-1"))
    ports.freshdesk.calls.clear()
    event = identify("m-1")
    event["context"]["groupId"] = "grp-1"
    post(ports, event)
    assert ports.freshdesk.methods() == ["create"]
    assert bodies(ports, "create")[0]["company_id"] == grouped["company_id"]
    ports.freshdesk.calls.clear()
    _, body = post(ports, identify("m-2", company="acme ltd"))  # by name, in another case: the same company
    assert (body["outcome"], ports.freshdesk.methods()) == ("unchanged", [])


def test_a_contact_naming_an_unknown_group_goes_without_a_company(ports):
    event = identify("m-1")
    event["context"]["groupId"] = "grp-unknown"
    status, _ = post(ports, event)
    assert status == 201 and "company_id" not in bodies(ports, "create")[0]
    assert ports.freshdesk.methods() == ["create"]


def test_a_company_freshdesk_refuses_leaves_the_contact_without_it(ports):
    ports.freshdesk.script("create_company", Answer(400, {"errors": [{"field": "name", "code": "invalid_value"}]}))
    status, body = post(ports, identify("m-1", company="Acme Ltd"))
    assert (status, body["outcome"], body["dropped_fields"]) == (201, "delivered", ["company_id"])
    assert "company_id" not in bodies(ports, "create")[0]


def test_a_company_call_that_is_throttled_queues_the_contact_event(ports):
    ports.freshdesk.script("create_company", Answer(429, headers={"Retry-After": "12"}))
    status, body = post(ports, identify("m-1", company="Acme Ltd"))
    assert (status, body["outcome"]) == (202, "queued")
    assert ports.freshdesk.methods() == ["create_company"]


def test_a_company_a_contact_event_created_still_takes_an_older_group_event(ports):
    post(ports, identify("m-1", T3, company="Acme Ltd"))
    status, body = post(ports, group("g-1", T1, industry="Retail"))
    assert (status, body["outcome"]) == (200, "updated")  # not stale: the contact event's time is not the group's
    assert ports.freshdesk.companies[body["company_id"]]["industry"] == "Retail"


def test_a_refused_company_does_not_use_up_the_one_resend_without_dispensable_fields(ports):
    ports.freshdesk.script("create_company", Answer(400, {"errors": [{"field": "name", "code": "invalid_value"}]}))
    ports.freshdesk.script("create", Answer(400, {"errors": [{"field": "cf_region", "code": "invalid_field"}]}))
    status, body = post(ports, identify("m-1", company="Acme Ltd", region="uk"))
    assert (status, body["outcome"]) == (201, "delivered")
    assert body["dropped_fields"] == ["company_id", "region"]
    assert "region" not in bodies(ports, "create")[1].get("custom_fields", {})


def test_a_batch_applies_its_group_events_before_the_contacts_that_name_the_group(ports):
    def slow_create(call: Any) -> Answer:
        time.sleep(0.2)  # the contact's lane would look the group up meanwhile
        return ports.freshdesk._company_default(call)

    ports.freshdesk.script("create_company", slow_create)
    contact = identify("m-1", T2)
    contact["context"]["groupId"] = "grp-1"
    _, body = post(ports, {"batch": [contact, group("g-1", T1)]})
    contact_result, group_result = body["results"]
    assert (group_result["outcome"], contact_result["outcome"]) == ("delivered", "delivered")
    assert bodies(ports, "create")[0]["company_id"] == group_result["company_id"]
