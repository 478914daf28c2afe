"""Safe sync under the paths a review found wanting: several phone matches, tag_only withdrawals, a tag
nobody has read, a withdrawal racing a create, a failed create after a withdrawal, a map failing while a
person is held. Each against the in-memory fakes."""

from __future__ import annotations

from typing import Any

from signal_freshdesk.core.delivery import deliver_contact
from signal_freshdesk.core.errors import StoreUnavailable
from signal_freshdesk.core.mapping import plan_event
from signal_freshdesk.core.model import Answer, Outcome, Result
from signal_freshdesk.core.settings import Settings
from tests.fakes import Ports, fake_ports
from tests.unit.test_sync import T1, T2, T3, conflict_409, existing, identify, post, signed_up

PHONE = "+447700900123"


def tag_only(identity_map: bool = True) -> Ports:
    settings = Settings(retry_queue_url="fake-retry", dlq_url="fake-dlq", consent_mode="tag_only")
    return fake_ports(settings, identity_map=identity_map)


def deliver(ports: Ports, event: dict[str, Any]) -> Result:
    plan = plan_event(event, consent_mode=ports.runtime.settings.consent_mode, allow_withdrawal=True)
    assert not isinstance(plan, Result)
    return deliver_contact(
        plan,  # type: ignore[arg-type]
        freshdesk=ports.freshdesk,
        credentials=ports.runtime.credentials,
        rate=ports.runtime.rate,
        identity_map=ports.runtime.identity_map,
        create_when_withdrawn=ports.runtime.settings.consent_mode == "tag_only",
    )


def phone_event(kind: str, message_id: str, at: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "identify",
        "messageId": message_id,
        "timestamp": at,
        "traits": {"name": "Jane Doe", "phone": PHONE},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }
    if kind == "signed_up":
        event.update(type="track", event="Signed Up")
    return event


def test_a_phone_shared_by_several_contacts_never_becomes_one_of_them():
    for with_map in (False, True):
        ports = fake_ports(identity_map=with_map)
        two = Answer(200, [{"id": 7, "phone": PHONE}, {"id": 8, "phone": PHONE}])
        ports.freshdesk.script("find", two, two)
        assert post(ports, phone_event("signed_up", "m-1", T1))[1]["outcome"] == "conflict"
        _, body = post(ports, phone_event("identify", "m-2", T2))
        assert body["outcome"] == "conflict", (with_map, body)
        assert "update" not in ports.freshdesk.methods()


def test_tag_only_withdrawal_of_an_existing_contact_takes_only_our_tag_off():
    for with_map in (False, True):
        ports = tag_only(with_map)
        ports.freshdesk.script("create", conflict_409(7))
        ports.freshdesk.script("get", existing(7, tags=["VIP", "marketing-consent"]))
        _, body = post(ports, identify("m-1", consent=False, name="Jane Doe"))
        assert body["outcome"] == "consent_withdrawn", (with_map, body)
        assert [c.body for c in ports.freshdesk.calls if c.method == "update"] == [{"tags": ["VIP"]}]


def test_a_tag_nobody_has_read_stays_unknown_so_a_withdrawal_reads_it():
    ports = tag_only()
    ports.freshdesk.script("create", conflict_409(7))
    assert post(ports, signed_up("m-1", at=T1))[1]["outcome"] == "conflict"
    assert post(ports, identify("m-2", at=T2, consent=None, user_id=None, name="Jane Doe"))[1]["outcome"] == "updated"
    ports.freshdesk.calls.clear()
    ports.freshdesk.script("get", existing(7, tags=["marketing-consent"]))
    _, body = post(ports, identify("m-3", at=T3, consent=False, user_id=None))
    assert body["outcome"] == "consent_withdrawn" and body.get("reason") != "tag_already_absent"
    assert ports.freshdesk.methods() == ["get", "update"]


def test_a_withdrawal_waits_for_a_create_another_invocation_holds():
    ports = fake_ports(identity_map=True)
    results: dict[str, Result] = {}

    def while_the_post_is_in_flight(call):
        results["B"] = deliver(ports, identify("m-B", at=T3, consent=False))
        return Answer(201, {"id": 9, **(call.body or {})})

    ports.freshdesk.script("create", while_the_post_is_in_flight)
    results["A"] = deliver(ports, identify("m-A", at=T2, name="Jane Doe"))
    assert results["A"].outcome is Outcome.DELIVERED
    assert (results["B"].outcome, results["B"].reason) == (Outcome.QUEUED, "person_busy")


def test_a_failed_create_after_a_withdrawal_keeps_the_withdrawal_s_time():
    ports = fake_ports(identity_map=True)
    assert post(ports, identify("m-1", at=T2, consent=False))[1]["outcome"] == "dropped"
    ports.freshdesk.script("create", Answer(400, {"errors": [{"field": "name", "code": "invalid_value"}]}))
    assert post(ports, identify("m-2", at=T3, name="Jane Doe"))[1]["outcome"] == "rejected"
    assert post(ports, identify("m-0", at=T1, name="Jane Doe"))[1]["outcome"] == "stale"


def test_a_hold_is_let_go_even_when_the_map_fails_while_it_is_held():
    ports = fake_ports(identity_map=True)
    assert post(ports, identify("m-1", at=T1, name="Jane Doe"))[1]["outcome"] == "delivered"
    people = ports.identity_map
    real_find = people.find
    finds = {"n": 0}

    def blip_on_the_re_read(keys):
        finds["n"] += 1
        if finds["n"] == 2:
            raise StoreUnavailable("blip")
        return real_find(keys)

    people.find = blip_on_the_re_read  # type: ignore[method-assign]
    post(ports, identify("m-2", at=T2, name="Jane Q"))
    assert people.locks == set()
