"""What each Freshdesk answer means (docs/behaviour.md: outcomes), and the retry arithmetic."""

from __future__ import annotations

import itertools
import random

import pytest

from signal_freshdesk.core.backoff import backoff_delay, retry_after_seconds
from signal_freshdesk.core.model import Answer, Operation, Outcome
from signal_freshdesk.core.outcomes import (
    Action,
    Verdict,
    existing_contact_ids,
    judge_create,
    judge_phone_lookup,
    judge_read,
    judge_update,
    merge_tags,
    optional_invalid_fields,
    without_fields,
)
from signal_freshdesk.core.timing import MAX_SQS_DELAY_SECONDS as MAX_SQS_DELAY
from tests.samples import GUIDE_SIGNED_UP_BODY

CONTACT = dict(GUIDE_SIGNED_UP_BODY)
CONTACT_NO_OPTIONALS = {"name": "John Doe", "email": "john.doe@example.com"}
BOTH_OPERATIONS = [Operation.SIGN_UP, Operation.IDENTIFY]
# The outcomes that end an event as a success: done, never retried, never parked.
FINAL_SUCCESS = {Outcome.DELIVERED, Outcome.UPDATED, Outcome.CONFLICT}


def conflict_body(*user_ids: object) -> dict:
    return {
        "description": "Validation failed",
        "errors": [
            {
                "field": "email",
                "additional_info": {"user_id": uid},
                "message": "It should be a unique value",
                "code": "duplicate_value",
            }
            for uid in user_ids
        ],
    }


def invalid_fields_body(*pairs: tuple[str, str]) -> dict:
    return {
        "description": "Validation failed",
        "errors": [
            {"field": field, "message": "Unexpected/invalid field in request", "code": code} for field, code in pairs
        ],
    }


# --------------------------------------------------------------------------- 201


@pytest.mark.parametrize("operation", BOTH_OPERATIONS)
def test_201_is_delivered_and_done(operation):
    verdict = judge_create(operation, Answer(201, {"id": 42, "name": "John Doe"}), CONTACT)
    assert verdict.action is Action.DONE
    assert verdict.outcome is Outcome.DELIVERED
    assert verdict.contact_id == 42


def test_201_without_an_id_is_still_delivered():
    verdict = judge_create(Operation.IDENTIFY, Answer(201, None), CONTACT)
    assert (verdict.action, verdict.outcome, verdict.contact_id) == (Action.DONE, Outcome.DELIVERED, None)


# --------------------------------------------------------------------------- 409


def test_signed_up_409_is_final_conflict():
    verdict = judge_create(Operation.SIGN_UP, Answer(409, conflict_body(42)), CONTACT)
    assert verdict.action is Action.DONE
    assert verdict.outcome is Outcome.CONFLICT
    assert verdict.outcome in FINAL_SUCCESS


def test_signed_up_409_naming_no_id_is_still_final_conflict():
    verdict = judge_create(Operation.SIGN_UP, Answer(409, None), CONTACT)
    assert (verdict.action, verdict.outcome) == (Action.DONE, Outcome.CONFLICT)


def test_identified_409_with_one_user_id_updates_that_contact():
    verdict = judge_create(Operation.IDENTIFY, Answer(409, conflict_body(42)), CONTACT)
    assert verdict.action is Action.UPDATE
    assert verdict.contact_id == 42


def test_identified_409_naming_the_same_id_twice_updates_it():
    verdict = judge_create(Operation.IDENTIFY, Answer(409, conflict_body(42, 42)), CONTACT)
    assert (verdict.action, verdict.contact_id) == (Action.UPDATE, 42)


def test_identified_409_naming_two_different_ids_is_conflict_with_warning():
    verdict = judge_create(Operation.IDENTIFY, Answer(409, conflict_body(42, 77)), CONTACT)
    assert verdict.action is Action.DONE
    assert verdict.outcome is Outcome.CONFLICT
    assert verdict.contact_id is None
    assert verdict.warning


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"errors": []},
        {"errors": [{"field": "email", "code": "duplicate_value"}]},
        conflict_body("42"),
        conflict_body(True),
        "conflict",
    ],
)
def test_identified_409_with_no_id_is_conflict_with_warning(body):
    verdict = judge_create(Operation.IDENTIFY, Answer(409, body), CONTACT)
    assert verdict.action is Action.DONE
    assert verdict.outcome is Outcome.CONFLICT
    assert verdict.warning


def test_existing_contact_ids_distinct_in_order():
    assert existing_contact_ids(conflict_body(7, 3, 7)) == [7, 3]
    assert existing_contact_ids(None) == []
    assert existing_contact_ids({"errors": "nope"}) == []


# --------------------------------------------------------------------------- retryable


@pytest.mark.parametrize("operation", BOTH_OPERATIONS)
def test_429_is_retry_queued(operation):
    verdict = judge_create(operation, Answer(429, headers={"Retry-After": "30"}), CONTACT)
    assert (verdict.action, verdict.outcome) == (Action.RETRY, Outcome.QUEUED)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("operation", BOTH_OPERATIONS)
def test_5xx_is_retry_queued(operation, status):
    verdict = judge_create(operation, Answer(status, {"message": "oops"}), CONTACT)
    assert (verdict.action, verdict.outcome) == (Action.RETRY, Outcome.QUEUED)


@pytest.mark.parametrize("operation", BOTH_OPERATIONS)
def test_no_answer_is_retry_queued(operation):
    verdict = judge_create(operation, Answer(None, error="read timeout"), CONTACT)
    assert (verdict.action, verdict.outcome) == (Action.RETRY, Outcome.QUEUED)


# --------------------------------------------------------------------------- 401


@pytest.mark.parametrize("operation", BOTH_OPERATIONS)
def test_401_reauthenticates(operation):
    verdict = judge_create(operation, Answer(401, {"code": "invalid_credentials"}), CONTACT)
    assert verdict.action is Action.REAUTH
    assert verdict.outcome is Outcome.REJECTED


# --------------------------------------------------------------------------- final rejections


@pytest.mark.parametrize("status", [400, 403, 404, 405])
@pytest.mark.parametrize("operation", BOTH_OPERATIONS)
def test_400_403_404_405_are_rejected(operation, status):
    body = {"description": "Validation failed", "errors": [{"field": "name", "code": "missing_field"}]}
    verdict = judge_create(operation, Answer(status, body), CONTACT)
    assert verdict.action is Action.REJECT
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.outcome not in FINAL_SUCCESS


# --------------------------------------------------------------------------- 400 invalid_field on optional fields


@pytest.mark.parametrize("operation", BOTH_OPERATIONS)
def test_400_invalid_custom_field_we_sent_is_resent_without_it(operation):
    verdict = judge_create(operation, Answer(400, invalid_fields_body(("signup_method", "invalid_field"))), CONTACT)
    assert verdict.action is Action.RESEND_WITHOUT
    assert verdict.fields == ("signup_method",)


def test_400_invalid_custom_field_named_with_cf_prefix_is_resent_without_it():
    verdict = judge_create(
        Operation.SIGN_UP, Answer(400, invalid_fields_body(("cf_signup_method", "invalid_field"))), CONTACT
    )
    assert verdict.action is Action.RESEND_WITHOUT
    assert verdict.fields == ("signup_method",)


def test_400_invalid_unique_external_id_we_sent_is_resent_without_it():
    verdict = judge_create(
        Operation.IDENTIFY, Answer(400, invalid_fields_body(("unique_external_id", "invalid_field"))), CONTACT
    )
    assert verdict.action is Action.RESEND_WITHOUT
    assert verdict.fields == ("unique_external_id",)


def test_400_invalid_custom_field_and_external_id_both_dropped():
    body = invalid_fields_body(("cf_signup_method", "invalid_field"), ("unique_external_id", "invalid_field"))
    verdict = judge_create(Operation.SIGN_UP, Answer(400, body), CONTACT)
    assert verdict.action is Action.RESEND_WITHOUT
    assert set(verdict.fields) == {"signup_method", "unique_external_id"}


def test_400_naming_only_fields_the_contact_can_do_without_is_resent_whatever_the_code():
    body = invalid_fields_body(("signup_method", "invalid_field"), ("email", "invalid_value"))
    verdict = judge_create(Operation.SIGN_UP, Answer(400, body), CONTACT)
    assert verdict.action is Action.RESEND_WITHOUT
    assert set(verdict.fields) == {"signup_method", "email"}  # the phone and the user id remain


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("email", "invalid_value"),
        ("phone", "invalid_value"),
        ("job_title", "invalid_value"),
        ("company_id", "absent_in_db"),
        ("cf_signup_method", "datatype_mismatch"),
    ],
)
def test_400_naming_one_dispensable_field_is_resent_without_it(field, code):
    contact = {**CONTACT, "company_id": 99}
    verdict = judge_create(Operation.SIGN_UP, Answer(400, invalid_fields_body((field, code))), contact)
    assert verdict.action is Action.RESEND_WITHOUT
    assert verdict.fields == (field.removeprefix("cf_"),)


def test_400_naming_the_only_identifier_is_rejected():
    body = invalid_fields_body(("email", "invalid_value"))
    verdict = judge_create(Operation.IDENTIFY, Answer(400, body), CONTACT_NO_OPTIONALS)
    assert verdict.action is Action.REJECT


def test_400_invalid_field_naming_a_custom_field_we_did_not_send_is_rejected():
    body = invalid_fields_body(("favourite_colour", "invalid_field"))
    verdict = judge_create(Operation.SIGN_UP, Answer(400, body), CONTACT)
    assert verdict.action is Action.REJECT


def test_400_invalid_field_naming_an_optional_field_and_a_required_one_is_rejected():
    body = invalid_fields_body(("signup_method", "invalid_field"), ("name", "invalid_field"))
    verdict = judge_create(Operation.SIGN_UP, Answer(400, body), CONTACT)
    assert verdict.action is Action.REJECT
    assert optional_invalid_fields(body, CONTACT) == ()


def test_400_invalid_field_naming_an_optional_field_and_one_we_did_not_send_is_rejected():
    body = invalid_fields_body(("cf_signup_method", "invalid_field"), ("cf_plan", "invalid_field"))
    verdict = judge_create(Operation.SIGN_UP, Answer(400, body), CONTACT)
    assert verdict.action is Action.REJECT


def test_400_invalid_custom_field_when_we_sent_no_custom_fields_is_rejected():
    body = invalid_fields_body(("signup_method", "invalid_field"))
    verdict = judge_create(Operation.IDENTIFY, Answer(400, body), CONTACT_NO_OPTIONALS)
    assert verdict.action is Action.REJECT


def test_400_invalid_external_id_we_did_not_send_is_rejected():
    body = invalid_fields_body(("unique_external_id", "invalid_field"))
    verdict = judge_create(Operation.IDENTIFY, Answer(400, body), CONTACT_NO_OPTIONALS)
    assert verdict.action is Action.REJECT


@pytest.mark.parametrize("field", ["name", "cf_email", "mobile", "tags"])
def test_400_invalid_field_naming_a_required_or_non_optional_field_is_rejected(field):
    verdict = judge_create(Operation.SIGN_UP, Answer(400, invalid_fields_body((field, "invalid_field"))), CONTACT)
    assert verdict.action is Action.REJECT


@pytest.mark.parametrize("body", [None, {}, {"errors": []}, "Bad Request", {"errors": [{"code": "invalid_field"}]}])
def test_400_without_usable_errors_is_rejected(body):
    verdict = judge_create(Operation.SIGN_UP, Answer(400, body), CONTACT)
    assert verdict.action is Action.REJECT


@pytest.mark.parametrize("status", [403, 404])
def test_invalid_field_body_on_other_statuses_is_rejected(status):
    verdict = judge_create(
        Operation.SIGN_UP, Answer(status, invalid_fields_body(("signup_method", "invalid_field"))), CONTACT
    )
    assert verdict.action is Action.REJECT


def test_optional_invalid_fields_deduplicates():
    body = invalid_fields_body(("signup_method", "invalid_field"), ("cf_signup_method", "invalid_field"))
    assert optional_invalid_fields(body, CONTACT) == ("signup_method",)


# --------------------------------------------------------------------------- update and read


def test_update_200_is_updated():
    verdict = judge_update(Answer(200, {"id": 42}), CONTACT)
    assert verdict.action is Action.DONE
    assert verdict.outcome is Outcome.UPDATED
    assert verdict.contact_id == 42
    assert verdict.outcome in FINAL_SUCCESS


def test_update_409_is_conflict():
    verdict = judge_update(Answer(409, conflict_body(77)), CONTACT)
    assert verdict.action is Action.DONE
    assert verdict.outcome is Outcome.CONFLICT
    assert verdict.warning


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (429, Action.RETRY),
        (500, Action.RETRY),
        (503, Action.RETRY),
        (None, Action.RETRY),
        (401, Action.REAUTH),
        (400, Action.REJECT),
        (403, Action.REJECT),
        (404, Action.CREATE),  # the id no longer exists: the caller forgets it and creates afresh
        (405, Action.DONE),  # a contact a person deleted (Allow: GET)
    ],
)
def test_update_other_answers_follow_the_table(status, action):
    assert judge_update(Answer(status), CONTACT).action is action


def test_update_405_is_a_contact_deleted_in_freshdesk():
    assert judge_update(Answer(405), CONTACT).outcome is Outcome.DELETED_IN_FRESHDESK


def test_read_of_a_soft_deleted_contact_is_deleted_in_freshdesk():
    assert judge_read(Answer(200, {"id": 5, "deleted": True})).outcome is Outcome.DELETED_IN_FRESHDESK


def test_tags_merge_ignoring_case_and_never_add_a_second_spelling():
    assert merge_tags(["VIP", "Marketing-Consent"], ["marketing-consent"]) == ["VIP", "Marketing-Consent"]
    assert merge_tags(["vip"], ["marketing-consent"]) == ["vip", "marketing-consent"]


def test_update_400_invalid_custom_field_is_resent_without_it():
    verdict = judge_update(Answer(400, invalid_fields_body(("cf_signup_method", "invalid_field"))), CONTACT)
    assert (verdict.action, verdict.fields) == (Action.RESEND_WITHOUT, ("signup_method",))


def test_read_200_is_done():
    verdict = judge_read(Answer(200, {"id": 42, "tags": ["vip"]}))
    assert verdict.action is Action.DONE


@pytest.mark.parametrize(
    ("status", "action", "outcome"),
    [
        (429, Action.RETRY, Outcome.QUEUED),
        (502, Action.RETRY, Outcome.QUEUED),
        (None, Action.RETRY, Outcome.QUEUED),
        (401, Action.REAUTH, Outcome.REJECTED),
        (403, Action.REJECT, Outcome.REJECTED),
        (404, Action.CREATE, None),
        (405, Action.REJECT, Outcome.REJECTED),
    ],
)
def test_read_other_answers_follow_the_table(status, action, outcome):
    verdict = judge_read(Answer(status))
    assert (verdict.action, verdict.outcome) == (action, outcome)


def test_read_400_invalid_field_is_rejected_not_resent():
    verdict = judge_read(Answer(400, invalid_fields_body(("signup_method", "invalid_field"))))
    assert verdict.action is Action.REJECT


def test_verdict_defaults():
    assert Verdict(Action.DONE) == Verdict(Action.DONE, None, None, (), "")


# --------------------------------------------------------------------------- without_fields


def test_without_fields_drops_the_custom_field_and_emptied_custom_fields():
    trimmed = without_fields(CONTACT, ("signup_method",))
    expected = dict(CONTACT)
    del expected["custom_fields"]
    assert trimmed == expected


def test_without_fields_keeps_other_custom_fields():
    contact = {**CONTACT, "custom_fields": {"signup_method": "email", "plan": "pro"}}
    trimmed = without_fields(contact, ("signup_method",))
    assert trimmed["custom_fields"] == {"plan": "pro"}
    assert {k: v for k, v in trimmed.items() if k != "custom_fields"} == {
        k: v for k, v in contact.items() if k != "custom_fields"
    }


def test_without_fields_drops_unique_external_id():
    trimmed = without_fields(CONTACT, ("unique_external_id",))
    expected = dict(CONTACT)
    del expected["unique_external_id"]
    assert trimmed == expected


def test_without_fields_drops_both_kinds_at_once():
    trimmed = without_fields(CONTACT, ("signup_method", "unique_external_id"))
    assert set(trimmed) == set(CONTACT) - {"custom_fields", "unique_external_id"}


def test_without_fields_does_not_touch_its_input():
    contact = {**CONTACT, "custom_fields": {"signup_method": "email"}}
    without_fields(contact, ("signup_method", "unique_external_id"))
    assert contact == CONTACT


def test_without_no_fields_is_unchanged():
    assert without_fields(CONTACT, ()) == CONTACT


# --------------------------------------------------------------------------- merge_tags


def test_merge_tags_keeps_existing_order_and_adds_ours():
    assert merge_tags(["vip", "beta"], ["marketing-consent"]) == ["vip", "beta", "marketing-consent"]


def test_merge_tags_has_no_duplicates():
    assert merge_tags(["marketing-consent", "vip", "vip"], ["marketing-consent"]) == ["marketing-consent", "vip"]


def test_merge_tags_ignores_non_strings():
    assert merge_tags(["vip", 3, None, {"x": 1}, "beta"], ["marketing-consent"]) == ["vip", "beta", "marketing-consent"]


@pytest.mark.parametrize("existing", [None, "vip", {"tags": ["vip"]}, 5])
def test_merge_tags_with_no_existing_list_is_ours(existing):
    assert merge_tags(existing, ["marketing-consent"]) == ["marketing-consent"]


def test_merge_tags_with_nothing_of_ours_keeps_theirs():
    assert merge_tags(["vip"], []) == ["vip"]


# --------------------------------------------------------------------------- retry_after_seconds


@pytest.mark.parametrize(
    ("raw", "expected"), [("12", 12), ("12.0", 12), (" 30 ", 30), ("0", 0), ("900", 900), ("3600", 3600)]
)
def test_retry_after_parses_seconds(raw, expected):
    assert retry_after_seconds(Answer(429, headers={"Retry-After": raw})) == expected


def test_retry_after_header_name_is_case_insensitive():
    assert retry_after_seconds(Answer(429, headers={"retry-after": "7"})) == 7
    assert retry_after_seconds(Answer(429, headers={"RETRY-AFTER": "7"})) == 7


@pytest.mark.parametrize("headers", [{}, {"X-Other": "5"}])
def test_retry_after_missing_is_none(headers):
    assert retry_after_seconds(Answer(429, headers=headers)) is None


# An HTTP-date is read (see the tests below); a date-like text that is no date is garbage.
@pytest.mark.parametrize("raw", ["", "soon", "12s", "Wed, 99 Foo 2015 07:28:00 GMT", "nan"])
def test_retry_after_garbage_is_none(raw):
    assert retry_after_seconds(Answer(429, headers={"Retry-After": raw})) is None


@pytest.mark.parametrize("raw", ["inf", "Infinity", "1e400"])
def test_retry_after_infinite_garbage_is_none(raw):
    assert retry_after_seconds(Answer(429, headers={"Retry-After": raw})) is None


def test_retry_after_negative_never_goes_below_zero():
    assert retry_after_seconds(Answer(429, headers={"Retry-After": "-5"})) == 0


@pytest.mark.parametrize(("raw", "expected"), [("34.9", 35), ("34.1", 35), ("0.2", 1), ("12.0", 12), ("1e2", 100)])
def test_retry_after_fractional_seconds_are_rounded_up(raw, expected):
    # Waiting a fraction too little earns another 429: "34.9" was read as 34.
    assert retry_after_seconds(Answer(429, headers={"Retry-After": raw})) == expected


@pytest.mark.parametrize(
    "raw",
    ["Wed, 21 Oct 2015 07:28:00 GMT", "Wednesday, 21-Oct-15 07:28:00 GMT", "Wed Oct 21 07:28:00 2015"],
    ids=["imf-fixdate", "rfc850", "asctime"],
)
def test_retry_after_as_an_http_date_is_measured_from_the_answer_s_date(raw):
    headers = {"Retry-After": raw, "Date": "Wed, 21 Oct 2015 07:27:25 GMT"}
    assert retry_after_seconds(Answer(429, headers=headers)) == 35


def test_retry_after_as_an_http_date_without_a_date_header_is_measured_from_the_clock():
    retry_at = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    answer = Answer(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(answer, now=retry_at - 29.5) == 30
    assert retry_after_seconds(answer, now=retry_at + 10) == 0  # already past


# --------------------------------------------------------------------------- backoff_delay


class _Edge:
    """An rng whose uniform(a, b) returns one end of the range."""

    def __init__(self, upper: bool) -> None:
        self.upper = upper

    def uniform(self, a: float, b: float) -> float:
        return b if self.upper else a


@pytest.mark.parametrize(("retry_after", "expected"), [(30, 30), (1, 1), (900, 900)])
def test_backoff_honours_retry_after(retry_after, expected):
    for attempt in (1, 5, 20):
        assert backoff_delay(attempt, retry_after, rng=random.Random(1)) == expected


@pytest.mark.parametrize("retry_after", [901, 3600, 10**9])
def test_backoff_retry_after_capped_at_900(retry_after):
    assert backoff_delay(1, retry_after) == 900
    assert MAX_SQS_DELAY == 900


@pytest.mark.parametrize("retry_after", [0, -10])
def test_backoff_retry_after_at_least_one_second(retry_after):
    assert backoff_delay(1, retry_after) == 1


def test_backoff_grows_exponentially_with_attempts():
    uppers = [backoff_delay(attempt, rng=_Edge(True)) for attempt in range(1, 8)]
    lowers = [backoff_delay(attempt, rng=_Edge(False)) for attempt in range(1, 8)]
    for seq in (uppers, lowers):
        for before, after in itertools.pairwise(seq):
            assert after == 2 * before
    assert uppers[0] >= 1


def test_backoff_with_real_jitter_stays_within_a_doubling_window():
    rng = random.Random(1234)
    for attempt in range(1, 7):
        ceiling = 10 * 2 ** (attempt - 1)
        for _ in range(20):
            assert ceiling / 2 - 1 <= backoff_delay(attempt, rng=rng) <= ceiling
    # Later attempts wait longer than earlier ones on average, whatever the jitter.
    rng = random.Random(99)
    assert min(backoff_delay(6, rng=rng) for _ in range(20)) > max(backoff_delay(2, rng=rng) for _ in range(20))


def test_backoff_uses_the_base():
    assert backoff_delay(1, rng=_Edge(True), base=3) == 3
    assert backoff_delay(3, rng=_Edge(True), base=3) == 12


@pytest.mark.parametrize("attempt", [1, 7, 8, 9, 10, 17, 50, 1000, 10**6])
def test_backoff_never_exceeds_900(attempt):
    assert backoff_delay(attempt, rng=_Edge(True)) <= 900
    rng = random.Random(attempt)
    for _ in range(20):
        assert 1 <= backoff_delay(attempt, rng=rng) <= 900
    assert 1 <= backoff_delay(attempt) <= 900


def test_backoff_at_least_one_second_for_tiny_base():
    assert backoff_delay(1, rng=_Edge(False), base=1) >= 1


def test_backoff_has_jitter():
    first = [backoff_delay(attempt, rng=random.Random(1)) for attempt in range(1, 10)]
    second = [backoff_delay(attempt, rng=random.Random(2)) for attempt in range(1, 10)]
    assert first != second


def test_backoff_with_a_seeded_rng_is_reproducible():
    one, two = random.Random(42), random.Random(42)
    assert [backoff_delay(a, rng=one) for a in range(1, 12)] == [backoff_delay(a, rng=two) for a in range(1, 12)]


def test_backoff_keeps_jitter_at_the_cap():
    rng = random.Random(5)
    delays = {backoff_delay(30, rng=rng) for _ in range(20)}
    assert len(delays) > 1
    assert max(delays) <= 900


# --- a contact known only by its phone is looked up before it is created (Freshdesk allows duplicate phones)


def test_phone_lookup_finding_nobody_creates_the_contact():
    assert judge_phone_lookup(Operation.IDENTIFY, Answer(200, [])).action is Action.CREATE


def test_phone_lookup_finding_one_contact_updates_it_on_identify():
    verdict = judge_phone_lookup(Operation.IDENTIFY, Answer(200, [{"id": 7, "phone": "+447700900777"}]))
    assert (verdict.action, verdict.contact_id) == (Action.UPDATE, 7)


def test_phone_lookup_finding_a_contact_is_a_final_conflict_on_signed_up():
    verdict = judge_phone_lookup(Operation.SIGN_UP, Answer(200, [{"id": 7}]))
    assert (verdict.action, verdict.outcome) == (Action.DONE, Outcome.CONFLICT)


def test_phone_lookup_finding_several_contacts_does_not_guess():
    verdict = judge_phone_lookup(Operation.IDENTIFY, Answer(200, [{"id": 7}, {"id": 9}]))
    assert (verdict.action, verdict.outcome) == (Action.DONE, Outcome.CONFLICT) and verdict.warning


def test_phone_lookup_that_fails_is_judged_like_any_answer():
    assert judge_phone_lookup(Operation.IDENTIFY, Answer(503)).action is Action.RETRY
    assert judge_phone_lookup(Operation.IDENTIFY, Answer(None)).action is Action.RETRY
    assert judge_phone_lookup(Operation.IDENTIFY, Answer(403)).action is Action.REJECT
