"""The example mapping end to end: real handlers, the Freshdesk sandbox over HTTP, embedded AWS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "mapping.example.json"
T1, T2, T3 = "2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z", "2026-11-30T12:00:00Z"
FIELD_TYPES = {
    "plan": "custom_dropdown",
    "seats": "custom_number",
    "beta_tester": "custom_checkbox",
    "trial_ends": "custom_date",
    "region": "custom_dropdown",
    "account_manager": "custom_text",
    "first_source": "custom_text",
}
CHOICES = {"plan": ["Free", "Starter", "Pro", "Enterprise", "Other"], "region": ["EMEA", "Americas", "APAC"]}


@pytest.fixture
def mapped(stack, configure):
    for name, choices in CHOICES.items():
        stack.freshdesk.set_custom_field_choices(name, choices)
    for name, field_type in FIELD_TYPES.items():
        if name not in CHOICES:
            stack.freshdesk.set_custom_field_type(name, field_type)
    configure(MAPPING_FILE=str(EXAMPLE))
    return stack


def consented(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "context": {**event.get("context", {}), "consent": {"canonical": {"marketing": True}}}}


def test_a_group_then_a_contact_of_it_with_custom_fields(mapped):
    status, body = mapped.post(
        {
            "type": "group",
            "messageId": "g-1",
            "groupId": "grp-n",
            "timestamp": T1,
            "traits": {"name": "Northwind Traders", "website": "https://www.northwind.example", "industry": "Retail"},
        }
    )
    assert (status, body["outcome"]) == (201, "delivered")
    company = mapped.freshdesk.company(body["company_id"])
    assert (company["domains"], company["industry"]) == (["northwind.example"], "Retail")
    event = consented(
        {
            "type": "identify",
            "messageId": "m-1",
            "userId": "usr-n1",
            "timestamp": T2,
            "traits": {
                "name": "Nancy Davolio",
                "email": "nancy@northwind.example",
                "plan": "PRO",
                "seats": "12",
                "beta": "yes",
                "region": "uk",
                "trial_ends_at": "2027-01-15T09:00:00Z",
                "mobile": "07700 900456",
            },
            "context": {"groupId": "grp-n"},
        }
    )
    status, answer = mapped.post(event)
    assert status == 201, answer
    contact = mapped.freshdesk.contact(answer["contact_id"])
    assert contact["company_id"] == company["id"]
    assert contact["mobile"] == "+447700900456"
    assert {name: value for name, value in contact["custom_fields"].items() if value is not None} == {
        "plan": "Pro",
        "seats": 12,
        "beta_tester": True,
        "region": "EMEA",
        "trial_ends": "2027-01-15",
    }


def test_an_agents_mobile_survives_and_an_update_only_event_changes_the_plan(mapped):
    seeded = mapped.freshdesk.seed_contact(
        name="Ann Agent", email="ann@example.com", mobile="+15550001111", custom_fields={"plan": "Free"}
    )
    status, body = mapped.post(
        consented(
            {
                "type": "identify",
                "messageId": "m-1",
                "timestamp": T1,
                "traits": {
                    "name": "Ann",
                    "email": "ann@example.com",
                    "mobile": "07700 900123",
                    "account_manager": "Sam",
                },
            }
        )
    )
    assert (status, body["outcome"]) == (200, "updated")
    contact = mapped.freshdesk.contact(seeded["id"])
    assert contact["mobile"] == "+15550001111"  # if_empty: the agent's number stays
    assert contact["custom_fields"]["account_manager"] == "Sam"  # it was empty
    status, body = mapped.post(
        consented(
            {
                "type": "track",
                "event": "Plan Changed",
                "messageId": "m-2",
                "timestamp": T2,
                "properties": {"plan": "enterprise"},
                "traits": {"email": "ann@example.com"},
            }
        )
    )
    assert (status, body["outcome"]) == (200, "updated")
    assert mapped.freshdesk.contact(seeded["id"])["custom_fields"]["plan"] == "Enterprise"


def test_an_update_only_event_for_a_stranger_creates_nobody(mapped):
    status, body = mapped.post(
        consented(
            {
                "type": "track",
                "event": "Plan Changed",
                "messageId": "m-1",
                "timestamp": T1,
                "properties": {"plan": "pro"},
                "traits": {"email": "nobody@example.com"},
            }
        )
    )
    assert (status, body["outcome"], body["reason"]) == (200, "dropped", "no_contact")
    assert mapped.freshdesk.contacts() == []
