"""The Default preset's mapping rules for safe updates: usable values only, the update body, the plan's
consent, timestamp and person, and consent withdrawal (docs/behaviour.md: mapping, consent, updates)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signal_freshdesk.core.envelope import slim_event
from signal_freshdesk.core.mapping import (
    TRAIT_KEYS,
    company_id,
    contact_name,
    external_id,
    has_unusable_characters,
    map_contact,
    map_update,
    merged_traits,
    normalise_email,
    normalise_phone,
    normalise_user_id,
    person_of,
    plan_event,
    read_consent,
    signup_method,
    timestamp_of,
    usable_text,
)
from signal_freshdesk.core.model import Consent, Drop, DropReason, Operation, PlannedContact
from signal_freshdesk_dev.handlers import load_event, signal_events_of

SHA256_OF_EMAIL = "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"
GRANTED = {"canonical": {"marketing": True}}
DENIED = {"canonical": {"marketing": False}}
_UNSET = object()

# Control (Cc) and format (Cf) characters, and a lone surrogate (Cs).
UNUSABLE_CHARACTERS = [
    "\x00",  # NUL
    "\t",  # tab (Cc)
    "\n",  # newline (Cc)
    "\r",
    "\x7f",  # DEL
    "\x85",  # next line (Cc, and whitespace to str.strip)
    "\x1f",  # unit separator (Cc, and whitespace to str.strip)
    "\u202e",  # right-to-left override
    "\u200d",  # zero-width joiner
    "\u200b",  # zero-width space
    "\ufeff",  # byte order mark
    "\u00ad",  # soft hyphen
    "\ud800",  # lone surrogate
]


def make_event(
    *,
    context_traits: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    user_id: Any = _UNSET,
    consent: Any = _UNSET,
    name: str = "Identified",
    **extra: Any,
) -> dict[str, Any]:
    """A track event: by default no userId, no traits, marketing consent granted."""
    event: dict[str, Any] = {"type": "track", "event": name, "messageId": "msg-1", **extra}
    if user_id is not _UNSET:
        event["userId"] = user_id
    if traits is not None:
        event["traits"] = traits
    context: dict[str, Any] = {"traits": context_traits or {}}
    context["consent"] = GRANTED if consent is _UNSET else consent
    event["context"] = context
    return event


def planned(event: dict[str, Any], **kwargs: Any) -> PlannedContact:
    decision = plan_event(event, **kwargs)
    assert isinstance(decision, PlannedContact), decision
    return decision


def contact_of(event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return planned(event, **kwargs).contact


def sample(name: str) -> dict[str, Any]:
    (event,) = signal_events_of(load_event(name))
    return event


def assert_no_empty_values(value: Any) -> None:
    assert value is not None and value != ""
    if isinstance(value, dict):
        assert value
        for item in value.values():
            assert_no_empty_values(item)
    elif isinstance(value, list):
        assert value
        for item in value:
            assert_no_empty_values(item)


def texts_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in texts_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in texts_in(item)]
    return []


# --------------------------------------------------------------------------- usable values only


def test_a_null_top_level_email_does_not_hide_the_context_email():
    # The example: this event used to be dropped as anonymous.
    event = make_event(context_traits={"email": "jane@example.com"}, traits={"email": None})
    contact = contact_of(event)
    assert contact["email"] == "jane@example.com"
    assert contact["name"] == "jane@example.com"


# For each mapped field: top-level values that are not usable, and a usable context value.
UNUSABLE_TOP_LEVEL = [
    ("email", "", "ctx@example.com", "email", "ctx@example.com"),
    ("email", None, "ctx@example.com", "email", "ctx@example.com"),
    ("email", "   ", "ctx@example.com", "email", "ctx@example.com"),
    ("email", "not-an-address", "ctx@example.com", "email", "ctx@example.com"),
    ("email", SHA256_OF_EMAIL, "ctx@example.com", "email", "ctx@example.com"),
    ("email", "a" * 250 + "@example.com", "ctx@example.com", "email", "ctx@example.com"),
    ("email", 42, "ctx@example.com", "email", "ctx@example.com"),
    ("phone", "", "07700 900123", "phone", "+447700900123"),
    ("phone", None, "07700 900123", "phone", "+447700900123"),
    ("phone", "123", "07700 900123", "phone", "+447700900123"),
    ("phone", "not a phone", "07700 900123", "phone", "+447700900123"),
    ("phone", "7946 0958", "07700 900123", "phone", "+447700900123"),
    ("title", "", "CTO", "job_title", "CTO"),
    ("title", None, "CTO", "job_title", "CTO"),
    ("title", "   ", "CTO", "job_title", "CTO"),
    ("title", 7, "CTO", "job_title", "CTO"),
    ("company_id", "", "12", "company_id", 12),
    ("company_id", None, "12", "company_id", 12),
    ("company_id", "abc", "12", "company_id", 12),
    ("company_id", 0, "12", "company_id", 12),
    ("company_id", -4, "12", "company_id", 12),
    ("company_id", True, "12", "company_id", 12),
    ("company_id", 1.5, 12, "company_id", 12),
    ("name", "", "Ctx Name", "name", "Ctx Name"),
    ("name", None, "Ctx Name", "name", "Ctx Name"),
    ("name", "  ", "Ctx Name", "name", "Ctx Name"),
    ("name", 42, "Ctx Name", "name", "Ctx Name"),
]


@pytest.mark.parametrize(("key", "top", "ctx", "field", "expected"), UNUSABLE_TOP_LEVEL)
def test_an_unusable_top_level_value_never_hides_a_usable_context_value(key, top, ctx, field, expected):
    event = make_event(user_id="usr_1", context_traits={"name": "N", key: ctx}, traits={key: top})
    assert contact_of(event)[field] == expected
    assert merged_traits(event)[key] == ctx


@pytest.mark.parametrize(("key", "top", "ctx", "field", "expected"), UNUSABLE_TOP_LEVEL)
def test_an_unusable_context_value_never_hides_a_usable_top_level_value(key, top, ctx, field, expected):
    event = make_event(user_id="usr_1", context_traits={"name": "N", key: top}, traits={key: ctx})
    assert contact_of(event)[field] == expected


@pytest.mark.parametrize(
    ("key", "top", "ctx", "field", "expected"),
    [
        ("email", "Top@Example.com", "ctx@example.com", "email", "top@example.com"),
        ("phone", "+1 202 555 0143", "07700 900123", "phone", "+12025550143"),
        ("title", "Top Title", "Ctx Title", "job_title", "Top Title"),
        ("company_id", 7, "12", "company_id", 7),
        ("name", "Top Name", "Ctx Name", "name", "Top Name"),
        ("user_id", "top_uid", "ctx_uid", "unique_external_id", "top_uid"),
    ],
)
def test_a_usable_top_level_value_still_wins(key, top, ctx, field, expected):
    event = make_event(context_traits={"name": "N", "email": "n@example.com", key: ctx}, traits={key: top})
    assert contact_of(event)[field] == expected


def test_a_field_no_source_has_a_usable_value_for_is_omitted():
    event = make_event(
        user_id="usr_1",
        context_traits={"name": "N", "email": "nope", "phone": "12", "title": "", "company_id": "x"},
        traits={"email": None, "phone": "", "title": None, "company_id": 0},
    )
    assert contact_of(event) == {"name": "N", "unique_external_id": "usr_1", "tags": ["marketing-consent"]}


def test_merged_traits_hold_the_winning_values_as_given_and_leave_out_unusable_keys():
    event = make_event(
        context_traits={"name": "Ctx", "email": "Ctx@Example.com", "phone": "07700 900123", "title": "T", "x": 1},
        traits={"name": "", "email": "broken", "phone": None, "title": "Top", "company_id": "nope"},
    )
    assert merged_traits(event) == {"name": "Ctx", "email": "Ctx@Example.com", "phone": "07700 900123", "title": "Top"}


def test_merged_traits_read_the_phone_with_the_region_given():
    event = make_event(context_traits={"phone": "(202) 555-0143"}, traits={"phone": "07700 900123"})
    # Read as American, the top-level British national number is not possible: the context one is used.
    assert merged_traits(event, region="US") == {"phone": "(202) 555-0143"}
    assert merged_traits(event, region="GB") == {"phone": "07700 900123"}


def test_a_phone_possible_only_in_the_configured_region_decides_the_source():
    event = make_event(context_traits={"name": "N", "phone": "+1 202 555 0143"}, traits={"phone": "07700 900123"})
    assert contact_of(event, region="GB")["phone"] == "+447700900123"  # the top-level number, read as British
    assert contact_of(event, region="US")["phone"] == "+12025550143"  # not possible as American: the context's


def test_all_trait_keys_are_merged_key_by_key():
    assert set(TRAIT_KEYS) == {
        "name",
        "firstName",
        "first_name",
        "lastName",
        "last_name",
        "email",
        "phone",
        "title",
        "company_id",
        "user_id",
    }


# --------------------------------------------------------------------------- the name chain on merged values


def test_an_unusable_top_level_name_lets_first_and_last_name_apply():
    event = make_event(
        context_traits={"firstName": "Jane", "lastName": "Roe", "email": "j@example.com"}, traits={"name": ""}
    )
    assert contact_of(event)["name"] == "Jane Roe"


def test_name_parts_are_merged_part_by_part():
    event = make_event(
        context_traits={"firstName": "Jane", "lastName": "Roe", "email": "j@example.com"},
        traits={"firstName": "\u202eJ", "lastName": "Doe"},
    )
    assert contact_of(event)["name"] == "Jane Doe"


def test_a_context_name_comes_before_top_level_first_and_last_name():
    # Key by key: top level has no usable `name`, so the context's `name` is the merged name, and the
    # chain takes `name` before first and last name.
    event = make_event(
        context_traits={"name": "Ctx Name", "email": "j@example.com"},
        traits={"name": None, "firstName": "Top", "lastName": "Parts"},
    )
    assert contact_of(event)["name"] == "Ctx Name"


def test_the_email_fallback_uses_the_merged_usable_email():
    event = make_event(
        context_traits={"name": "\x00", "email": "Ctx@Example.com"}, traits={"name": "", "email": "not-an-address"}
    )
    contact = contact_of(event)
    assert contact["name"] == contact["email"] == "ctx@example.com"


def test_snake_case_name_part_applies_when_the_camel_case_one_is_unusable():
    assert contact_name({"firstName": "Ja\u200dne", "first_name": "Jane", "lastName": "Roe"}, None) == "Jane Roe"


def test_contact_name_without_an_email_has_no_fallback():
    assert contact_name({}, None) is None
    assert contact_name({"name": "\u202e"}, None) is None


# --------------------------------------------------------------------------- unique_external_id


def test_external_id_falls_back_to_the_traits_user_id():
    event = make_event(context_traits={"name": "N", "user_id": "ctx_uid"})
    assert external_id(event) == "ctx_uid"
    assert contact_of(event)["unique_external_id"] == "ctx_uid"


def test_top_level_traits_user_id_wins_over_the_context_one():
    event = make_event(context_traits={"user_id": "ctx_uid"}, traits={"user_id": "top_uid"})
    assert external_id(event) == "top_uid"


def test_user_id_and_top_level_user_id_come_before_the_traits_user_id():
    event = make_event(user_id="camel", traits={"user_id": "trait"})
    assert external_id(event) == "camel"
    event = make_event(traits={"user_id": "trait"}, user_id=None)
    del event["userId"]
    event["user_id"] = "snake"
    assert external_id(event) == "snake"


def test_an_integer_traits_user_id_becomes_a_string():
    assert external_id(make_event(traits={"user_id": 123})) == "123"


def test_traits_user_id_alone_is_an_identifier():
    event = make_event(context_traits={"name": "N", "user_id": "usr_ctx"})
    decision = plan_event(event)
    assert isinstance(decision, PlannedContact)
    assert decision.person == "uid:usr_ctx"


@pytest.mark.parametrize("bad", ["u" * 256, "", "   ", None, True, 1.5, ["u"], "usr\x00", "usr\u202e1"])
def test_an_unusable_user_id_falls_through_to_the_next_source(bad):
    event = make_event(user_id=bad, traits={"user_id": "from_traits"})
    event["user_id"] = bad
    assert external_id(event) == "from_traits"


def test_an_over_long_user_id_is_left_out_never_cut():
    event = make_event(user_id="u" * 256, context_traits={"name": "N", "email": "n@example.com", "user_id": "v" * 300})
    assert "unique_external_id" not in contact_of(event)
    assert normalise_user_id("u" * 255) == "u" * 255
    assert normalise_user_id("u" * 256) is None


def test_an_over_long_top_level_traits_user_id_lets_the_context_one_apply():
    event = make_event(context_traits={"user_id": "ctx"}, traits={"user_id": "t" * 256})
    assert external_id(event) == "ctx"


# --------------------------------------------------------------------------- control and format characters


@pytest.mark.parametrize("char", UNUSABLE_CHARACTERS)
def test_text_with_a_control_or_format_character_is_not_usable(char):
    assert has_unusable_characters(f"Jane{char}Roe")
    assert usable_text(f"Jane{char}Roe") is None
    assert usable_text(f"Jane Roe{char}") is None
    assert usable_text(f"{char}Jane Roe") is None


@pytest.mark.parametrize("text", ["Jane Roe", "Zoë Ñúñez", "李小龙", "Jane\u00a0Roe", "O'Brien-Smith", "👩🏽", "x y"])
def test_ordinary_text_is_usable(text):
    assert not has_unusable_characters(text)
    assert usable_text(f"  {text} ") == text


@pytest.mark.parametrize("char", UNUSABLE_CHARACTERS)
def test_a_name_with_a_control_character_falls_back_to_the_next_source(char):
    event = make_event(context_traits={"name": "Ctx Name", "email": "n@example.com"}, traits={"name": f"Top{char}Name"})
    assert contact_of(event)["name"] == "Ctx Name"
    event = make_event(context_traits={"name": f"Bad{char}Name", "first_name": "Jane", "email": "n@example.com"})
    assert contact_of(event)["name"] == "Jane"


@pytest.mark.parametrize("name", ["Jane\tRoe", "Jane\nRoe", "Jane Roe\n", "\tJane Roe", "Jane\r\nRoe"])
def test_tab_and_newline_in_a_name_make_it_unusable(name):
    # Tab, carriage return and newline are Unicode Cc: such a name is not usable, even at its ends.
    event = make_event(context_traits={"name": name, "email": "jane@example.com"})
    assert contact_of(event)["name"] == "jane@example.com"
    assert "name" not in map_update(event, operation=Operation.IDENTIFY, region="GB", consent=Consent.GRANTED)


@pytest.mark.parametrize("char", UNUSABLE_CHARACTERS)
def test_every_text_field_refuses_control_and_format_characters(char):
    assert normalise_email(f"jane{char}@example.com") is None
    assert normalise_email(f"jane@example.com{char}") is None
    assert normalise_phone(f"07700{char}900123", "GB") is None
    assert normalise_phone(f"07700 900123{char}", "GB") is None
    assert normalise_user_id(f"usr{char}1") is None
    assert company_id(f"12{char}") is None
    assert signup_method({"properties": {"method": f"goo{char}gle"}}) is None
    event = make_event(
        name="Signed Up",
        user_id=f"usr{char}",
        context_traits={"name": "N", "email": f"n{char}@example.com", "phone": f"07700{char}900123"},
        traits={"title": f"CTO{char}"},
        properties={"method": f"google{char}"},
    )
    decision = plan_event(event)
    # Nothing identifies the person once the bad texts are gone.
    assert isinstance(decision, Drop) and decision.reason is DropReason.ANONYMOUS
    contact = map_contact(event, operation=Operation.SIGN_UP, region="GB", consent=None)
    assert contact == {"name": "N"}


@pytest.mark.parametrize("char", ["\u202e", "\x00", "\u200b"])
def test_a_control_character_in_one_source_lets_the_other_apply(char):
    event = make_event(
        name="Signed Up",
        context_traits={"name": "N", "email": "ctx@example.com", "phone": "07700 900123", "title": "CTO"},
        traits={"email": f"top{char}@example.com", "phone": f"+1 202{char}555 0143", "title": f"C{char}EO"},
        user_id=f"usr{char}",
        properties={"method": "google"},
    )
    event["user_id"] = "usr_snake"
    contact = contact_of(event)
    assert (contact["email"], contact["phone"], contact["job_title"]) == ("ctx@example.com", "+447700900123", "CTO")
    assert contact["unique_external_id"] == "usr_snake"


def test_company_id_digits_with_ordinary_spaces_still_count():
    assert company_id("  12 ") == 12
    assert company_id("12\n") is None


def test_signup_method_with_a_control_character_is_omitted():
    event = make_event(name="Signed Up", user_id="u", context_traits={"name": "N"}, properties={"method": "e\x00"})
    assert "custom_fields" not in contact_of(event)


# --------------------------------------------------------------------------- the update body


def test_update_body_for_the_signed_up_sample_is_the_create_body_without_tags():
    decision = planned(sample("signed-up"))
    assert decision.update == {k: v for k, v in decision.contact.items() if k != "tags"}
    assert list(decision.update) == ["name", "email", "phone", "unique_external_id", "job_title", "custom_fields"]


def test_update_body_for_the_identified_sample():
    assert planned(sample("identified")).update == {
        "name": "Priya Shah",
        "email": "priya.shah@example.org",
        "phone": "+442079460958",
        "unique_external_id": "usr_456",
        "company_id": 2,
    }


def test_update_never_names_the_contact_after_its_email():
    event = make_event(context_traits={"email": "Solo@Example.com"})
    decision = planned(event)
    assert decision.contact["name"] == "solo@example.com"
    assert decision.update == {"email": "solo@example.com"}


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        ({"name": "Jane Roe"}, "Jane Roe"),
        ({"firstName": "Jane", "lastName": "Roe"}, "Jane Roe"),
        ({"first_name": "Jane"}, "Jane"),
        ({"last_name": "Roe"}, "Roe"),
        ({"name": "n" * 300}, "n" * 255),
    ],
)
def test_update_carries_a_name_the_traits_give(traits, expected):
    event = make_event(context_traits={**traits, "email": "j@example.com"})
    assert map_update(event, operation=Operation.IDENTIFY, region="GB", consent=None)["name"] == expected


@pytest.mark.parametrize("mode", ["require", "tag_only"])
def test_update_never_carries_tags(mode):
    event = make_event(user_id="usr_1", context_traits={"name": "N"})
    decision = planned(event, consent_mode=mode)
    assert decision.contact["tags"] == ["marketing-consent"]
    assert "tags" not in decision.update
    assert map_update(event, operation=Operation.IDENTIFY, region="GB", consent=Consent.GRANTED) == {
        "name": "N",
        "unique_external_id": "usr_1",
    }


def test_update_carries_signup_method_only_on_signed_up():
    event = make_event(name="Signed Up", user_id="u", context_traits={"name": "N"}, properties={"method": "apple"})
    assert planned(event).update["custom_fields"] == {"signup_method": "apple"}
    assert "custom_fields" not in map_update(event, operation=Operation.IDENTIFY, region="GB", consent=None)


def test_update_sends_nothing_empty_and_nothing_unusable():
    event = make_event(
        user_id="",
        context_traits={"name": "", "email": "x", "phone": None, "title": "  ", "company_id": 0, "user_id": "u1"},
        traits={"firstName": None, "lastName": "", "email": "top@example.com", "title": "\x00"},
    )
    assert map_update(event, operation=Operation.IDENTIFY, region="GB", consent=Consent.GRANTED) == {
        "email": "top@example.com",
        "unique_external_id": "u1",
    }


def test_update_uses_the_same_usable_value_merge_as_the_create():
    event = make_event(
        context_traits={"name": "Ctx", "email": "ctx@example.com", "phone": "07700 900123"},
        traits={"name": None, "email": "", "phone": "12"},
    )
    assert planned(event).update == {"name": "Ctx", "email": "ctx@example.com", "phone": "+447700900123"}


# --------------------------------------------------------------------------- what the plan carries


def test_the_plan_carries_timestamp_person_and_consent():
    decision = planned(sample("signed-up"))
    assert decision.timestamp == "2026-02-25T14:30:00.000Z"
    assert decision.person == "uid:usr_123"
    assert decision.consent is Consent.GRANTED


@pytest.mark.parametrize(
    ("mode", "consent", "expected"),
    [
        ("require", GRANTED, Consent.GRANTED),
        ("tag_only", GRANTED, Consent.GRANTED),
        ("tag_only", DENIED, Consent.DENIED),
        ("tag_only", None, Consent.MISSING),
        ("off", GRANTED, None),
        ("off", DENIED, None),
        ("off", None, None),
    ],
)
def test_the_plan_carries_what_the_event_said_about_consent(mode, consent, expected):
    decision = planned(make_event(user_id="u", context_traits={"name": "N"}, consent=consent), consent_mode=mode)
    assert decision.consent is expected


def test_tag_only_still_delivers_a_denied_event_without_the_tag_and_says_denied():
    decision = planned(make_event(user_id="u", context_traits={"name": "N"}, consent=DENIED), consent_mode="tag_only")
    assert "tags" not in decision.contact
    assert decision.consent is Consent.DENIED


@pytest.mark.parametrize(("value", "expected"), [("2026-02-25T14:30:00Z", "2026-02-25T14:30:00Z"), ("  x ", "  x ")])
def test_timestamp_is_kept_as_given(value, expected):
    assert planned(make_event(user_id="u", context_traits={"name": "N"}, timestamp=value)).timestamp == expected


@pytest.mark.parametrize("value", [None, 1772029800, 17.5, {"at": "now"}, ["2026"], True, "t" * 256])
def test_timestamp_is_empty_when_absent_or_not_a_timestamp_string(value):
    assert planned(make_event(user_id="u", context_traits={"name": "N"}, timestamp=value)).timestamp == ""
    assert planned(make_event(user_id="u", context_traits={"name": "N"})).timestamp == ""
    assert timestamp_of({}) == ""


@pytest.mark.parametrize(
    ("user_id", "traits", "person"),
    [
        ("  usr_1 ", {"name": "N", "email": "a@b.co", "phone": "07700 900123"}, "uid:usr_1"),
        (42, {"name": "N"}, "uid:42"),
        (None, {"name": "N", "email": " A@B.CO ", "phone": "07700 900123"}, "email:a@b.co"),
        (None, {"name": "N", "email": SHA256_OF_EMAIL, "phone": "07700 900123"}, "phone:+447700900123"),
        ("u" * 256, {"name": "N", "phone": "+44 7700 900123"}, "phone:+447700900123"),
        (None, {"name": "N", "user_id": "trait_uid", "email": "a@b.co"}, "uid:trait_uid"),
    ],
)
def test_person_is_the_user_id_else_the_email_else_the_phone(user_id, traits, person):
    assert planned(make_event(user_id=user_id, context_traits=traits)).person == person


def test_person_of_a_body_without_an_identifier_is_empty():
    assert person_of({"name": "N"}) == ""


def test_existing_plannedcontact_constructions_keep_working():
    plan = PlannedContact(Operation.IDENTIFY, {"name": "N"}, "m")
    assert (plan.update, plan.consent, plan.timestamp, plan.person) == ({}, None, "", "")
    assert PlannedContact(Operation.SIGN_UP, {}).message_id == ""


# --------------------------------------------------------------------------- consent withdrawal


@pytest.mark.parametrize("mode", ["require", "tag_only"])
def test_allow_withdrawal_plans_a_denied_event_with_consent_denied(mode):
    event = make_event(user_id="usr_1", context_traits={"name": "N", "email": "n@example.com"}, consent=DENIED)
    decision = planned(event, consent_mode=mode, allow_withdrawal=True)
    assert decision.consent is Consent.DENIED
    assert "tags" not in decision.contact and "tags" not in decision.update
    assert decision.person == "uid:usr_1"
    assert decision.update == {"name": "N", "email": "n@example.com", "unique_external_id": "usr_1"}


def test_without_allow_withdrawal_require_still_drops_a_denied_event():
    event = make_event(user_id="usr_1", context_traits={"name": "N"}, consent=DENIED)
    decision = plan_event(event)
    assert isinstance(decision, Drop) and decision.reason is DropReason.CONSENT_DENIED
    assert plan_event(event, allow_withdrawal=False) == decision


def test_a_withdrawal_needs_only_an_identifier_not_a_name():
    event = make_event(user_id="usr_1", consent=DENIED)
    decision = planned(event, allow_withdrawal=True)
    assert decision.consent is Consent.DENIED
    assert decision.contact == {"unique_external_id": "usr_1"}
    # Without it, the event ends as before.
    assert plan_event(event) == Drop(DropReason.CONSENT_DENIED, "msg-1")
    assert plan_event(event, consent_mode="tag_only") == Drop(DropReason.MISSING_NAME, "msg-1")


def test_a_denied_event_without_an_identifier_still_ends_as_before():
    event = make_event(context_traits={"name": "N", "email": "nope"}, consent=DENIED)
    assert plan_event(event, allow_withdrawal=True) == Drop(DropReason.CONSENT_DENIED, "msg-1")
    assert plan_event(event, consent_mode="tag_only", allow_withdrawal=True) == Drop(DropReason.ANONYMOUS, "msg-1")


def test_the_consent_denied_sample_with_allow_withdrawal():
    decision = planned(sample("consent-denied"), allow_withdrawal=True)
    assert decision.operation is Operation.SIGN_UP
    assert decision.consent is Consent.DENIED
    assert decision.person == "uid:usr_789"


@pytest.mark.parametrize("consent", [GRANTED, None, {"canonical": {"marketing": "false"}}])
def test_allow_withdrawal_changes_nothing_when_consent_is_not_explicitly_false(consent):
    event = make_event(user_id="usr_1", context_traits={"name": "N"}, consent=consent)
    for mode in ("require", "tag_only", "off"):
        assert plan_event(event, consent_mode=mode, allow_withdrawal=True) == plan_event(event, consent_mode=mode)


def test_allow_withdrawal_changes_nothing_in_off_mode():
    for traits in ({"name": "N"}, {}):
        event = make_event(user_id="usr_1", context_traits=traits, consent=DENIED)
        assert plan_event(event, consent_mode="off", allow_withdrawal=True) == plan_event(event, consent_mode="off")
    decision = planned(make_event(user_id="u", context_traits={"name": "N"}, consent=DENIED), consent_mode="off")
    assert decision.consent is None


# --------------------------------------------------------------------------- properties over many events

_text_values = st.one_of(
    st.none(),
    st.just(""),
    st.just("   "),
    st.text(max_size=12),
    st.sampled_from(["Jane", "Roe", "a@b.co", " X@Y.ORG ", "07700 900123", "+1 202 555 0143", "12", "usr_1"]),
    st.builds(
        lambda text, char: text + char,
        st.sampled_from(["Jane", "a@b.co", "07700 900123", "7"]),
        st.sampled_from(UNUSABLE_CHARACTERS),
    ),
    st.integers(min_value=-3, max_value=10**4),
    st.booleans(),
)
_traits = st.dictionaries(st.sampled_from(TRAIT_KEYS), _text_values, max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    context_traits=_traits,
    traits=_traits,
    user_id=_text_values,
    name=st.sampled_from(["Signed Up", "Identified"]),
    method=_text_values,
    mode=st.sampled_from(["require", "tag_only", "off"]),
    consent=st.sampled_from([GRANTED, DENIED, None]),
    withdrawal=st.booleans(),
)
def test_any_plan_has_clean_bodies_and_an_update_that_says_only_what_the_event_says(
    context_traits, traits, user_id, name, method, mode, consent, withdrawal
):
    event = make_event(
        context_traits=context_traits,
        traits=traits,
        user_id=user_id,
        consent=consent,
        name=name,
        properties={"method": method},
    )
    decision = plan_event(event, consent_mode=mode, allow_withdrawal=withdrawal)
    if isinstance(decision, Drop):
        return
    contact, update = decision.contact, decision.update
    kwargs: dict[str, Any] = {"operation": decision.operation, "region": "GB", "consent": decision.consent}
    assert contact == map_contact(event, **kwargs)
    assert update == map_update(event, **kwargs)
    for body in (contact, update):
        if body:
            assert_no_empty_values(body)
        for text in texts_in(body):
            assert not has_unusable_characters(text)
    assert "tags" not in update
    # The update is the create without the tags, and without a name the traits did not give.
    assert {k: v for k, v in contact.items() if k not in ("tags", "name")} == {
        k: v for k, v in update.items() if k != "name"
    }
    if "name" in update:
        assert update["name"] == contact["name"]
    elif "name" in contact:
        assert contact["name"] == contact.get("email")
    assert decision.person and decision.person.split(":", 1)[0] in ("uid", "email", "phone")
    if decision.consent is Consent.DENIED and mode == "require":
        assert withdrawal
    if not withdrawal:
        assert "name" in contact


# --------------------------------------------------------------------------- the slim event (retry and DLQ)


def test_slim_event_keeps_what_the_new_rules_read():
    event = make_event(
        user_id="u" * 300,
        traits={"user_id": "top_uid", "email": None},
        context_traits={"user_id": "ctx_uid", "email": "ctx@example.com"},
        timestamp="2026-02-25T14:30:00Z",
    )
    slim = slim_event(event)
    assert slim["timestamp"] == "2026-02-25T14:30:00Z"
    assert slim["traits"] == {"user_id": "top_uid", "email": None}
    assert slim["context"]["traits"] == {"user_id": "ctx_uid", "email": "ctx@example.com"}
    # The slim event keeps every trait now (a user's mapping may read any), so every key the preset reads.
    assert slim_event({"traits": dict.fromkeys(TRAIT_KEYS, "v")})["traits"] == dict.fromkeys(TRAIT_KEYS, "v")
    assert plan_event(slim) == plan_event(event)


@pytest.mark.parametrize("char", ["\x00", "\u202e", "\n", "\x1f"])
def test_a_long_text_with_a_control_character_stays_unusable_in_the_slim_event(char):
    for name in ("N" * 5000 + char, char + "N" * 5000, "N" * 3000 + char + "N" * 3000, " " * 4100 + char + "N"):
        event = make_event(user_id="usr_1", context_traits={"name": "Ctx Name"}, traits={"name": name, "title": name})
        slim = slim_event(event)
        assert plan_event(slim) == plan_event(event)
        assert planned(slim).contact["name"] == "Ctx Name"
        assert len(json.dumps(slim)) < 20_000


def test_slim_event_maps_like_the_full_one_for_every_sample_with_withdrawal_allowed():
    for name in ("signed-up", "identified", "page-view", "anonymous-track", "consent-denied", "batch"):
        for event in signal_events_of(load_event(name)):
            for mode in ("require", "tag_only", "off"):
                full = plan_event(event, consent_mode=mode, allow_withdrawal=True)
                assert plan_event(slim_event(event), consent_mode=mode, allow_withdrawal=True) == full


_slim_values = st.one_of(
    _text_values,
    st.just({"nested": 1}),
    st.just([1, 2]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(
        lambda n, char, tail: "N" * n + char + tail,
        st.integers(4000, 4200),
        st.sampled_from(["", "\x00", "\u202e", "\t"]),
        st.sampled_from(["", " ", "x"]),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    context_traits=st.dictionaries(st.sampled_from(TRAIT_KEYS), _slim_values, max_size=6),
    traits=st.dictionaries(st.sampled_from(TRAIT_KEYS), _slim_values, max_size=6),
    user_id=_slim_values,
    snake_user_id=_slim_values,
    timestamp=st.one_of(_slim_values, st.just("2026-02-25T14:30:00Z")),
    name=st.sampled_from(["Signed Up", "Identified"]),
    method=_slim_values,
    consent=st.sampled_from([GRANTED, DENIED, None, {"marketing": False}]),
)
def test_slim_event_maps_exactly_like_the_full_event_for_any_traits(
    context_traits, traits, user_id, snake_user_id, timestamp, name, method, consent
):
    event = make_event(
        context_traits=context_traits,
        traits=traits,
        user_id=user_id,
        consent=consent,
        name=name,
        properties={"method": method, "other": "x" * 100},
        timestamp=timestamp,
    )
    event["user_id"] = snake_user_id
    slim = slim_event(event)
    assert read_consent(slim) is read_consent(event)
    for mode in ("require", "tag_only", "off"):
        for withdrawal in (False, True):
            expected = plan_event(event, consent_mode=mode, allow_withdrawal=withdrawal)
            assert plan_event(slim, consent_mode=mode, allow_withdrawal=withdrawal) == expected
