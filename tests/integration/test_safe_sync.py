"""Safe sync against the sandbox as a populated account, through the real handlers, DynamoDB on moto.

Each test seeds contacts as agents would have made them, sends Signal events, and reads what Freshdesk
(the sandbox) ends up holding and how many calls it took.
"""

from __future__ import annotations

import threading
import time

import pytest

from signal_freshdesk.adapters.dynamodb import DynamoDBClient, DynamoDBIdentityMap
from signal_freshdesk.core.identity import Known

CONSENT = {"consent": {"canonical": {"marketing": True}}}
WITHDRAWN = {"consent": {"canonical": {"marketing": False}}}


def identify(message_id: str, at: str, *, user_id: str | None = "usr_jane", context=CONSENT, **traits) -> dict:
    event = {"type": "identify", "messageId": message_id, "timestamp": at, "traits": traits, "context": context}
    if user_id:
        event["userId"] = user_id
    return event


def at(minute: int) -> str:
    return f"2026-11-30T10:{minute:02d}:00.000Z"


def calls(stack) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in stack.freshdesk.requests()]


@pytest.fixture
def jane(stack):
    """Jane, created by an agent before the connector was installed: her own tags and CRM id."""
    return stack.freshdesk.seed_contact(
        name="Jane Doe", email="jane@example.com", tags=["VIP", "Marketing-Consent"], unique_external_id="crm-1"
    )


def test_an_email_only_event_never_renames_the_contact_to_its_email(stack, jane):
    status, body = stack.post(identify("m-1", at(1), user_id=None, email="jane@example.com"))
    assert (status, body["outcome"]) == (200, "updated")
    assert stack.freshdesk.contact(jane["id"])["name"] == "Jane Doe"


def test_a_new_user_id_never_replaces_the_contact_s_join_key(stack, jane):
    status, body = stack.post(identify("m-1", at(1), email="jane@example.com", title="CTO"))
    assert (status, body["outcome"]) == (200, "identity_mismatch")
    contact = stack.freshdesk.contact(jane["id"])
    assert contact["unique_external_id"] == "crm-1" and contact["job_title"] == "CTO"
    assert contact["tags"] == ["VIP", "Marketing-Consent"]  # ours already there, in another case: no second


def test_withdrawn_consent_removes_our_tag_and_nothing_else(stack, jane):
    status, body = stack.post(
        identify("m-1", at(1), user_id=None, context=WITHDRAWN, email="jane@example.com", name="Somebody Else")
    )
    assert (status, body["outcome"]) == (200, "consent_withdrawn")
    contact = stack.freshdesk.contact(jane["id"])
    assert contact["tags"] == ["VIP"] and contact["name"] == "Jane Doe"
    assert calls(stack) == [("GET", "/api/v2/contacts"), ("PUT", f"/api/v2/contacts/{jane['id']}")]


def test_a_contact_deleted_in_freshdesk_is_not_re_created(stack, jane):
    stack.freshdesk.delete_contact(jane["id"])
    status, body = stack.post(identify("m-1", at(1), user_id=None, email="jane@example.com", name="Jane"))
    assert (status, body["outcome"]) == (200, "deleted_in_freshdesk")
    assert stack.parked() == [] and stack.queue_depth()["Delayed"] == 0
    assert [c["id"] for c in stack.freshdesk.contacts(include_deleted=True)] == [jane["id"]]


def test_a_returning_person_costs_one_put_then_nothing(stack):
    assert stack.post(identify("m-1", at(1), email="ada@example.com", name="Ada"))[0] == 201
    assert stack.post(identify("m-2", at(2), email="ada@example.com", name="Ada", title="Countess"))[0] == 200
    status, body = stack.post(identify("m-3", at(3), email="ada@example.com", name="Ada", title="Countess"))
    assert (status, body["outcome"]) == (200, "unchanged")
    assert [method for method, _ in calls(stack)] == ["POST", "PUT"]


def test_an_older_event_never_overwrites_a_newer_one(stack):
    stack.post(identify("m-new", at(5), email="ada@example.com", name="Ada Newer"))
    status, body = stack.post(identify("m-old", at(1), email="ada@example.com", name="Ada Older"))
    assert (status, body["outcome"]) == (200, "stale")
    [contact] = stack.freshdesk.contacts()
    assert contact["name"] == "Ada Newer"


def test_five_updates_of_one_person_in_a_batch_end_with_the_newest(stack):
    stack.post(identify("m-0", at(0), email="ada@example.com", name="Ada v0"))
    batch = [identify(f"m-{i}", at(i), email="ada@example.com", name=f"Ada v{i}") for i in (3, 1, 5, 2, 4)]
    status, _ = stack.post(batch)
    assert status == 200
    [contact] = stack.freshdesk.contacts()
    assert contact["name"] == "Ada v5"


def test_two_phone_only_events_in_one_batch_make_one_contact(stack):
    events = [identify(f"p-{i}", at(i), user_id=None, name="Al", phone="07700 900123") for i in range(3)]
    stack.post(events)
    assert len(stack.freshdesk.contacts()) == 1


def test_two_concurrent_requests_for_one_phone_make_one_contact(stack):
    stack.freshdesk.delay(0.3)  # both requests are in flight at once
    answers = []

    def send(i: int) -> None:
        answers.append(stack.post(identify(f"c-{i}", at(i), user_id=None, name="Al", phone="07700 900777")))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    stack.freshdesk.delay(0)
    stack.drain()
    assert len([c for c in stack.freshdesk.contacts() if c["phone"] == "+447700900777"]) == 1
    assert sorted(body["outcome"] for _, body in answers) in (
        ["delivered", "queued"],
        ["delivered", "updated"],
        ["delivered", "unchanged"],
    )


def test_the_dynamodb_identity_map_finds_by_any_key_and_holds_a_person_being_created(stack, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.dynamodb.meta.endpoint_url)
    people = DynamoDBIdentityMap(stack.resources.identity_map_table, DynamoDBClient())
    assert people.find(["k-uid", "k-email"]) is None
    assert people.claim(["k-uid", "k-email"], 30) is True
    assert people.claim(["k-uid"], 30) is False  # held by the first
    assert people.find(["k-uid"]) is None  # a hold is not a known person
    people.remember(["k-uid", "k-email"], Known(42, newest=at(1), has_tag=True, external_id="", digest="d"))
    assert people.find(["k-other", "k-email"]) == Known(42, newest=at(1), has_tag=True, external_id="", digest="d")
    assert people.claim(["k-uid"], 30) is False  # known: nothing to create
    people.forget(["k-uid", "k-email"])
    assert people.find(["k-uid", "k-email"]) is None
    people.remember(["k-none"], Known(None))  # looked up: no contact
    assert people.find(["k-none"]) == Known(None) and people.claim(["k-none"], 30) is True


def test_an_expired_entry_is_not_found(stack, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.dynamodb.meta.endpoint_url)
    people = DynamoDBIdentityMap(
        stack.resources.identity_map_table, DynamoDBClient(), ttl_seconds=60, clock=lambda: time.time() - 120
    )
    people.remember(["k-old"], Known(7))
    assert DynamoDBIdentityMap(stack.resources.identity_map_table, DynamoDBClient()).find(["k-old"]) is None


def test_a_known_person_is_held_while_changed_and_still_found(stack, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.dynamodb.meta.endpoint_url)
    people = DynamoDBIdentityMap(stack.resources.identity_map_table, DynamoDBClient())
    people.remember(["k-uid"], Known(42, newest=at(1)))
    assert people.lock(["k-uid", "k-email"], 30) is True  # k-email had no entry: it gets one holding the lock
    assert people.lock(["k-email"], 30) is False  # held, whichever key another event comes with
    assert people.lock(["k-other", "k-uid"], 30) is False
    assert people.lock(["k-other"], 30) is True  # and the refused attempt let go of what it took
    assert people.find(["k-uid"]) == Known(42, newest=at(1))  # still known while held
    assert people.find(["k-email"]) is None  # a lock alone is nobody
    people.unlock(["k-uid", "k-email"])
    assert people.lock(["k-uid", "k-email"], 30) is True
    people.remember(["k-uid", "k-email"], Known(42, newest=at(2)))  # remembering lets go too
    assert people.lock(["k-uid", "k-email"], 30) is True


def test_a_key_that_only_held_a_lock_never_reads_as_a_person_without_a_contact(stack, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.dynamodb.meta.endpoint_url)
    people = DynamoDBIdentityMap(stack.resources.identity_map_table, DynamoDBClient())
    people.remember(["k-email"], Known(42, newest=at(1)))
    assert people.lock(["k-uid", "k-email"], 30) is True
    people.unlock(["k-uid", "k-email"])
    assert people.find(["k-uid", "k-email"]) == Known(42, newest=at(1))  # not the uid key's empty item


def test_the_dynamodb_identity_map_keeps_which_if_empty_fields_a_contact_holds(stack, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", stack.dynamodb.meta.endpoint_url)
    people = DynamoDBIdentityMap(stack.resources.identity_map_table, DynamoDBClient())
    filled = Known(42, newest=at(1), digest="d", filled=("custom_fields.account_manager", "mobile"))
    people.remember(["k-filled"], filled)
    assert people.find(["k-filled"]) == filled
    people.remember(["k-filled"], Known(42))  # none filled: the attribute goes, it is not an empty set
    assert people.find(["k-filled"]) == Known(42)
