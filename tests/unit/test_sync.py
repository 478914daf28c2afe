"""Syncing with a Freshdesk that people already use: no damage, order, consent withdrawal, few calls.

Every test runs the real core against in-memory fakes (tests/fakes.py): Freshdesk answers are scripted,
the identity map is a dict.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from signal_freshdesk.core import envelope
from signal_freshdesk.core.ingest import handle_webhook
from signal_freshdesk.core.model import Answer, Outcome, Result
from signal_freshdesk.core.retry import handle_retry_batch
from signal_freshdesk.core.settings import Settings
from tests.fakes import WEBHOOK_TOKEN, Ports, fake_ports

T1, T2, T3 = "2026-11-30T10:00:00.000Z", "2026-11-30T11:00:00.000Z", "2026-11-30T12:00:00.000Z"


def identify(
    message_id: str, *, at: str = T2, consent: bool | None = True, user_id: str | None = "usr-1", **traits: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "identify",
        "messageId": message_id,
        "timestamp": at,
        "traits": {"email": "jane@example.com", **traits},
    }
    if user_id is not None:
        event["userId"] = user_id
    if consent is not None:
        event["context"] = {"consent": {"canonical": {"marketing": consent}}}
    return event


def signed_up(message_id: str, *, at: str = T2) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Signed Up",
        "messageId": message_id,
        "userId": "usr-1",
        "timestamp": at,
        "traits": {"name": "Jane Doe", "email": "jane@example.com"},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }


def post(ports: Ports, body: Any) -> tuple[int, dict[str, Any]]:
    request = {"headers": {"authorization": f"Bearer {WEBHOOK_TOKEN}"}, "body": json.dumps(body)}
    answer = handle_webhook(request, ports.runtime, deadline=ports.deadline())
    return answer["statusCode"], json.loads(answer["body"])


def conflict_409(contact_id: int) -> Answer:
    return Answer(
        409, {"errors": [{"field": "email", "code": "duplicate_value", "additional_info": {"user_id": contact_id}}]}
    )


def existing(contact_id: int = 7, **fields: Any) -> Answer:
    return Answer(
        200,
        {
            "id": contact_id,
            "name": "Jane Doe",
            "email": "jane@example.com",
            "tags": [],
            "unique_external_id": None,
            **fields,
        },
    )


@pytest.fixture
def ports() -> Ports:
    return fake_ports(identity_map=True)


@pytest.fixture
def no_map() -> Ports:
    return fake_ports(identity_map=False)


# --------------------------------------------------------------------------- update without damage
@pytest.mark.parametrize("fixture", ["ports", "no_map"])
def test_an_update_without_a_name_in_the_traits_leaves_the_name_alone(request, fixture):
    ports = request.getfixturevalue(fixture)
    ports.freshdesk.script("create", conflict_409(7))
    ports.freshdesk.script("get", existing(7))
    status, body = post(ports, identify("m-1"))
    assert (status, body["outcome"]) == (200, "updated")
    update = ports.freshdesk.calls[-1]
    assert update.method == "update" and "name" not in update.body
    assert update.body["email"] == "jane@example.com"


def test_the_create_still_falls_back_to_the_email_as_name(ports):
    post(ports, identify("m-1"))
    assert ports.freshdesk.calls[0].body["name"] == "jane@example.com"


def test_another_unique_external_id_is_never_overwritten(ports):
    ports.freshdesk.script("create", conflict_409(7))
    ports.freshdesk.script("get", existing(7, unique_external_id="crm-1"))
    status, body = post(ports, identify("m-1", user_id="usr-new", name="Jane Doe"))
    assert (status, body["outcome"]) == (200, "identity_mismatch")
    update = ports.freshdesk.calls[-1]
    assert "unique_external_id" not in update.body and update.body["name"] == "Jane Doe"


def test_the_same_unique_external_id_is_sent_as_it_is(ports):
    ports.freshdesk.script("create", conflict_409(7))
    ports.freshdesk.script("get", existing(7, unique_external_id="usr-1"))
    _, body = post(ports, identify("m-1"))
    assert body["outcome"] == "updated"
    assert ports.freshdesk.calls[-1].body["unique_external_id"] == "usr-1"


def test_a_tag_equal_to_ours_ignoring_case_is_ours(ports):
    ports.freshdesk.script("create", conflict_409(7))
    ports.freshdesk.script("get", existing(7, tags=["VIP", "Marketing-Consent"]))
    post(ports, identify("m-1", name="Jane Doe"))
    assert "tags" not in ports.freshdesk.calls[-1].body


def test_a_contact_deleted_in_freshdesk_is_left_deleted(ports):
    ports.freshdesk.script("create", conflict_409(7))
    ports.freshdesk.script("get", existing(7))
    ports.freshdesk.script("update", Answer(405, {"message": "deleted"}, {"Allow": "GET"}))
    status, body = post(ports, identify("m-1", name="Jane Doe"))
    assert (status, body["outcome"]) == (200, "deleted_in_freshdesk")
    assert ports.queues.parked == [] and ports.queues.retries == []
    ports.freshdesk.calls.clear()
    assert post(ports, identify("m-2", at=T3, name="Jane Q. Doe"))[1]["outcome"] == "deleted_in_freshdesk"
    assert ports.freshdesk.calls == []  # the map remembers: not re-created, no call


def test_a_soft_deleted_contact_read_before_the_update_is_left_deleted(no_map):
    no_map.freshdesk.script("create", conflict_409(7))
    no_map.freshdesk.script("get", existing(7, deleted=True))
    assert post(no_map, identify("m-1"))[1]["outcome"] == "deleted_in_freshdesk"
    assert no_map.freshdesk.methods() == ["create", "get"]


def test_a_refused_optional_field_is_dropped_whatever_the_code(ports):
    ports.freshdesk.script("create", Answer(400, {"errors": [{"field": "company_id", "code": "absent_in_db"}]}))
    status, body = post(ports, identify("m-1", name="Jane Doe", company_id=999))
    assert (status, body["outcome"], body["dropped_fields"]) == (201, "delivered", ["company_id"])


# --------------------------------------------------------------------------- the identity map
def test_a_returning_person_costs_one_put_and_nothing_when_nothing_is_new(ports):
    post(ports, identify("m-1", at=T1, name="Jane Doe"))
    assert ports.freshdesk.methods() == ["create"]
    ports.freshdesk.calls.clear()
    status, body = post(ports, identify("m-2", at=T2, name="Jane Doe", title="CTO"))
    assert (status, body["outcome"]) == (200, "updated")
    assert ports.freshdesk.methods() == ["update"]
    ports.freshdesk.calls.clear()
    status, body = post(ports, identify("m-3", at=T3, name="Jane Doe", title="CTO"))
    assert (status, body["outcome"]) == (200, "unchanged")
    assert ports.freshdesk.calls == []


def test_without_the_map_the_same_events_cost_more_calls_and_end_the_same(no_map):
    post(no_map, identify("m-1", at=T1, name="Jane Doe"))
    no_map.freshdesk.script("create", conflict_409(101))
    no_map.freshdesk.script("get", existing(101, tags=["marketing-consent"], unique_external_id="usr-1"))
    status, body = post(no_map, identify("m-2", at=T2, name="Jane Doe", title="CTO"))
    assert (status, body["outcome"]) == (200, "updated")
    assert no_map.freshdesk.methods() == ["create", "create", "get", "update"]


def test_the_map_keys_hold_no_personal_data(ports):
    post(ports, identify("m-1", name="Jane Doe"))
    stored = json.dumps({key: vars(value) for key, value in ports.identity_map.entries.items()})
    for personal in ("jane@example.com", "usr-1", "Jane"):
        assert personal not in stored
    assert len(ports.identity_map.entries) == 2  # the user id and the email, each an HMAC


def test_a_known_id_that_no_longer_exists_is_forgotten_and_created_afresh(ports):
    post(ports, identify("m-1", at=T1, name="Jane Doe"))
    ports.freshdesk.calls.clear()
    ports.freshdesk.script("update", Answer(404, None))
    status, body = post(ports, identify("m-2", at=T2, name="Jane Smith"))
    assert (status, body["outcome"]) == (201, "delivered")
    assert ports.freshdesk.methods() == ["update", "create"]


def test_a_signed_up_of_a_known_person_is_a_conflict_without_a_call(ports):
    post(ports, identify("m-1", at=T1, name="Jane Doe"))
    ports.freshdesk.calls.clear()
    status, body = post(ports, signed_up("s-1", at=T2))
    assert (status, body["outcome"]) == (409, "conflict")
    assert ports.freshdesk.calls == []


def test_a_map_that_does_not_answer_costs_calls_never_the_event(ports):
    ports.identity_map.down = True
    status, body = post(ports, identify("m-1", name="Jane Doe"))
    assert (status, body["outcome"]) == (201, "delivered")


# --------------------------------------------------------------------------- order
def test_an_older_event_is_stale_and_costs_no_call(ports):
    post(ports, identify("m-new", at=T3, name="Jane Newer"))
    ports.freshdesk.calls.clear()
    status, body = post(ports, identify("m-old", at=T1, name="Jane Older"))
    assert (status, body["outcome"]) == (200, "stale")
    assert ports.freshdesk.calls == []


def test_a_retried_older_event_is_stale_after_a_newer_one_was_applied(ports):
    ports.freshdesk.script("create", Answer(503, "busy"))
    post(ports, identify("m-old", at=T1, name="Jane Older"))
    [(queued, _)] = ports.queues.retries
    post(ports, identify("m-new", at=T3, name="Jane Newer"))
    ports.freshdesk.calls.clear()
    record = {"messageId": "sqs-1", "body": json.dumps(queued)}
    assert handle_retry_batch({"Records": [record]}, ports.runtime, deadline=ports.deadline(55)) == {
        "batchItemFailures": []
    }
    assert ports.freshdesk.calls == []
    assert ports.store.records["m-old"].summary["outcome"] == "stale"


def test_one_person_s_events_in_a_batch_are_applied_in_timestamp_order(ports):
    stamps = [f"2026-11-30T10:0{i}:00Z" for i in range(5)]
    events = [identify(f"v{i}", at=stamps[i], name=f"Jane v{i}") for i in (3, 0, 4, 1, 2)]
    events.append(identify("other", at=T1, user_id="usr-2", email="other@example.com", name="Other"))
    status, body = post(ports, events)
    assert status == 200
    names = [c.body["name"] for c in ports.freshdesk.calls if c.body and c.body.get("email") == "jane@example.com"]
    assert names == [f"Jane v{i}" for i in range(5)]
    assert [r["messageId"] for r in body["results"]] == ["v3", "v0", "v4", "v1", "v2", "other"]


def test_two_phone_only_events_in_one_batch_make_one_contact(no_map):
    no_map.freshdesk.script("find", Answer(200, []), Answer(200, [{"id": 101}]))
    events = [
        {
            "type": "identify",
            "messageId": f"p{i}",
            "timestamp": T1 if i == 0 else T2,
            "traits": {"name": "Al", "phone": "07700 900123"},
            "context": {"consent": {"canonical": {"marketing": True}}},
        }
        for i in range(2)
    ]
    post(no_map, events)
    assert no_map.freshdesk.methods().count("create") == 1


# --------------------------------------------------------------------------- consent withdrawal
def test_withdrawn_consent_removes_only_our_tag(ports):
    post(ports, identify("m-1", at=T1, name="Jane Doe"))
    ports.freshdesk.calls.clear()
    ports.freshdesk.script("get", existing(101, tags=["vip", "Marketing-Consent"]))
    status, body = post(ports, identify("m-2", at=T2, consent=False, name="Jane Renamed"))
    assert (status, body["outcome"]) == (200, "consent_withdrawn")
    # A PUT replaces the whole tag list, so the contact's current tags are read first (agents add tags too).
    assert ports.freshdesk.methods() == ["get", "update"]
    assert ports.freshdesk.calls[-1].body == {"tags": ["vip"]}  # the name in the event is not applied


def test_withdrawal_for_a_contact_the_connector_never_saw_costs_one_lookup(ports):
    ports.freshdesk.script(
        "find", Answer(200, [{"id": 55, "email": "jane@example.com", "tags": ["vip", "marketing-consent"]}])
    )
    status, body = post(ports, identify("m-1", consent=False))
    assert (status, body["outcome"]) == (200, "consent_withdrawn")
    assert ports.freshdesk.methods() == ["find", "update"]
    assert ports.freshdesk.calls[-1].body == {"tags": ["vip"]}
    ports.freshdesk.calls.clear()
    assert post(ports, identify("m-2", at=T3, consent=False))[1]["outcome"] == "consent_withdrawn"
    assert ports.freshdesk.calls == []  # the map knows the tag is gone


def test_withdrawal_for_a_person_without_a_contact_creates_nothing(ports):
    status, body = post(ports, identify("m-1", consent=False))
    assert (status, body["outcome"], body["reason"]) == (200, "dropped", "consent_denied")
    assert ports.freshdesk.methods() == ["find"]
    ports.freshdesk.calls.clear()
    post(ports, identify("m-2", at=T3, consent=False))
    assert ports.freshdesk.calls == []  # "not found" is remembered


def test_consent_mode_off_ignores_withdrawal(ports):
    off = fake_ports(Settings(retry_queue_url="r", dlq_url="d", consent_mode="off"), identity_map=True)
    status, body = post(off, identify("m-1", consent=False, name="Jane Doe"))
    assert (status, body["outcome"]) == (201, "delivered")
    assert "tags" not in off.freshdesk.calls[0].body


def test_a_queued_withdrawal_is_retried_as_a_withdrawal(ports):
    post(ports, identify("m-1", at=T1, name="Jane Doe"))
    ports.freshdesk.script("get", Answer(503, "busy"))
    ports.freshdesk.script("update", Answer(503, "busy"))
    post(ports, identify("m-2", at=T2, consent=False))
    [(queued, _)] = ports.queues.retries
    assert queued["event"]["context"]["consent"] == {"canonical": {"marketing": False}}
    ports.freshdesk.calls.clear()
    record = {"messageId": "sqs-1", "body": envelope.encode(queued)}
    handle_retry_batch({"Records": [record]}, ports.runtime, deadline=ports.deadline(55))
    assert ports.store.records["m-2"].summary["outcome"] == "consent_withdrawn"


def test_new_outcomes_are_final_and_never_queued():
    for outcome in (
        Outcome.UNCHANGED,
        Outcome.STALE,
        Outcome.CONSENT_WITHDRAWN,
        Outcome.DELETED_IN_FRESHDESK,
        Outcome.IDENTITY_MISMATCH,
    ):
        ports = fake_ports()
        from signal_freshdesk.core.pipeline import queue_or_park

        result = queue_or_park({"messageId": "x"}, Result("x", outcome), ports.runtime, attempts=1)
        assert result.outcome is outcome and ports.queues.retries == [] and ports.queues.parked == []


def test_a_phone_only_person_another_invocation_is_creating_is_queued_not_created_twice(ports):
    from signal_freshdesk.core.identity import IdentityKeys, identity_key_from_secret
    from tests.fakes import SECRET

    keys = IdentityKeys(identity_key_from_secret(SECRET["webhook_token"])).keys_for({"phone": "+447700900123"})
    ports.identity_map.claims.add(keys[0])  # held by a concurrent invocation
    event = {
        "type": "identify",
        "messageId": "p-1",
        "timestamp": T1,
        "traits": {"name": "Al", "phone": "07700 900123"},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }
    status, body = post(ports, event)
    assert (status, body["outcome"], body["reason"]) == (202, "queued", "person_busy")
    assert ports.freshdesk.calls == []
    ports.identity_map.claims.clear()
    ports.queues.retries.clear()
    assert post(ports, dict(event, messageId="p-2"))[1]["outcome"] == "delivered"
    assert ports.freshdesk.methods() == ["find", "create"]


def test_people_sharing_a_phone_are_not_one_person(ports):
    post(ports, identify("m-1", at=T1, user_id="usr-1", email="jane@example.com", name="Jane", phone="07700 900123"))
    ports.freshdesk.calls.clear()
    status, body = post(
        ports, identify("m-2", at=T2, user_id="usr-2", email="john@example.com", name="John", phone="07700 900123")
    )
    assert (status, body["outcome"]) == (201, "delivered")  # John is created, not taken for Jane
    assert ports.freshdesk.methods() == ["create"]


def test_an_older_grant_after_a_withdrawal_of_a_person_without_a_contact_is_stale(ports):
    status, body = post(ports, identify("m-withdraw", at=T2, consent=False))
    assert body["reason"] == "consent_denied"
    ports.freshdesk.calls.clear()
    status, body = post(ports, identify("m-older-grant", at=T1, name="Jane Doe"))
    assert (status, body["outcome"]) == (200, "stale")
    assert ports.freshdesk.calls == []  # not created, and never tagged after the withdrawal
    assert post(ports, identify("m-newer-grant", at=T3, name="Jane Doe"))[1]["outcome"] == "delivered"


def test_an_unknown_person_another_invocation_is_creating_waits_and_then_finds_them_known(ports):
    from signal_freshdesk.core.identity import IdentityKeys, identity_key_from_secret
    from tests.fakes import SECRET

    keys = IdentityKeys(identity_key_from_secret(SECRET["webhook_token"])).keys_for(
        {"unique_external_id": "usr-1", "email": "jane@example.com"}
    )
    ports.identity_map.claims.add(keys[1])  # another invocation is creating Jane (held by her email)
    status, body = post(ports, identify("m-old", at=T1, name="Jane Older"))
    assert (status, body["reason"]) == (202, "person_busy") and ports.freshdesk.calls == []
    assert not ports.identity_map.claims - {keys[1]}  # nothing of this attempt is left held
    # The other invocation finishes: Jane is known with a newer event, so the waiting one is stale.
    from signal_freshdesk.core.identity import Known

    ports.identity_map.remember(keys, Known(7, newest=T3, has_tag=True, external_id="", digest=""))
    assert post(ports, identify("m-old-again", at=T1, name="Jane Older"))[1]["outcome"] == "stale"


def test_a_known_person_another_invocation_is_changing_is_queued_without_a_call(ports):
    post(ports, identify("m-1", at=T1, name="Jane Doe"))
    ports.freshdesk.calls.clear()
    ports.identity_map.locks.update(ports.identity_map.entries)  # a concurrent invocation holds Jane
    status, body = post(ports, identify("m-2", at=T2, name="Jane Smith"))
    assert (status, body["reason"]) == (202, "person_busy") and ports.freshdesk.calls == []


def test_an_event_applied_by_another_invocation_while_this_one_waited_makes_this_one_stale(ports):
    from signal_freshdesk.core.identity import Known

    post(ports, identify("m-1", at=T1, name="Jane Doe"))
    ports.freshdesk.calls.clear()
    people = ports.identity_map
    real_lock = people.lock

    def lock_after_a_newer_event_landed(key, hold_seconds):
        for entry_key, known in list(people.entries.items()):  # the other invocation applied T3 meanwhile
            people.entries[entry_key] = Known(known.contact_id, newest=T3, has_tag=True, external_id="", digest="x")
        return real_lock(key, hold_seconds)

    people.lock = lock_after_a_newer_event_landed
    status, body = post(ports, identify("m-2", at=T2, name="Jane Older"))
    assert (status, body["outcome"]) == (200, "stale")
    assert ports.freshdesk.calls == [] and not people.locks  # and the hold is let go
