"""The Default preset (docs/behaviour.md: events, mapping, identity, consent)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signal_freshdesk.core.envelope import slim_event
from signal_freshdesk.core.mapping import (
    CONSENT_TAG,
    company_id,
    contact_name,
    external_id,
    map_contact,
    merged_traits,
    normalise_email,
    normalise_event_name,
    normalise_phone,
    plan_event,
    read_consent,
    select_operation,
)
from signal_freshdesk.core.model import Consent, Drop, DropReason, Operation
from signal_freshdesk.core.model import PlannedContact as Delivery
from signal_freshdesk_dev.handlers import load_event, signal_events_of
from tests.samples import GUIDE_SIGNED_UP_BODY

SHA256_OF_EMAIL = "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"
_UNSET = object()


def make_event(
    type_: str = "track",
    event: str | None = "Identified",
    *,
    context_traits: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    user_id: Any = _UNSET,
    properties: dict[str, Any] | None = None,
    consent: Any = _UNSET,
) -> dict[str, Any]:
    """A canonical Signal event; by default identified, named, with marketing consent granted."""
    ev: dict[str, Any] = {"type": type_, "anonymousId": "anon_1", "messageId": "msg-1"}
    if event is not None:
        ev["event"] = event
    if properties is not None:
        ev["properties"] = properties
    if traits is not None:
        ev["traits"] = traits
    if user_id is _UNSET:
        ev["userId"] = "usr_1"
    elif user_id is not None:
        ev["userId"] = user_id
    context: dict[str, Any] = {
        "traits": {"name": "Jane Roe", "email": "jane@example.com"} if context_traits is None else context_traits,
    }
    if consent is _UNSET:
        context["consent"] = {"canonical": {"essential": True, "marketing": True}}
    elif consent is not None:
        context["consent"] = consent
    ev["context"] = context
    return ev


def contact_of(event: dict[str, Any], *, region: str = "GB", consent_mode: str = "require") -> dict[str, Any]:
    decision = plan_event(event, region=region, consent_mode=consent_mode)
    assert isinstance(decision, Delivery), decision
    return decision.contact


def drop_reason(event: dict[str, Any], **kwargs: Any) -> DropReason:
    decision = plan_event(event, **kwargs)
    assert isinstance(decision, Drop), decision
    return decision.reason


def sample(name: str) -> dict[str, Any]:
    (event,) = signal_events_of(load_event(name))
    return event


def assert_no_empty_values(value: Any, path: str = "body") -> None:
    assert value is not None, f"{path} is None"
    assert value != "", f"{path} is an empty string"
    if isinstance(value, dict):
        assert value, f"{path} is an empty object"
        for key, item in value.items():
            assert_no_empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"{path} is an empty list"
        for index, item in enumerate(value):
            assert_no_empty_values(item, f"{path}[{index}]")


# --------------------------------------------------------------------------- event table


def test_identify_event_creates_or_updates_contact():
    assert select_operation({"type": "identify"}) is Operation.IDENTIFY
    decision = plan_event(make_event("identify", event=None))
    assert isinstance(decision, Delivery)
    assert decision.operation is Operation.IDENTIFY


def test_track_identified_is_identify_operation():
    assert select_operation({"type": "track", "event": "Identified"}) is Operation.IDENTIFY
    decision = plan_event(make_event("track", "Identified"))
    assert isinstance(decision, Delivery)
    assert decision.operation is Operation.IDENTIFY


@pytest.mark.parametrize("name", ["Signed Up", "signed_up", "signed-up", "SIGNED UP", " Signed  Up "])
def test_track_signed_up_name_variants_are_sign_up(name):
    assert select_operation({"type": "track", "event": name}) is Operation.SIGN_UP
    decision = plan_event(make_event("track", name))
    assert isinstance(decision, Delivery)
    assert decision.operation is Operation.SIGN_UP


@pytest.mark.parametrize("name", ["Signed Up", "signed_up", "signed-up", "SIGNED UP", " Signed  Up ", "Signed_-Up"])
def test_signed_up_name_variants_normalise_equal(name):
    assert normalise_event_name(name) == normalise_event_name("Signed Up") == "signed_up"


@pytest.mark.parametrize("name", ["identified", "IDENTIFIED", " Identified "])
def test_track_identified_name_variants_are_identify(name):
    assert select_operation({"type": "track", "event": name}) is Operation.IDENTIFY


@pytest.mark.parametrize("kind", ["page", "screen"])
def test_page_and_screen_are_dropped_as_page_view(kind):
    assert select_operation({"type": kind}) is DropReason.PAGE_VIEW
    event = make_event(kind, event=None)
    assert drop_reason(event) is DropReason.PAGE_VIEW


def test_group_event_upserts_a_company_and_a_nameless_one_is_dropped():
    # The Default preset's group row changed: a group event is a company upsert (docs/behaviour.md).
    assert select_operation({"type": "group"}) is Operation.COMPANY
    assert drop_reason(make_event("group", event=None, traits={})) is DropReason.NO_COMPANY_NAME


@pytest.mark.parametrize("name", ["Order Completed", "Sign Up", "Signed Up Again", "Identify", "", None])
def test_other_track_events_are_dropped_as_unsupported_event(name):
    assert select_operation({"type": "track", "event": name}) is DropReason.UNSUPPORTED_EVENT
    assert drop_reason(make_event("track", name)) is DropReason.UNSUPPORTED_EVENT


def test_event_without_type_is_unsupported_event():
    assert select_operation({"event": "Signed Up"}) is DropReason.UNSUPPORTED_EVENT


def test_drop_carries_message_id():
    decision = plan_event(make_event("page", event=None))
    assert isinstance(decision, Drop)
    assert decision.message_id == "msg-1"


# --------------------------------------------------------------------------- the Signed Up example (docs/behaviour.md)


JOHN_DOE_BODY = GUIDE_SIGNED_UP_BODY


def test_john_doe_signed_up_yields_exactly_the_guide_body():
    decision = plan_event(sample("signed-up"))
    assert isinstance(decision, Delivery)
    assert decision.operation is Operation.SIGN_UP
    assert decision.contact == JOHN_DOE_BODY


def test_john_doe_body_keys_are_in_the_guide_order():
    decision = plan_event(sample("signed-up"))
    assert isinstance(decision, Delivery)
    assert list(decision.contact) == [
        "name",
        "email",
        "phone",
        "unique_external_id",
        "job_title",
        "tags",
        "custom_fields",
    ]


# --------------------------------------------------------------------------- sample events


def test_sample_signed_up_is_sign_up_delivery():
    decision = plan_event(sample("signed-up"))
    assert isinstance(decision, Delivery)
    assert decision.operation is Operation.SIGN_UP
    assert decision.message_id == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"


def test_sample_identified_is_identify_delivery():
    decision = plan_event(sample("identified"))
    assert isinstance(decision, Delivery)
    assert decision.operation is Operation.IDENTIFY
    assert decision.contact == {
        "name": "Priya Shah",
        "email": "priya.shah@example.org",
        "phone": "+442079460958",
        "unique_external_id": "usr_456",
        "company_id": 2,
        "tags": ["marketing-consent"],
    }


def test_sample_page_view_is_dropped_page_view():
    assert drop_reason(sample("page-view")) is DropReason.PAGE_VIEW


def test_sample_anonymous_track_is_dropped_anonymous():
    assert drop_reason(sample("anonymous-track")) is DropReason.ANONYMOUS


def test_sample_consent_denied_is_dropped_consent_denied():
    assert drop_reason(sample("consent-denied")) is DropReason.CONSENT_DENIED


def test_sample_batch_yields_a_decision_for_each_event_in_order():
    decisions = [plan_event(event) for event in signal_events_of(load_event("batch"))]
    summary = [
        ("Delivery", d.operation) if isinstance(d, Delivery) else (type(d).__name__, getattr(d, "reason", None))
        for d in decisions
    ]
    assert summary == [
        ("Delivery", Operation.SIGN_UP),
        ("Delivery", Operation.IDENTIFY),
        ("Drop", DropReason.PAGE_VIEW),
        ("Drop", DropReason.ANONYMOUS),
        ("Drop", DropReason.CONSENT_DENIED),
        ("PlannedCompany", None),  # group events upsert companies since the companies change
    ]
    mei = decisions[0].contact
    assert mei["email"] == "mei.chen@example.com"
    assert mei["phone"] == "+447911123456"
    assert mei["custom_fields"] == {"signup_method": "apple"}
    # The batch's identify carries only the legacy flat consent shape.
    assert decisions[1].contact["tags"] == [CONSENT_TAG]


def test_sample_messages_ids_travel_with_decisions():
    events = signal_events_of(load_event("batch"))
    assert [plan_event(e).message_id for e in events] == [e["messageId"] for e in events]


# --------------------------------------------------------------------------- mapping: name


def test_name_from_traits_name_is_trimmed():
    assert (
        contact_of(make_event(context_traits={"name": "  Jane Roe  ", "email": "j@example.com"}))["name"] == "Jane Roe"
    )


def test_name_truncated_to_255_characters():
    name = contact_of(make_event(context_traits={"name": "x" * 300, "email": "j@example.com"}))["name"]
    assert name == "x" * 255


def test_name_of_exactly_255_characters_is_kept_whole():
    assert contact_name({"name": "y" * 255}, None) == "y" * 255


def test_traits_name_wins_over_first_and_last_name():
    traits = {"name": "Full Name", "firstName": "First", "lastName": "Last"}
    assert contact_name(traits, "e@example.com") == "Full Name"


@pytest.mark.parametrize(
    "traits",
    [
        {"firstName": "Jane", "lastName": "Roe"},
        {"first_name": "Jane", "last_name": "Roe"},
        {"firstName": "Jane", "last_name": "Roe"},
        {"first_name": "Jane", "lastName": "Roe"},
        {"firstName": " Jane ", "lastName": " Roe "},
    ],
)
def test_name_from_first_and_last_joined_by_a_space(traits):
    assert contact_name(traits, "e@example.com") == "Jane Roe"
    event = make_event(context_traits={**traits, "email": "e@example.com"})
    assert contact_of(event)["name"] == "Jane Roe"


def test_camel_case_first_name_wins_over_snake_case():
    assert contact_name({"firstName": "Jane", "first_name": "Other", "lastName": "Roe"}, None) == "Jane Roe"


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        ({"firstName": "Jane"}, "Jane"),
        ({"first_name": "Jane"}, "Jane"),
        ({"lastName": "Roe"}, "Roe"),
        ({"last_name": "Roe"}, "Roe"),
        ({"firstName": "Jane", "lastName": ""}, "Jane"),
        ({"firstName": None, "lastName": "Roe"}, "Roe"),
    ],
)
def test_name_from_only_one_part_has_no_stray_space(traits, expected):
    assert contact_name(traits, "e@example.com") == expected


def test_name_falls_back_to_the_normalised_email():
    event = make_event(context_traits={"email": "  Jane.Roe@Example.COM "})
    contact = contact_of(event)
    assert contact["name"] == "jane.roe@example.com"
    assert contact["email"] == "jane.roe@example.com"


@pytest.mark.parametrize("name", ["", "   ", None, 42])
def test_unusable_name_falls_back_to_email(name):
    assert contact_name({"name": name}, "e@example.com") == "e@example.com"


def test_no_name_and_no_email_gives_no_name():
    assert contact_name({}, None) is None


# --------------------------------------------------------------------------- mapping: email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John.Doe@example.com", "john.doe@example.com"),
        ("  John.Doe@Example.COM  ", "john.doe@example.com"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw, expected):
    assert normalise_email(raw) == expected
    event = make_event(context_traits={"name": "N", "email": raw})
    assert contact_of(event)["email"] == expected


@pytest.mark.parametrize(
    "raw",
    [
        "john.example.com",  # no @
        "john@@example.com",  # two @
        "jo@hn@example.com",  # two @
        "john@localhost",  # undotted domain
        "john@example.",  # empty last label
        "john doe@example.com",  # space
        "john@exa mple.com",  # space
        "@example.com",  # empty local part
        SHA256_OF_EMAIL,  # a hashed email
        SHA256_OF_EMAIL.upper(),
        "",
        "   ",
        None,
        42,
    ],
)
def test_email_omitted_when_not_an_address(raw):
    assert normalise_email(raw) is None
    contact = contact_of(make_event(context_traits={"name": "N", "email": raw}))
    assert "email" not in contact


def test_email_longer_than_255_is_omitted():
    domain = "@example.com"
    exactly = "a" * (255 - len(domain)) + domain
    assert len(exactly) == 255
    assert normalise_email(exactly) == exactly
    too_long = "a" + exactly
    assert normalise_email(too_long) is None
    assert "email" not in contact_of(make_event(context_traits={"name": "N", "email": too_long}))


# --------------------------------------------------------------------------- mapping: phone


def test_uk_national_phone_becomes_e164_with_region_gb():
    assert normalise_phone("07700 900123", "GB") == "+447700900123"
    assert contact_of(make_event(context_traits={"name": "N", "phone": "07700 900123"}))["phone"] == "+447700900123"


def test_international_phone_becomes_e164():
    assert normalise_phone("+44 20 7946 0958", "GB") == "+442079460958"


def test_phone_region_comes_from_the_parameter():
    assert normalise_phone("(202) 555-0143", "US") == "+12025550143"
    event = make_event(context_traits={"name": "N", "phone": "(202) 555-0143"})
    assert contact_of(event, region="US")["phone"] == "+12025550143"
    # The same national number read as British is not a US number.
    assert contact_of(event, region="GB").get("phone") != "+12025550143"


def test_default_region_is_gb():
    event = make_event(context_traits={"name": "N", "phone": "07700 900123"})
    decision = plan_event(event)
    assert isinstance(decision, Delivery)
    assert decision.contact["phone"] == "+447700900123"


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("123", "GB"),  # too short
        ("12", "US"),  # too short
        ("555 0143", "US"),  # local-only length
        ("7946 0958", "GB"),  # local-only length
        ("not a phone", "GB"),  # garbage
        ("+", "GB"),
        ("", "GB"),
        ("   ", "GB"),
        (None, "GB"),
    ],
)
def test_phone_omitted_when_not_possible(raw, region):
    assert normalise_phone(raw, region) is None
    contact = contact_of(
        make_event(context_traits={"name": "N", "email": "n@example.com", "phone": raw}), region=region
    )
    assert "phone" not in contact


# --------------------------------------------------------------------------- mapping: external id


def test_user_id_becomes_unique_external_id():
    assert contact_of(make_event(user_id="usr_42"))["unique_external_id"] == "usr_42"


def test_snake_case_user_id_used_when_user_id_absent():
    event = make_event(user_id=None)
    event["user_id"] = "usr_snake"
    assert contact_of(event)["unique_external_id"] == "usr_snake"


def test_camel_case_user_id_wins_over_snake_case():
    event = make_event(user_id="usr_camel")
    event["user_id"] = "usr_snake"
    assert external_id(event) == "usr_camel"


def test_empty_user_id_falls_back_to_snake_case_user_id():
    event = make_event(user_id="")
    event["user_id"] = "usr_snake"
    assert external_id(event) == "usr_snake"


def test_integer_user_id_becomes_a_string():
    assert external_id({"userId": 12345}) == "12345"
    assert contact_of(make_event(user_id=12345))["unique_external_id"] == "12345"
    assert external_id({"user_id": 7}) == "7"


def test_user_id_is_trimmed():
    assert external_id({"userId": "  usr_1  "}) == "usr_1"


def test_user_id_of_255_characters_is_kept():
    assert external_id({"userId": "u" * 255}) == "u" * 255


def test_user_id_over_255_characters_is_omitted():
    assert external_id({"userId": "u" * 256}) is None
    assert "unique_external_id" not in contact_of(make_event(user_id="u" * 256))


@pytest.mark.parametrize("value", [True, False, 1.5, ["usr"], {"id": 1}, ""])
def test_non_text_user_id_is_omitted(value):
    assert external_id({"userId": value}) is None


# --------------------------------------------------------------------------- mapping: job title


def test_title_becomes_job_title_trimmed():
    contact = contact_of(make_event(context_traits={"name": "N", "email": "n@example.com", "title": "  CTO "}))
    assert contact["job_title"] == "CTO"


def test_job_title_truncated_to_255():
    contact = contact_of(make_event(context_traits={"name": "N", "email": "n@example.com", "title": "t" * 400}))
    assert contact["job_title"] == "t" * 255


def test_missing_title_omits_job_title():
    assert "job_title" not in contact_of(make_event())


# --------------------------------------------------------------------------- mapping: company id


@pytest.mark.parametrize(("raw", "expected"), [(7, 7), ("7", 7), ("  12 ", 12), ("007", 7), (10**12, 10**12)])
def test_company_id_positive_int_or_digit_string_becomes_int(raw, expected):
    assert company_id(raw) == expected
    contact = contact_of(make_event(context_traits={"name": "N", "email": "n@example.com", "company_id": raw}))
    assert contact["company_id"] == expected
    assert type(contact["company_id"]) is int


@pytest.mark.parametrize("raw", [0, "0", -3, "-3", "12a", "1.5", 1.0, 2.5, True, False, "", " ", None, "١٢", [1]])
def test_company_id_otherwise_omitted(raw):
    assert company_id(raw) is None
    contact = contact_of(make_event(context_traits={"name": "N", "email": "n@example.com", "company_id": raw}))
    assert "company_id" not in contact


# --------------------------------------------------------------------------- mapping: tags and custom fields


def test_granted_consent_adds_marketing_consent_tag():
    assert contact_of(make_event())["tags"] == ["marketing-consent"]
    assert CONSENT_TAG == "marketing-consent"


def test_signup_method_from_properties_on_signed_up():
    contact = contact_of(make_event("track", "Signed Up", properties={"method": "google"}))
    assert contact["custom_fields"] == {"signup_method": "google"}


def test_signup_method_is_trimmed():
    contact = contact_of(make_event("track", "Signed Up", properties={"method": "  google "}))
    assert contact["custom_fields"] == {"signup_method": "google"}


@pytest.mark.parametrize("properties", [None, {}, {"method": ""}, {"method": "   "}, {"method": None}])
def test_signup_method_omitted_when_absent_or_empty(properties):
    contact = contact_of(make_event("track", "Signed Up", properties=properties))
    assert "custom_fields" not in contact


@pytest.mark.parametrize(("type_", "name"), [("track", "Identified"), ("identify", None)])
def test_signup_method_not_set_on_identify(type_, name):
    contact = contact_of(make_event(type_, name, properties={"method": "email"}))
    assert "custom_fields" not in contact


def test_map_contact_sets_custom_fields_only_for_sign_up_operation():
    event = make_event("track", "Signed Up", properties={"method": "email"})
    assert "custom_fields" not in map_contact(event, operation=Operation.IDENTIFY, region="GB", consent=Consent.GRANTED)
    assert map_contact(event, operation=Operation.SIGN_UP, region="GB", consent=Consent.GRANTED)["custom_fields"] == {
        "signup_method": "email"
    }


# --------------------------------------------------------------------------- mapping: trait sources


def test_traits_read_from_context_traits():
    contact = contact_of(make_event(context_traits={"name": "Ctx", "email": "ctx@example.com"}))
    assert (contact["name"], contact["email"]) == ("Ctx", "ctx@example.com")


def test_traits_read_from_top_level_traits():
    contact = contact_of(
        make_event("identify", None, context_traits={}, traits={"name": "Top", "email": "top@example.com"})
    )
    assert (contact["name"], contact["email"]) == ("Top", "top@example.com")


def test_top_level_traits_win_key_by_key():
    event = make_event(
        context_traits={"name": "Ctx Name", "email": "ctx@example.com", "title": "Ctx Title"},
        traits={"name": "Top Name", "phone": "07700 900123"},
    )
    assert merged_traits(event) == {
        "name": "Top Name",
        "email": "ctx@example.com",
        "title": "Ctx Title",
        "phone": "07700 900123",
    }
    contact = contact_of(event)
    assert contact["name"] == "Top Name"  # top level wins for the key it has
    assert contact["email"] == "ctx@example.com"  # context kept for keys top level lacks
    assert contact["job_title"] == "Ctx Title"
    assert contact["phone"] == "+447700900123"


def test_non_mapping_traits_are_ignored():
    event = make_event(context_traits={"name": "N", "email": "n@example.com"})
    event["traits"] = ["not", "a", "dict"]
    assert contact_of(event)["email"] == "n@example.com"


# --------------------------------------------------------------------------- no nulls, no empty strings


def test_empty_strings_and_nulls_are_never_sent():
    event = make_event(
        "track",
        "Signed Up",
        context_traits={
            "name": "Jane",
            "email": "jane@example.com",
            "phone": "",
            "title": None,
            "company_id": "",
            "firstName": None,
            "lastName": "",
        },
        traits={"phone": None, "title": ""},
        properties={"method": ""},
    )
    event["userId"] = ""
    event["user_id"] = None
    contact = contact_of(event)
    assert contact == {"name": "Jane", "email": "jane@example.com", "tags": ["marketing-consent"]}
    assert_no_empty_values(contact)


_trait_values = st.one_of(
    st.none(),
    st.just(""),
    st.just("   "),
    st.text(max_size=20),
    st.text(min_size=250, max_size=300),
    st.integers(min_value=-5, max_value=10**6),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["07700 900123", "+1 202 555 0143", "a@b.co", " X@Y.ORG ", SHA256_OF_EMAIL, "12"]),
)
_trait_keys = st.sampled_from(
    ["name", "firstName", "first_name", "lastName", "last_name", "email", "phone", "title", "company_id"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    context_traits=st.dictionaries(_trait_keys, _trait_values),
    traits=st.dictionaries(_trait_keys, _trait_values),
    user_id=_trait_values,
    method=_trait_values,
    name=st.sampled_from(["Signed Up", "Identified"]),
    mode=st.sampled_from(["require", "tag_only", "off"]),
)
def test_any_delivered_body_has_no_empty_values_and_bounded_text(context_traits, traits, user_id, method, name, mode):
    event = make_event(
        "track", name, context_traits=context_traits, traits=traits, user_id=user_id, properties={"method": method}
    )
    decision = plan_event(event, consent_mode=mode)
    if isinstance(decision, Drop):
        assert decision.reason in (DropReason.ANONYMOUS, DropReason.MISSING_NAME)
        return
    contact = decision.contact
    assert_no_empty_values(contact)
    assert set(contact) <= {
        "name",
        "email",
        "phone",
        "unique_external_id",
        "job_title",
        "company_id",
        "tags",
        "custom_fields",
    }
    assert isinstance(contact["name"], str) and 0 < len(contact["name"]) <= 255
    assert contact["name"] == contact["name"].strip()
    for key in ("email", "unique_external_id", "job_title"):
        if key in contact:
            assert isinstance(contact[key], str) and len(contact[key]) <= 255
    if "phone" in contact:
        assert contact["phone"].startswith("+") and contact["phone"][1:].isdigit()
    if "company_id" in contact:
        assert type(contact["company_id"]) is int and contact["company_id"] > 0
    assert any(key in contact for key in ("email", "phone", "unique_external_id"))


# --------------------------------------------------------------------------- identity


def test_no_external_id_no_email_no_phone_is_dropped_anonymous():
    event = make_event(user_id=None, context_traits={"name": "Only A Name", "title": "CEO"})
    assert drop_reason(event) is DropReason.ANONYMOUS


def test_unusable_identifiers_count_as_none_anonymous():
    event = make_event(user_id="", context_traits={"name": "N", "email": "not-an-email", "phone": "123"})
    assert drop_reason(event) is DropReason.ANONYMOUS


def test_hashed_email_only_is_dropped_anonymous():
    event = make_event(user_id=None, context_traits={"name": "N", "email": SHA256_OF_EMAIL})
    assert drop_reason(event) is DropReason.ANONYMOUS


def test_hashed_email_without_name_is_anonymous_not_missing_name():
    event = make_event(user_id=None, context_traits={"email": SHA256_OF_EMAIL})
    assert drop_reason(event) is DropReason.ANONYMOUS


def test_hashed_email_is_not_sent_when_another_identifier_exists():
    contact = contact_of(make_event(user_id="usr_9", context_traits={"name": "N", "email": SHA256_OF_EMAIL}))
    assert "email" not in contact
    assert contact["unique_external_id"] == "usr_9"


def test_phone_only_without_name_is_dropped_missing_name():
    event = make_event(user_id=None, context_traits={"phone": "07700 900123"})
    assert drop_reason(event) is DropReason.MISSING_NAME


def test_external_id_only_without_name_is_dropped_missing_name():
    event = make_event(user_id="usr_1", context_traits={})
    assert drop_reason(event) is DropReason.MISSING_NAME


def test_email_only_is_delivered_named_by_email():
    contact = contact_of(make_event(user_id=None, context_traits={"email": "solo@example.com"}))
    assert contact["name"] == "solo@example.com"


@pytest.mark.parametrize(
    ("user_id", "traits", "identifier"),
    [
        ("usr_1", {"name": "N"}, "unique_external_id"),
        (None, {"name": "N", "email": "n@example.com"}, "email"),
        (None, {"name": "N", "phone": "07700 900123"}, "phone"),
    ],
)
def test_any_one_identifier_is_enough(user_id, traits, identifier):
    contact = contact_of(make_event(user_id=user_id, context_traits=traits))
    assert identifier in contact


# --------------------------------------------------------------------------- consent


def test_canonical_true_delivers_with_tag():
    assert read_consent(make_event()) is Consent.GRANTED
    contact = contact_of(make_event(consent={"canonical": {"marketing": True}}))
    assert contact["tags"] == ["marketing-consent"]


def test_canonical_false_is_dropped_consent_denied():
    event = make_event(consent={"canonical": {"marketing": False}})
    assert read_consent(event) is Consent.DENIED
    assert drop_reason(event) is DropReason.CONSENT_DENIED


def test_canonical_without_marketing_is_consent_missing_even_if_legacy_says_true():
    event = make_event(consent={"marketing": True, "canonical": {"essential": True, "analytics": True}})
    assert read_consent(event) is Consent.MISSING
    assert drop_reason(event) is DropReason.CONSENT_MISSING


def test_canonical_false_wins_over_legacy_true():
    event = make_event(consent={"marketing": True, "canonical": {"marketing": False}})
    assert drop_reason(event) is DropReason.CONSENT_DENIED


def test_canonical_true_wins_over_legacy_false():
    event = make_event(consent={"marketing": False, "canonical": {"marketing": True}})
    assert read_consent(event) is Consent.GRANTED


def test_categories_are_not_read_as_consent():
    event = make_event(consent={"categories": {"marketing": True}, "canonical": {"essential": True}})
    assert read_consent(event) is Consent.MISSING


def test_no_canonical_reads_legacy_flat_true():
    event = make_event(consent={"marketing": True, "analytics": True})
    assert read_consent(event) is Consent.GRANTED
    assert contact_of(event)["tags"] == ["marketing-consent"]


def test_no_canonical_reads_legacy_flat_false():
    event = make_event(consent={"marketing": False, "analytics": True})
    assert read_consent(event) is Consent.DENIED
    assert drop_reason(event) is DropReason.CONSENT_DENIED


@pytest.mark.parametrize("consent", [None, {}, {"analytics": True}, {"categories": {"necessary": True}}])
def test_no_consent_value_is_dropped_consent_missing(consent):
    event = make_event(consent=consent)
    assert read_consent(event) is Consent.MISSING
    assert drop_reason(event) is DropReason.CONSENT_MISSING


@pytest.mark.parametrize("value", ["true", "True", 1, "yes", None, {"granted": True}])
def test_non_boolean_true_consent_is_not_granted(value):
    for consent in ({"canonical": {"marketing": value}}, {"marketing": value}):
        event = make_event(consent=consent)
        assert read_consent(event) is not Consent.GRANTED
        assert drop_reason(event) is DropReason.CONSENT_MISSING


def test_string_false_is_not_denied_but_missing():
    assert read_consent(make_event(consent={"canonical": {"marketing": "false"}})) is Consent.MISSING


def test_require_is_the_default_mode():
    event = make_event(consent={"canonical": {"marketing": False}})
    assert drop_reason(event) is DropReason.CONSENT_DENIED
    assert drop_reason(event, consent_mode="require") is DropReason.CONSENT_DENIED


def test_tag_only_delivers_denied_without_tag():
    contact = contact_of(make_event(consent={"canonical": {"marketing": False}}), consent_mode="tag_only")
    assert "tags" not in contact


def test_tag_only_delivers_missing_without_tag():
    contact = contact_of(make_event(consent=None), consent_mode="tag_only")
    assert "tags" not in contact


def test_tag_only_tags_granted():
    contact = contact_of(make_event(consent={"canonical": {"marketing": True}}), consent_mode="tag_only")
    assert contact["tags"] == ["marketing-consent"]


@pytest.mark.parametrize(
    "consent", [{"canonical": {"marketing": True}}, {"canonical": {"marketing": False}}, None, {"marketing": True}]
)
def test_off_delivers_everyone_and_never_tags(consent):
    contact = contact_of(make_event(consent=consent), consent_mode="off")
    assert "tags" not in contact


def test_consent_checked_before_identity():
    # An anonymous event without consent is dropped for consent in require mode.
    event = make_event(user_id=None, context_traits={}, consent={"canonical": {"marketing": False}})
    assert drop_reason(event) is DropReason.CONSENT_DENIED


def test_identity_still_enforced_when_consent_is_off():
    event = make_event(user_id=None, context_traits={"name": "N"}, consent=None)
    assert drop_reason(event, consent_mode="off") is DropReason.ANONYMOUS


# --- what the retry queue and the DLQ keep of an event


def test_slim_event_maps_exactly_like_the_full_event_for_every_sample():
    for name in ("signed-up", "identified", "page-view", "anonymous-track", "consent-denied", "batch"):
        for event in signal_events_of(load_event(name)):
            for mode in ("require", "tag_only", "off"):
                assert plan_event(slim_event(event), consent_mode=mode) == plan_event(event, consent_mode=mode)


def test_slim_event_drops_what_the_preset_does_not_read():
    event = signal_events_of(load_event("signed-up"))[0]
    slim = slim_event(event)
    assert "ip" not in json.dumps(slim) and "userAgent" not in json.dumps(slim)
    assert set(slim) <= {
        "type",
        "event",
        "messageId",
        "userId",
        "user_id",
        "timestamp",
        "traits",
        "properties",
        "context",
    }


def test_slim_event_bounds_huge_values_without_changing_the_mapping():
    event = {
        "type": "identify",
        "userId": "u" * 5000,
        "messageId": "m",
        "traits": {"name": "N" * 2_000_000, "email": "a" * 900_000 + "@example.com", "note": "x" * 10**6},
        "context": {"consent": {"canonical": {"marketing": True, "analytics": "y" * 10**6}}},
    }
    slim = slim_event(event)
    assert len(json.dumps(slim)) < 20_000
    assert plan_event(slim) == plan_event(event)


@pytest.mark.parametrize("value", [2**63, 10**30])
def test_company_id_beyond_64_bits_is_omitted(value):
    assert company_id(value) is None
    assert company_id(2**63 - 1) == 2**63 - 1
