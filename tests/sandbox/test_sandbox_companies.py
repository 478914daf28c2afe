"""The sandbox's companies and typed custom contact fields, exercised over real HTTP through FreshdeskClient."""

from __future__ import annotations

import json
import time

import pytest
import urllib3

from signal_freshdesk.adapters.freshdesk import FreshdeskClient
from signal_freshdesk.core.credentials import Credentials
from signal_freshdesk.core.model import Answer
from signal_freshdesk_dev.sandbox import FreshdeskSandbox
from tests.fakes import FakeFreshdesk

KEY = "test-key"
CREDS = Credentials(domain="acme", api_key=KEY, webhook_token="token")
DUPLICATE_NAME = {
    "description": "Validation failed",
    "errors": [{"field": "name", "message": "It should be a unique value", "code": "duplicate_value"}],
}


@pytest.fixture
def sandbox():
    with FreshdeskSandbox(KEY) as sb:
        yield sb


@pytest.fixture
def client(sandbox):
    return FreshdeskClient(base_url_override=sandbox.base_url)


def delete(sandbox: FreshdeskSandbox, path: str) -> urllib3.BaseHTTPResponse:
    """A DELETE, which the client does not make."""
    headers = urllib3.make_headers(basic_auth=f"{KEY}:X")
    return urllib3.request("DELETE", sandbox.base_url + path, headers=headers, retries=False)


def error_codes(answer) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in answer.body["errors"]]


# -- companies --------------------------------------------------------------------------------


def test_create_company_is_201_with_the_full_record_and_ids_count_up_from_1(sandbox, client):
    answer = client.create_company(
        CREDS,
        {
            "name": "Acme Corporation",
            "domains": ["acme.com"],
            "industry": "Manufacturing",
            "custom_fields": {"tier": 2},
        },
    )
    assert answer.status == 201
    assert answer.header("Location") == "/api/v2/companies/1"
    company = answer.body
    assert list(company) == [
        "id",
        "name",
        "domains",
        "description",
        "note",
        "health_score",
        "account_tier",
        "renewal_date",
        "industry",
        "custom_fields",
        "created_at",
        "updated_at",
    ]
    assert (company["id"], company["name"], company["domains"]) == (1, "Acme Corporation", ["acme.com"])
    assert company["industry"] == "Manufacturing" and company["custom_fields"] == {"tier": 2}
    assert company["description"] is None and company["note"] is None
    assert company["created_at"].endswith("Z") and company["updated_at"] == company["created_at"]

    second = client.create_company(CREDS, {"name": "Initech"}).body
    assert second["id"] == 2 and second["domains"] == [] and second["custom_fields"] == {}
    assert sandbox.companies() == [company, second]
    assert sandbox.contacts() == []  # companies and contacts are kept apart


@pytest.mark.parametrize(
    "company,expected",
    [
        ({}, [("name", "missing_field")]),
        ({"domains": ["acme.com"]}, [("name", "missing_field")]),
        ({"name": "   "}, [("name", "missing_field")]),
        ({"name": 42}, [("name", "datatype_mismatch")]),
        ({"name": "x" * 256}, [("name", "invalid_value")]),
        ({"name": "Acme", "domains": "acme.com"}, [("domains", "datatype_mismatch")]),
        ({"name": "Acme", "domains": ["acme.com", 7]}, [("domains", "datatype_mismatch")]),
        ({"name": "Acme", "custom_fields": ["tier"]}, [("custom_fields", "datatype_mismatch")]),
        ({"name": "Acme", "note": None}, [("note", "datatype_mismatch")]),
        ({"name": "Acme", "website": "acme.com"}, [("website", "invalid_field")]),
    ],
    ids=[
        "no_fields",
        "no_name",
        "blank_name",
        "number_name",
        "long_name",
        "domains_not_an_array",
        "domain_not_a_string",
        "custom_fields_not_an_object",
        "null_field",
        "unknown_field",
    ],
)
def test_invalid_company_is_400_validation_failed_and_stores_nothing(sandbox, client, company, expected):
    answer = client.create_company(CREDS, company)
    assert answer.status == 400 and answer.body["description"] == "Validation failed"
    assert error_codes(answer) == expected
    assert sandbox.companies() == []


def test_duplicate_company_name_ignoring_case_is_409_without_the_holders_id(sandbox, client):
    acme = client.create_company(CREDS, {"name": "Acme Corporation"}).body
    for name in ("Acme Corporation", "ACME corporation", " acme corporation "):
        answer = client.create_company(CREDS, {"name": name})
        assert (answer.status, answer.body) == (409, DUPLICATE_NAME)
    assert sandbox.companies() == [acme]
    assert client.create_company(CREDS, {"name": "Acme Corporation Ltd"}).status == 201


def test_domains_are_stored_lower_cased_and_once_each(client):
    company = client.create_company(
        CREDS, {"name": "Acme", "domains": ["Acme.com", "acme.com", "shop.acme.com", "ACME.COM"]}
    ).body
    assert company["domains"] == ["acme.com", "shop.acme.com"]


def test_get_company_answers_the_record_and_404_when_unknown(client):
    acme = client.create_company(CREDS, {"name": "Acme", "note": "key account"}).body
    got = client.get_company(CREDS, acme["id"])
    assert (got.status, got.body) == (200, acme)
    missing = client.get_company(CREDS, 99)
    assert (missing.status, missing.body) == (404, None)


def test_update_company_replaces_domains_merges_custom_fields_and_bumps_updated_at(sandbox, client):
    acme = client.create_company(
        CREDS, {"name": "Acme", "domains": ["acme.com", "acme.io"], "custom_fields": {"tier": "gold", "region": "EU"}}
    ).body
    time.sleep(0.002)
    answer = client.update_company(
        CREDS, acme["id"], {"domains": ["Acme.org"], "custom_fields": {"tier": "silver"}, "description": "Anvils"}
    )
    assert answer.status == 200
    updated = answer.body
    assert updated["domains"] == ["acme.org"]
    assert updated["custom_fields"] == {"tier": "silver", "region": "EU"}
    assert (updated["name"], updated["description"]) == ("Acme", "Anvils")
    assert updated["created_at"] == acme["created_at"] and updated["updated_at"] > acme["updated_at"]
    assert client.update_company(CREDS, acme["id"], {"domains": []}).body["domains"] == []
    assert sandbox.company(acme["id"])["domains"] == []


def test_update_company_to_another_companys_name_is_409_and_unknown_company_is_404(sandbox, client):
    acme = client.create_company(CREDS, {"name": "Acme"}).body
    initech = client.create_company(CREDS, {"name": "Initech"}).body
    taken = client.update_company(CREDS, initech["id"], {"name": "ACME"})
    assert (taken.status, taken.body) == (409, DUPLICATE_NAME)
    assert sandbox.company(initech["id"]) == initech
    renamed = client.update_company(CREDS, acme["id"], {"name": "ACME"})  # its own name, in other letters
    assert renamed.status == 200 and renamed.body["name"] == "ACME"
    blank = client.update_company(CREDS, acme["id"], {"name": ""})
    assert blank.status == 400 and error_codes(blank) == [("name", "invalid_value")]
    assert client.update_company(CREDS, 99, {"name": "Nobody"}).status == 404


def test_delete_company_is_204_then_404_and_unlinks_its_contacts(sandbox, client):
    acme = client.create_company(CREDS, {"name": "Acme"}).body
    ada = client.create_contact(CREDS, {"name": "Ada", "email": "ada@example.com", "company_id": acme["id"]}).body
    assert ada["company_id"] == acme["id"]
    resp = delete(sandbox, f"/api/v2/companies/{acme['id']}")
    assert resp.status == 204 and resp.data == b""
    assert sandbox.companies() == []
    assert client.get_company(CREDS, acme["id"]).status == 404
    assert delete(sandbox, f"/api/v2/companies/{acme['id']}").status == 404
    assert sandbox.contact(ada["id"])["company_id"] is None


# -- autocomplete -----------------------------------------------------------------------------


def test_autocomplete_matches_the_start_of_the_name_or_of_a_word_ignoring_case(sandbox, client):
    for name in ("Acme Corporation", "Big Acme Ltd", "Macme", "R&D Labs", "Initech"):
        sandbox.seed_company(name=name)

    def names(term: str) -> list[str]:
        answer = client.find_companies(CREDS, term)
        assert answer.status == 200 and set(answer.body) == {"companies"}
        return [c["name"] for c in answer.body["companies"]]

    assert names("acm") == ["Acme Corporation", "Big Acme Ltd"]
    assert names("CORP") == ["Acme Corporation"]
    assert names("acme corp") == ["Acme Corporation"]
    assert names("me") == []  # not a substring search
    assert names("r&d") == ["R&D Labs"]
    assert names("labs") == ["R&D Labs"]
    assert names("zzz") == []
    answer = client.find_companies(CREDS, "init")
    assert answer.body == {"companies": [{"id": 5, "name": "Initech"}]}


def test_autocomplete_needs_a_name(sandbox, client):
    blank = client.find_companies(CREDS, "  ")
    assert blank.status == 400 and error_codes(blank) == [("name", "missing_field")]
    for path in ("/api/v2/companies/autocomplete", "/api/v2/companies/autocomplete?name=a&page=2"):
        headers = urllib3.make_headers(basic_auth=f"{KEY}:X")
        resp = urllib3.request("GET", sandbox.base_url + path, headers=headers, retries=False)
        assert resp.status == 400
    assert [e["code"] for e in json.loads(resp.data)["errors"]] == ["invalid_field"]


# -- company ids on contacts ------------------------------------------------------------------


def test_contact_company_id_must_name_a_created_or_declared_company():
    with FreshdeskSandbox(KEY, company_ids=(50,)) as sb:
        client = FreshdeskClient(base_url_override=sb.base_url)
        unknown = client.create_contact(CREDS, {"name": "Ada", "email": "ada@example.com", "company_id": 1})
        assert unknown.status == 400
        assert unknown.body["errors"] == [
            {
                "field": "company_id",
                "message": "There is no company matching the given company_id",
                "code": "absent_in_db",
            }
        ]
        acme = client.create_company(CREDS, {"name": "Acme"}).body
        ada = client.create_contact(CREDS, {"name": "Ada", "email": "ada@example.com", "company_id": acme["id"]})
        assert ada.status == 201 and ada.body["company_id"] == 1
        declared = client.update_contact(CREDS, ada.body["id"], {"company_id": 50})
        assert declared.status == 200
        moved = client.update_contact(CREDS, ada.body["id"], {"company_id": 2})
        assert moved.status == 400 and error_codes(moved) == [("company_id", "absent_in_db")]
        other = client.update_contact(CREDS, ada.body["id"], {"other_companies": [{"company_id": acme["id"]}]})
        assert other.status == 200


# -- the same plumbing as contacts ------------------------------------------------------------


def test_company_calls_need_auth_and_take_faults_the_rate_limit_and_the_log(sandbox, client):
    wrong = FreshdeskClient(base_url_override=sandbox.base_url)
    refused = wrong.create_company(Credentials(domain="acme", api_key="wrong", webhook_token="t"), {"name": "Acme"})
    assert refused.status == 401
    sandbox.fail_next(503)
    assert client.create_company(CREDS, {"name": "Acme"}).status == 503
    assert sandbox.companies() == []
    sandbox.drop_next()
    dropped = client.find_companies(CREDS, "acme")
    assert dropped.status is None and dropped.error
    sandbox.set_mode("forbidden")
    assert client.get_company(CREDS, 1).status == 403
    sandbox.set_mode(None)
    sandbox.set_rate_limit(1, 60)
    assert client.create_company(CREDS, {"name": "Acme"}).status == 201
    limited = client.get_company(CREDS, 1)
    assert limited.status == 429 and limited.header("Retry-After")
    assert [(r["method"], r["path"], r["status"]) for r in sandbox.requests()] == [
        ("POST", "/api/v2/companies", 401),
        ("POST", "/api/v2/companies", 503),
        ("GET", "/api/v2/companies/autocomplete", None),
        ("GET", "/api/v2/companies/1", 403),
        ("POST", "/api/v2/companies", 201),
        ("GET", "/api/v2/companies/1", 429),
    ]
    assert sandbox.requests()[2]["query"] == "name=acme"
    assert sandbox.stats() == {"requests": 6, "list_calls": 0, "list_rate_limited": 0}


def test_wrong_method_on_company_paths_is_405(sandbox):
    headers = urllib3.make_headers(basic_auth=f"{KEY}:X")
    for method, path, allow in (
        ("GET", "/api/v2/companies", "POST"),
        ("POST", "/api/v2/companies/autocomplete", "GET"),
        ("POST", "/api/v2/companies/1", "GET, PUT, DELETE"),
    ):
        resp = urllib3.request(method, sandbox.base_url + path, headers=headers, retries=False)
        assert resp.status == 405 and resp.headers["Allow"] == allow


# -- helpers ----------------------------------------------------------------------------------


def test_seed_company_stores_without_a_request_and_refuses_what_freshdesk_would(sandbox, client):
    acme = sandbox.seed_company(name="Acme", domains=["ACME.com"], note=None)
    assert (acme["id"], acme["domains"], acme["note"]) == (1, ["acme.com"], None)
    assert sandbox.requests() == []
    with pytest.raises(ValueError, match="duplicate"):
        sandbox.seed_company(name="acme")
    with pytest.raises(ValueError):
        sandbox.seed_company(domains=["acme.com"])
    assert client.get_company(CREDS, 1).body == acme
    assert client.create_company(CREDS, {"name": "Initech"}).body["id"] == 2


def test_companies_and_company_return_copies(sandbox):
    acme = sandbox.seed_company(name="Acme", domains=["acme.com"])
    sandbox.companies()[0]["domains"].append("evil.com")
    sandbox.company(acme["id"])["name"] = "Changed"
    assert sandbox.company(acme["id"]) == acme
    with pytest.raises(KeyError):
        sandbox.company(99)


def test_reset_forgets_companies_and_ids_start_again_at_1(sandbox, client):
    sandbox.seed_company(name="Acme")
    client.create_company(CREDS, {"name": "Initech"})
    sandbox.reset()
    assert sandbox.companies() == []
    assert client.create_company(CREDS, {"name": "Acme"}).body["id"] == 1


def test_admin_companies_endpoint_lists_and_seeds_without_auth(sandbox):
    seeded = urllib3.request("POST", sandbox.base_url + "/_sandbox/companies", body=json.dumps({"name": "Acme"}))
    assert seeded.status == 201 and json.loads(seeded.data)["id"] == 1
    again = urllib3.request("POST", sandbox.base_url + "/_sandbox/companies", body=json.dumps({"name": "ACME"}))
    assert again.status == 400
    listed = urllib3.request("GET", sandbox.base_url + "/_sandbox/companies")
    assert [c["name"] for c in json.loads(listed.data)] == ["Acme"]
    assert urllib3.request("DELETE", sandbox.base_url + "/_sandbox/companies").status == 405
    assert sandbox.requests() == []


# -- the fake keeps to the sandbox's rules ----------------------------------------------------


def company_outcomes(freshdesk) -> list[tuple]:
    """A run of company calls, each answer as its status and body (error codes only; no timestamps)."""

    def outcome(answer) -> tuple:
        body = answer.body
        if answer.status == 400:
            return 400, error_codes(answer)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in ("created_at", "updated_at")}
        return answer.status, body

    calls = [
        lambda: freshdesk.create_company(CREDS, {"name": "Acme Corporation", "domains": ["Acme.com", "acme.com"]}),
        lambda: freshdesk.create_company(CREDS, {"name": "acme corporation"}),
        lambda: freshdesk.create_company(CREDS, {}),
        lambda: freshdesk.create_company(CREDS, {"name": "Acme", "domains": "acme.com", "website": "x"}),
        lambda: freshdesk.create_company(CREDS, {"name": "Big Acme Ltd", "custom_fields": {"tier": "gold"}}),
        lambda: freshdesk.find_companies(CREDS, "ACM"),
        lambda: freshdesk.find_companies(CREDS, "corp"),
        lambda: freshdesk.find_companies(CREDS, "big acme"),
        lambda: freshdesk.find_companies(CREDS, "me"),
        lambda: freshdesk.find_companies(CREDS, " "),
        lambda: freshdesk.update_company(CREDS, 2, {"domains": ["BigAcme.com"], "custom_fields": {"region": "EU"}}),
        lambda: freshdesk.update_company(CREDS, 2, {"name": "ACME CORPORATION"}),
        lambda: freshdesk.update_company(CREDS, 2, {"name": ""}),
        lambda: freshdesk.update_company(CREDS, 99, {"name": "Nobody"}),
        lambda: freshdesk.get_company(CREDS, 2),
        lambda: freshdesk.get_company(CREDS, 99),
    ]
    return [outcome(call()) for call in calls]


def test_the_fake_freshdesk_answers_company_calls_as_the_sandbox_does(client):
    fake = FakeFreshdesk()
    assert company_outcomes(fake) == company_outcomes(client)
    assert [call.method for call in fake.calls][:2] == ["create_company", "create_company"]


def test_the_fake_freshdesk_scripts_the_new_calls_and_seeds_companies_without_a_call():
    fake = FakeFreshdesk().script("get_company", Answer(503)).script("contact_fields", Answer(403))
    acme = fake.seed_company(name="Acme", domains=["ACME.com"])
    assert (acme["id"], acme["domains"]) == (1, ["acme.com"])
    with pytest.raises(ValueError):
        fake.seed_company(name="ACME")
    assert fake.get_company(CREDS, 1).status == 503
    assert fake.get_company(CREDS, 1).body == acme
    assert fake.contact_fields(CREDS).status == 403
    assert [(c.method, c.contact_id) for c in fake.calls] == [
        ("get_company", 1),
        ("get_company", 1),
        ("contact_fields", None),
    ]


def test_the_fake_freshdesks_contact_fields_are_the_sandboxs_defaults(client):
    sandbox_fields = {f["name"]: f for f in client.contact_fields(CREDS).body}
    fake_answer = FakeFreshdesk().contact_fields(CREDS)
    assert fake_answer.status == 200
    for field in fake_answer.body:
        expected = sandbox_fields[field["name"]]
        assert {k: expected[k] for k in field if k != "id"} == {k: v for k, v in field.items() if k != "id"}


# -- typed custom fields ----------------------------------------------------------------------

TYPED = {
    "seats": "custom_number",
    "trial": "custom_checkbox",
    "renews_on": "custom_date",
    "bio": "custom_paragraph",
    "homepage": "custom_url",
    "desk_phone": "custom_phone_number",
}


@pytest.fixture
def typed():
    with FreshdeskSandbox(KEY, custom_field_types=TYPED, custom_field_choices={"plan": ["Free", "Pro"]}) as sb:
        yield sb, FreshdeskClient(base_url_override=sb.base_url)


@pytest.mark.parametrize(
    "field,good,bad,code",
    [
        ("seats", 12, "12", "datatype_mismatch"),
        ("seats", -3, 1.5, "datatype_mismatch"),
        ("seats", 0, True, "datatype_mismatch"),
        ("trial", True, "true", "datatype_mismatch"),
        ("trial", False, 0, "datatype_mismatch"),
        ("renews_on", "2026-02-28", "2026-02-30", "invalid_value"),
        ("renews_on", "2024-02-29", "28/02/2026", "invalid_value"),
        ("renews_on", "2026-12-01", "20261201", "invalid_value"),
        ("renews_on", "2026-12-01", 20261201, "invalid_value"),
        ("bio", "x" * 1000, 7, "datatype_mismatch"),
        ("homepage", "https://acme.com", "x" * 256, "invalid_value"),
        ("desk_phone", "+44 20 7946 0000", 442079460000, "datatype_mismatch"),
        ("signup_method", "google", "x" * 256, "invalid_value"),
        ("plan", "Pro", "Gold", "invalid_value"),
    ],
    ids=[
        "number_not_text",
        "number_not_fraction",
        "number_not_boolean",
        "checkbox_not_text",
        "checkbox_not_number",
        "date_not_a_real_day",
        "date_not_day_first",
        "date_without_dashes",
        "date_not_a_number",
        "paragraph_not_a_number",
        "url_at_most_255",
        "phone_number_not_a_number",
        "text_at_most_255",
        "dropdown_one_of_its_choices",
    ],
)
def test_custom_field_values_are_checked_by_type_on_create_and_update(typed, field, good, bad, code):
    sb, client = typed
    refused = client.create_contact(CREDS, {"name": "Ada", "email": "ada@example.com", "custom_fields": {field: bad}})
    assert refused.status == 400 and error_codes(refused) == [(field, code)]
    created = client.create_contact(CREDS, {"name": "Ada", "email": "ada@example.com", "custom_fields": {field: good}})
    assert created.status == 201 and created.body["custom_fields"][field] == good
    changed = client.update_contact(CREDS, created.body["id"], {"custom_fields": {field: bad}})
    assert changed.status == 400 and error_codes(changed) == [(field, code)]
    assert sb.contact(created.body["id"])["custom_fields"][field] == good
    with pytest.raises(ValueError):
        sb.seed_contact(name="Bob", email="bob@example.com", custom_fields={field: bad})


def test_a_bad_date_says_which_format_it_wants(typed):
    _, client = typed
    answer = client.create_contact(
        CREDS, {"name": "Ada", "email": "ada@example.com", "custom_fields": {"renews_on": "soon"}}
    )
    assert answer.body["errors"] == [
        {"field": "renews_on", "message": "It should be in the 'yyyy-mm-dd' format", "code": "invalid_value"}
    ]


def test_contact_fields_lists_each_custom_field_with_its_type_and_choices(typed):
    sb, client = typed
    answer = client.contact_fields(CREDS)
    assert answer.status == 200
    custom = {f["name"]: f for f in answer.body if not f["default"]}
    assert list(custom) == list(sb.custom_fields)
    assert {name: f["type"] for name, f in custom.items()} == {
        "signup_method": "custom_text",
        "plan": "custom_dropdown",
        **TYPED,
    }
    assert custom["plan"]["choices"] == ["Free", "Pro"]
    assert all("choices" not in f for name, f in custom.items() if name != "plan")
    assert not any(f["required_for_agents"] for f in custom.values())


def test_required_custom_fields_are_flagged_for_agents_but_not_enforced_on_api_writes():
    with FreshdeskSandbox(
        KEY, custom_field_types={"seats": "custom_number"}, required_custom_fields=["seats", "crm_id"]
    ) as sb:
        client = FreshdeskClient(base_url_override=sb.base_url)
        fields = {f["name"]: f for f in client.contact_fields(CREDS).body}
        assert fields["seats"]["required_for_agents"] is True
        assert fields["crm_id"]["required_for_agents"] is True and fields["crm_id"]["type"] == "custom_text"
        assert fields["signup_method"]["required_for_agents"] is False
        created = client.create_contact(CREDS, {"name": "Ada", "email": "ada@example.com"})
        assert created.status == 201
        assert created.body["custom_fields"] == {"signup_method": None, "seats": None, "crm_id": None}


def test_set_custom_field_type_adds_the_field_and_changes_how_it_is_checked(sandbox, client):
    sandbox.set_custom_field_type("seats", "custom_number")
    assert sandbox.custom_fields == ("signup_method", "seats")
    body = {"name": "Ada", "email": "ada@example.com", "custom_fields": {"seats": "ten"}}
    assert client.create_contact(CREDS, body).status == 400
    sandbox.set_custom_field_type("seats", "custom_text")
    assert client.create_contact(CREDS, body).status == 201


def test_a_type_replaces_a_dropdowns_choices_and_choices_replace_a_type(sandbox, client):
    sandbox.set_custom_field_choices("plan", ["Free", "Pro"])
    sandbox.set_custom_field_type("plan", "custom_dropdown")  # already one: no change
    sandbox.set_custom_field_type("plan", "custom_number")
    fields = {f["name"]: f for f in client.contact_fields(CREDS).body}
    assert fields["plan"]["type"] == "custom_number" and "choices" not in fields["plan"]
    sandbox.set_custom_field_choices("plan", ["Free", "Pro"])
    fields = {f["name"]: f for f in client.contact_fields(CREDS).body}
    assert fields["plan"]["type"] == "custom_dropdown" and fields["plan"]["choices"] == ["Free", "Pro"]


def test_field_types_that_cannot_be_are_refused(sandbox):
    with pytest.raises(ValueError, match="unknown custom field type"):
        sandbox.set_custom_field_type("seats", "custom_integer")
    with pytest.raises(ValueError, match="has no choices"):
        sandbox.set_custom_field_type("seats", "custom_dropdown")
    with pytest.raises(ValueError, match="has choices"):
        FreshdeskSandbox(KEY, custom_field_choices={"plan": ["Free"]}, custom_field_types={"plan": "custom_number"})
    assert sandbox.custom_fields == ("signup_method",)


def test_untyped_fields_keep_their_old_behaviour(sandbox, client):
    fields = {f["name"]: f for f in client.contact_fields(CREDS).body}
    assert fields["signup_method"]["type"] == "custom_text"
    assert fields["signup_method"]["required_for_agents"] is False
    number = client.create_contact(
        CREDS, {"name": "Ada", "email": "a@example.com", "custom_fields": {"signup_method": 1}}
    )
    assert number.status == 400 and error_codes(number) == [("signup_method", "datatype_mismatch")]
    null = client.create_contact(
        CREDS, {"name": "Ada", "email": "a@example.com", "custom_fields": {"signup_method": None}}
    )
    assert null.status == 400 and error_codes(null) == [("signup_method", "datatype_mismatch")]
