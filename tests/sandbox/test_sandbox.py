"""The Freshdesk sandbox, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time

import pytest
import urllib3
from urllib3.exceptions import ProtocolError

from signal_freshdesk_dev.sandbox import FreshdeskSandbox

KEY = "test-key"


@pytest.fixture
def sandbox():
    with FreshdeskSandbox(KEY) as sb:
        yield sb


@pytest.fixture
def http():
    pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=5))
    yield pool
    pool.clear()


def call(http, sb, method, path, body=None, key=KEY, password="X", headers=None):
    hdrs = {}
    if key is not None:
        hdrs.update(urllib3.make_headers(basic_auth=f"{key}:{password}"))
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    return http.request(method, sb.base_url + path, body=data, headers=hdrs)


def js(resp):
    return json.loads(resp.data.decode("utf-8"))


def create(http, sb, **fields):
    fields.setdefault("name", "Ada Lovelace")
    return call(http, sb, "POST", "/api/v2/contacts", fields)


def error_codes(resp):
    return [(e["field"], e["code"]) for e in js(resp)["errors"]]


# -- create -----------------------------------------------------------------------------------


def test_create_returns_201_with_full_contact_and_location(sandbox, http):
    resp = create(
        http,
        sandbox,
        email="ada@example.com",
        tags=["marketing-consent"],
        custom_fields={"signup_method": "google"},
        company_id=2,
    )
    assert resp.status == 201
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    contact = js(resp)
    assert contact["id"] == 101
    assert resp.headers["Location"] == "/api/v2/contacts/101"
    assert contact["name"] == "Ada Lovelace"
    assert contact["email"] == "ada@example.com"
    assert contact["tags"] == ["marketing-consent"]
    assert contact["custom_fields"] == {"signup_method": "google"}
    assert contact["company_id"] == 2
    assert contact["phone"] is None and contact["unique_external_id"] is None
    assert contact["active"] is False and contact["deleted"] is False
    assert contact["created_at"].endswith("Z") and contact["updated_at"] == contact["created_at"]

    second = js(create(http, sandbox, phone="+447700900123"))
    assert second["id"] == 102
    assert second["tags"] == [] and second["custom_fields"] == {"signup_method": None}
    assert [c["id"] for c in sandbox.contacts()] == [101, 102]
    got = call(http, sandbox, "GET", "/api/v2/contacts/101")
    assert got.status == 200 and js(got) == contact


# -- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key,password", [("wrong-key", "X"), (None, None), (KEY, "")], ids=["wrong_key", "missing_auth", "empty_password"]
)
def test_bad_credentials_are_401_invalid_credentials(sandbox, http, key, password):
    resp = call(
        http, sandbox, "POST", "/api/v2/contacts", {"name": "A", "email": "a@example.com"}, key=key, password=password
    )
    assert resp.status == 401
    assert js(resp) == {"code": "invalid_credentials", "message": "You have to be logged in to perform this action."}
    assert sandbox.contacts() == []


def test_rotated_api_key_takes_effect_immediately(sandbox, http):
    assert create(http, sandbox, email="a@example.com").status == 201
    sandbox.api_key = "rotated"
    assert create(http, sandbox, email="b@example.com").status == 401
    assert call(http, sandbox, "GET", "/api/v2/contacts", key="rotated").status == 200


# -- duplicates -------------------------------------------------------------------------------


def test_duplicate_email_is_409_case_insensitive_with_user_id(sandbox, http):
    first = js(create(http, sandbox, email="ada@example.com"))
    resp = create(http, sandbox, email="ADA@Example.COM")
    assert resp.status == 409
    body = js(resp)
    assert body["description"] == "Validation failed"
    assert body["errors"] == [
        {
            "field": "email",
            "message": "It should be a unique value",
            "code": "duplicate_value",
            "additional_info": {"user_id": first["id"]},
        }
    ]


def test_409_names_two_different_contacts_for_email_and_external_id(sandbox, http):
    by_email = js(create(http, sandbox, email="ada@example.com"))
    by_uid = js(create(http, sandbox, unique_external_id="user-42"))
    resp = create(http, sandbox, email="ada@example.com", unique_external_id="user-42")
    assert resp.status == 409
    ids = {e["field"]: e["additional_info"]["user_id"] for e in js(resp)["errors"]}
    assert ids == {"email": by_email["id"], "unique_external_id": by_uid["id"]}
    assert all(e["code"] == "duplicate_value" for e in js(resp)["errors"])


def test_soft_deleted_contact_still_409s_while_email_filter_finds_nothing(sandbox, http):
    contact = js(create(http, sandbox, email="gone@example.com"))
    assert call(http, sandbox, "DELETE", f"/api/v2/contacts/{contact['id']}").status == 204
    listed = call(http, sandbox, "GET", "/api/v2/contacts?email=gone%40example.com")
    assert listed.status == 200 and js(listed) == []
    resp = create(http, sandbox, email="Gone@example.com")
    assert resp.status == 409
    assert js(resp)["errors"][0]["additional_info"] == {"user_id": contact["id"]}
    # reading it by id still works and shows it deleted
    assert js(call(http, sandbox, "GET", f"/api/v2/contacts/{contact['id']}"))["deleted"] is True
    assert sandbox.contacts() == [] and len(sandbox.contacts(include_deleted=True)) == 1


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload,expected",
    [
        ({"name": "A", "email": "a@example.com", "phone": None}, ("phone", "datatype_mismatch")),
        (
            {"name": "A", "email": "a@example.com", "custom_fields": {"signup_method": None}},
            ("signup_method", "datatype_mismatch"),
        ),
        ({"email": "a@example.com"}, ("name", "missing_field")),
        ({"name": "   ", "email": "a@example.com"}, ("name", "missing_field")),
        ({"name": "A", "job_title": "CTO"}, ("email", "missing_field")),
        ({"name": "A", "email": "a@example.com", "custom_fields": {"plan": "pro"}}, ("plan", "invalid_field")),
        ({"name": "A", "email": "a@example.com", "tags": ["x" * 33]}, ("tags", "invalid_value")),
        ({"name": "A", "email": "a@example.com", "tags": ["a,b"]}, ("tags", "invalid_value")),
        ({"name": "A", "email": "not an email"}, ("email", "invalid_value")),
        ({"name": "A", "email": "a@localhost"}, ("email", "invalid_value")),
        ({"name": "x" * 256, "email": "a@example.com"}, ("name", "invalid_value")),
        ({"name": "A", "phone": 447700900123}, ("phone", "datatype_mismatch")),
        ({"name": "A", "email": "a@example.com", "company_id": "2"}, ("company_id", "datatype_mismatch")),
        ({"name": "A", "email": "a@example.com", "company_id": 99}, ("company_id", "absent_in_db")),
        ({"name": "A", "email": "a@example.com", "favourite_colour": "blue"}, ("favourite_colour", "invalid_field")),
    ],
    ids=[
        "null_field",
        "null_custom_field",
        "missing_name",
        "blank_name",
        "missing_identifier",
        "unknown_custom_field",
        "long_tag",
        "tag_with_comma",
        "email_with_space",
        "email_without_dot",
        "long_name",
        "non_string_phone",
        "non_int_company",
        "unknown_company",
        "unknown_field",
    ],
)
def test_invalid_create_is_400_validation_failed(sandbox, http, payload, expected):
    resp = call(http, sandbox, "POST", "/api/v2/contacts", payload)
    assert resp.status == 400
    body = js(resp)
    assert body["description"] == "Validation failed"
    assert expected in error_codes(resp)
    assert all(set(e) == {"field", "message", "code"} for e in body["errors"])
    assert sandbox.contacts() == []


def test_missing_identifier_message_lists_the_identifier_fields(sandbox, http):
    resp = create(http, sandbox)
    assert js(resp)["errors"] == [
        {
            "field": "email",
            "code": "missing_field",
            "message": "Please fill at least 1 of email, mobile, phone, twitter_id, unique_external_id fields",
        }
    ]


def test_validation_collects_all_errors(sandbox, http):
    resp = call(
        http, sandbox, "POST", "/api/v2/contacts", {"phone": None, "custom_fields": {"plan": "pro"}, "tags": "vip"}
    )
    assert resp.status == 400
    assert set(error_codes(resp)) == {
        ("phone", "datatype_mismatch"),
        ("plan", "invalid_field"),
        ("tags", "invalid_value"),
        ("name", "missing_field"),
        ("email", "missing_field"),
    }


def test_unique_external_id_is_invalid_field_when_feature_disabled(http):
    with FreshdeskSandbox(KEY, unique_external_id_enabled=False) as sb:
        resp = create(http, sb, email="a@example.com", unique_external_id="user-1")
        assert resp.status == 400
        assert error_codes(resp) == [("unique_external_id", "invalid_field")]
        assert create(http, sb, email="a@example.com").status == 201


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""], ids=["broken", "array", "empty"])
def test_non_object_body_is_400_invalid_json(sandbox, http, raw):
    resp = call(http, sandbox, "POST", "/api/v2/contacts", raw, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert error_codes(resp) == [("", "invalid_json")]


# -- update / delete --------------------------------------------------------------------------


def test_put_replaces_tags_merges_custom_fields_and_bumps_updated_at(http):
    with FreshdeskSandbox(KEY, custom_fields=("signup_method", "plan")) as sb:
        contact = js(
            create(http, sb, email="ada@example.com", tags=["a", "b"], custom_fields={"signup_method": "google"})
        )
        resp = call(
            http,
            sb,
            "PUT",
            f"/api/v2/contacts/{contact['id']}",
            {"tags": ["c"], "custom_fields": {"plan": "pro"}, "job_title": "CTO"},
        )
        assert resp.status == 200
        updated = js(resp)
        assert updated["tags"] == ["c"]
        assert updated["custom_fields"] == {"signup_method": "google", "plan": "pro"}
        assert updated["job_title"] == "CTO" and updated["name"] == "Ada Lovelace"
        assert updated["updated_at"] > contact["updated_at"]
        assert updated["created_at"] == contact["created_at"]
        assert sb.contacts()[0] == updated


def test_put_validates_and_checks_duplicates_against_other_contacts(sandbox, http):
    ada = js(create(http, sandbox, email="ada@example.com"))
    bob = js(create(http, sandbox, email="bob@example.com"))
    # its own email is not a duplicate; another contact's is
    assert call(http, sandbox, "PUT", f"/api/v2/contacts/{ada['id']}", {"email": "ADA@example.com"}).status == 200
    clash = call(http, sandbox, "PUT", f"/api/v2/contacts/{ada['id']}", {"email": "bob@example.com"})
    assert clash.status == 409
    assert js(clash)["errors"][0]["additional_info"] == {"user_id": bob["id"]}
    blank = call(http, sandbox, "PUT", f"/api/v2/contacts/{ada['id']}", {"name": " "})
    assert blank.status == 400 and error_codes(blank) == [("name", "invalid_value")]
    assert call(http, sandbox, "PUT", "/api/v2/contacts/999", {"name": "X"}).status == 404


def test_put_changing_email_frees_the_old_one(sandbox, http):
    ada = js(create(http, sandbox, email="ada@example.com"))
    assert call(http, sandbox, "PUT", f"/api/v2/contacts/{ada['id']}", {"email": "countess@example.com"}).status == 200
    assert js(call(http, sandbox, "GET", "/api/v2/contacts?email=ada%40example.com")) == []
    assert create(http, sandbox, email="ada@example.com").status == 201
    again = create(http, sandbox, email="Countess@example.com")
    assert again.status == 409 and js(again)["errors"][0]["additional_info"] == {"user_id": ada["id"]}


def test_put_on_deleted_or_blocked_contact_is_405_allow_get(sandbox, http):
    deleted = js(create(http, sandbox, email="d@example.com"))
    blocked = js(create(http, sandbox, email="b@example.com"))
    sandbox.delete_contact(deleted["id"])
    sandbox.block_contact(blocked["id"])
    for contact in (deleted, blocked):
        resp = call(http, sandbox, "PUT", f"/api/v2/contacts/{contact['id']}", {"job_title": "CTO"})
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET"
        assert "message" in js(resp)


# -- list / fields ----------------------------------------------------------------------------


def test_list_by_email_is_case_insensitive_and_matches_other_emails(sandbox, http):
    ada = js(create(http, sandbox, email="ada@example.com", other_emails=["countess@example.org"]))
    js(create(http, sandbox, name="Bob", email="bob@example.com"))
    found = call(http, sandbox, "GET", "/api/v2/contacts?email=ADA%40EXAMPLE.com")
    assert found.status == 200 and [c["id"] for c in js(found)] == [ada["id"]]
    by_other = http.request(
        "GET",
        sandbox.base_url + "/api/v2/contacts",
        fields={"email": "countess@example.org"},
        headers=urllib3.make_headers(basic_auth=f"{KEY}:X"),
    )
    assert [c["id"] for c in js(by_other)] == [ada["id"]]
    assert len(js(call(http, sandbox, "GET", "/api/v2/contacts"))) == 2
    assert js(call(http, sandbox, "GET", "/api/v2/contacts?email=nobody%40example.com")) == []


def test_contact_fields_lists_signup_method_as_custom_text(sandbox, http):
    resp = call(http, sandbox, "GET", "/api/v2/contact_fields")
    assert resp.status == 200
    fields = {f["name"]: f for f in js(resp)}
    assert fields["name"]["default"] is True and fields["name"]["type"] == "default_name"
    assert {"email", "phone", "mobile", "job_title", "company_name", "unique_external_id"} <= set(fields)
    assert fields["signup_method"]["default"] is False
    assert fields["signup_method"]["type"] == "custom_text"


def test_unknown_path_is_404_empty_and_wrong_method_is_405(sandbox, http):
    for path in ("/api/v2/tickets", "/api/v2/contacts/101", "/api/v2/contacts/abc"):
        resp = call(http, sandbox, "GET", path)
        assert resp.status == 404 and resp.data == b""
    resp = call(http, sandbox, "DELETE", "/api/v2/contacts")
    assert resp.status == 405 and "GET" in resp.headers["Allow"]


# -- rate limit -------------------------------------------------------------------------------


def test_rate_limit_headers_then_429_with_retry_after_then_recovery(http):
    with FreshdeskSandbox(KEY, rate_limit=3, window_seconds=1.0) as sb:
        remaining = []
        for key in (KEY, "wrong", KEY):  # invalid calls count too
            resp = call(http, sb, "GET", "/api/v2/contacts", key=key)
            assert resp.headers["X-RateLimit-Total"] == "3"
            assert resp.headers["X-RateLimit-Used-CurrentRequest"] == "1"
            remaining.append(resp.headers["X-RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        for _ in range(2):  # 429s do not consume budget, and keep answering 429
            limited = call(http, sb, "GET", "/api/v2/contacts")
            assert limited.status == 429
            assert js(limited) == {"message": "You have exceeded the limit of requests per minute"}
            assert int(limited.headers["Retry-After"]) >= 1
            assert limited.headers["X-RateLimit-Remaining"] == "0"
        time.sleep(1.05)
        recovered = call(http, sb, "GET", "/api/v2/contacts")
        assert recovered.status == 200 and recovered.headers["X-RateLimit-Remaining"] == "2"
        assert [r["status"] for r in sb.requests()] == [200, 401, 200, 429, 429, 200]


def test_set_rate_limit_starts_a_fresh_window(sandbox, http):
    sandbox.set_rate_limit(1, window_seconds=30)
    assert call(http, sandbox, "GET", "/api/v2/contacts").status == 200
    resp = call(http, sandbox, "GET", "/api/v2/contacts")
    assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 30
    sandbox.set_rate_limit(5)
    assert call(http, sandbox, "GET", "/api/v2/contacts").status == 200


# -- faults -----------------------------------------------------------------------------------


def test_fail_next_503_then_normal(sandbox, http):
    sandbox.fail_next(503, count=2, retry_after=7)
    for _ in range(2):
        resp = create(http, sandbox, email="ada@example.com")
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "7"
        assert "X-RateLimit-Remaining" in resp.headers
    assert create(http, sandbox, email="ada@example.com").status == 201


def test_fail_next_with_custom_body_and_until_cleared(sandbox, http):
    sandbox.fail_next(500, count=None, body={"message": "boom"})
    for _ in range(3):
        resp = call(http, sandbox, "GET", "/api/v2/contacts")
        assert resp.status == 500 and js(resp) == {"message": "boom"}
    sandbox.clear_faults()
    assert call(http, sandbox, "GET", "/api/v2/contacts").status == 200


def test_fault_does_not_apply_to_requests_rejected_earlier(sandbox, http):
    sandbox.fail_next(503)
    assert call(http, sandbox, "GET", "/api/v2/contacts", key="wrong").status == 401
    assert call(http, sandbox, "GET", "/api/v2/contacts").status == 503


def test_delay_adds_latency_for_count_requests(sandbox, http):
    sandbox.delay(0.3, count=1)
    started = time.monotonic()
    assert call(http, sandbox, "GET", "/api/v2/contacts").status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert call(http, sandbox, "GET", "/api/v2/contacts").status == 200
    assert time.monotonic() - started < 0.25


def test_drop_next_closes_the_connection_without_an_answer(sandbox, http):
    sandbox.drop_next()
    with pytest.raises(ProtocolError):
        create(http, sandbox, email="ada@example.com")
    assert sandbox.contacts() == []
    assert create(http, sandbox, email="ada@example.com").status == 201
    assert [r["status"] for r in sandbox.requests()] == [None, 201]


@pytest.mark.parametrize(
    "mode,status,body",
    [
        ("forbidden", 403, {"code": "access_denied", "message": "You are not authorized to perform this action."}),
        ("not_found", 404, None),
    ],
)
def test_modes_answer_every_call(sandbox, http, mode, status, body):
    sandbox.set_mode(mode)
    for method, path in (("GET", "/api/v2/contacts"), ("POST", "/api/v2/contacts")):
        resp = call(http, sandbox, method, path, {"name": "A", "email": "a@example.com"} if method == "POST" else None)
        assert resp.status == status
        assert (js(resp) if body is not None else resp.data) == (body if body is not None else b"")
    # auth is checked before the mode
    assert call(http, sandbox, "GET", "/api/v2/contacts", key="wrong").status == 401
    sandbox.set_mode(None)
    assert call(http, sandbox, "GET", "/api/v2/contacts").status == 200


# -- admin ------------------------------------------------------------------------------------


def test_admin_endpoints_need_no_auth_and_are_not_logged_or_limited(http):
    with FreshdeskSandbox(KEY, rate_limit=1, window_seconds=60) as sb:
        assert create(http, sb, email="ada@example.com").status == 201
        contacts = http.request("GET", sb.base_url + "/_sandbox/contacts")
        assert contacts.status == 200 and [c["email"] for c in js(contacts)] == ["ada@example.com"]
        log = js(http.request("GET", sb.base_url + "/_sandbox/requests"))
        assert [(r["method"], r["path"], r["status"]) for r in log] == [("POST", "/api/v2/contacts", 201)]
        assert isinstance(log[0]["time"], float)

        faults = http.request(
            "POST",
            sb.base_url + "/_sandbox/faults",
            body=json.dumps({"fail_status": 502, "count": 1, "retry_after": 30}),
            headers={"Content-Type": "application/json"},
        )
        assert faults.status == 204
        sb.set_rate_limit(10)
        resp = call(http, sb, "GET", "/api/v2/contacts")
        assert resp.status == 502 and resp.headers["Retry-After"] == "30"

        assert (
            http.request("POST", sb.base_url + "/_sandbox/faults", body=json.dumps({"mode": "forbidden"})).status == 204
        )
        assert call(http, sb, "GET", "/api/v2/contacts").status == 403
        assert http.request("POST", sb.base_url + "/_sandbox/faults", body=json.dumps({"clear": True})).status == 204
        assert call(http, sb, "GET", "/api/v2/contacts").status == 200

        assert http.request("POST", sb.base_url + "/_sandbox/faults", body=json.dumps({"drop": 1})).status == 204
        with pytest.raises(ProtocolError):
            call(http, sb, "GET", "/api/v2/contacts")

        assert http.request("POST", sb.base_url + "/_sandbox/reset").status == 204
        assert sb.contacts() == [] and sb.requests() == []
        assert js(create(http, sb, email="ada@example.com"))["id"] == 101
        bad = http.request("POST", sb.base_url + "/_sandbox/faults", body=json.dumps({"mode": "sideways"}))
        assert bad.status == 400


# -- transport --------------------------------------------------------------------------------


def test_keep_alive_and_concurrent_creates_get_unique_ids(sandbox, http):
    conn_pool = http.connection_from_url(sandbox.base_url)
    for _ in range(3):
        call(http, sandbox, "GET", "/api/v2/contacts")
    assert conn_pool.num_connections == 1  # one socket reused

    results, lock = [], threading.Lock()

    def worker(n):
        local = urllib3.PoolManager(retries=False)
        for i in range(5):
            resp = create(http=local, sb=sandbox, email=f"user{n}-{i}@example.com")
            with lock:
                results.append((resp.status, js(resp)["id"]))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(status == 201 for status, _ in results)
    assert len({cid for _, cid in results}) == 100


def test_stop_closes_the_port(http):
    sb = FreshdeskSandbox(KEY).start()
    url = sb.base_url
    assert call(http, sb, "GET", "/api/v2/contacts").status == 200
    sb.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        http.request("GET", url + "/api/v2/contacts", headers=urllib3.make_headers(basic_auth=f"{KEY}:X"))


# -- a populated account: seeding -------------------------------------------------------------


def test_seed_contact_stores_an_agent_created_contact_without_a_request(http):
    with FreshdeskSandbox(KEY, rate_limit=1, window_seconds=60) as sb:
        seeded = sb.seed_contact(
            name="Priya Shah",
            email="Priya.Shah@example.org",
            phone="+44 20 7946 0000",
            mobile="+447700900123",
            unique_external_id="crm-7",
            tags=["vip"],
            job_title="CFO",
            company_id=3,
            custom_fields={"signup_method": "import"},
        )
        assert seeded["id"] == 101 and seeded["deleted"] is False
        assert seeded["email"] == "priya.shah@example.org"
        assert seeded["tags"] == ["vip"] and seeded["company_id"] == 3
        assert seeded["custom_fields"] == {"signup_method": "import"}
        assert seeded["created_at"] == seeded["updated_at"] and seeded["created_at"].endswith("Z")
        assert sb.requests() == [] and sb.contact(101) == seeded and sb.contacts() == [seeded]
        # the rate-limit budget (1) is untouched: the API still answers, and the seeded contact is indexed
        found = call(http, sb, "GET", "/api/v2/contacts?email=priya.shah%40example.org")
        assert found.status == 200 and js(found) == [seeded]
        assert call(http, sb, "GET", "/api/v2/contacts/101").status == 429
        # the next API-created contact takes the next id
        sb.set_rate_limit(10)
        assert js(create(http, sb, email="new@example.com"))["id"] == 102
        with pytest.raises(KeyError):
            sb.contact(999)


def test_seeded_contacts_take_their_identifiers(sandbox, http):
    priya = sandbox.seed_contact(name="Priya", email="priya@example.org", unique_external_id="crm-7")
    resp = create(http, sandbox, email="PRIYA@example.org", unique_external_id="crm-7")
    assert resp.status == 409
    assert {e["field"]: e["additional_info"]["user_id"] for e in js(resp)["errors"]} == {
        "email": priya["id"],
        "unique_external_id": priya["id"],
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "a@example.com"},  # no name
        {"name": "A", "job_title": "CTO"},  # no identifier
        {"name": "A", "email": "a@example.com", "company_id": 99},
        {"name": "A", "email": "a@example.com", "custom_fields": {"plan": "Pro"}},
        {"name": "A", "email": "a@example.com", "favourite_colour": "blue"},
        {"name": "A", "email": "taken@example.com"},
    ],
    ids=["no_name", "no_identifier", "unknown_company", "unknown_custom_field", "unknown_field", "duplicate_email"],
)
def test_seed_contact_refuses_what_freshdesk_would_not_hold(sandbox, fields):
    sandbox.seed_contact(name="Holder", email="taken@example.com")
    with pytest.raises(ValueError):
        sandbox.seed_contact(**fields)
    assert len(sandbox.contacts()) == 1


def test_seed_contact_leaves_out_none_and_can_seed_deleted_or_blocked(sandbox, http):
    deleted = sandbox.seed_contact(name="Gone", email="gone@example.com", phone=None, deleted=True)
    blocked = sandbox.seed_contact(name="Spam", email="spam@example.com", blocked=True)
    assert deleted["deleted"] is True and deleted["phone"] is None
    assert sandbox.contact(deleted["id"]) == deleted
    assert [c["id"] for c in sandbox.contacts()] == [blocked["id"]]
    assert [c["id"] for c in sandbox.contacts(include_deleted=True)] == [deleted["id"], blocked["id"]]
    resp = call(http, sandbox, "PUT", f"/api/v2/contacts/{blocked['id']}", {"job_title": "CTO"})
    assert resp.status == 405 and resp.headers["Allow"] == "GET"


def test_admin_seed_endpoint_and_stats(sandbox, http):
    seeded = http.request(
        "POST",
        sandbox.base_url + "/_sandbox/contacts",
        body=json.dumps({"name": "Priya", "email": "priya@example.org", "deleted": True}),
    )
    assert seeded.status == 201 and js(seeded)["deleted"] is True and js(seeded)["id"] == 101
    refused = http.request("POST", sandbox.base_url + "/_sandbox/contacts", body=json.dumps({"name": "No id"}))
    assert refused.status == 400
    flag = http.request("POST", sandbox.base_url + "/_sandbox/contacts", body=json.dumps({"name": "A", "blocked": 1}))
    assert flag.status == 400
    assert sandbox.requests() == []
    call(http, sandbox, "GET", "/api/v2/contacts?email=priya%40example.org")
    call(http, sandbox, "GET", "/api/v2/contacts/101")
    stats = http.request("GET", sandbox.base_url + "/_sandbox/stats")
    assert js(stats) == {"requests": 2, "list_calls": 1, "list_rate_limited": 0}


# -- soft-deleted contacts --------------------------------------------------------------------


def test_soft_deleted_contact_409s_on_every_unique_identifier_and_reads_as_deleted(sandbox, http):
    gone = sandbox.seed_contact(name="Gone", email="gone@example.com", unique_external_id="crm-9")
    sandbox.delete_contact(gone["id"])
    stamp = sandbox.contact(gone["id"])["updated_at"]
    sandbox.delete_contact(gone["id"])  # deleting again changes nothing
    assert sandbox.contact(gone["id"])["updated_at"] == stamp
    for fields in ({"email": "GONE@example.com"}, {"unique_external_id": "crm-9", "phone": "+447700900000"}):
        resp = create(http, sandbox, **fields)
        assert resp.status == 409
        [error] = js(resp)["errors"]
        assert error["code"] == "duplicate_value" and error["message"] == "It should be a unique value"
        assert error["additional_info"] == {"user_id": gone["id"]}
    got = call(http, sandbox, "GET", f"/api/v2/contacts/{gone['id']}")
    assert got.status == 200 and js(got)["deleted"] is True and js(got)["email"] == "gone@example.com"
    with pytest.raises(KeyError):
        sandbox.delete_contact(999)


def test_put_on_soft_deleted_contact_is_405_and_changes_nothing(sandbox, http):
    gone = sandbox.seed_contact(name="Gone", email="gone@example.com", deleted=True)
    resp = call(http, sandbox, "PUT", f"/api/v2/contacts/{gone['id']}", {"tags": ["marketing-consent"]})
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET"
    assert js(resp) == {
        "message": "PUT method is not allowed on a deleted contact. It should be one of these method(s): GET"
    }
    assert sandbox.contact(gone["id"]) == gone


def test_phone_of_a_soft_deleted_contact_is_not_a_duplicate(sandbox, http):
    sandbox.seed_contact(name="Gone", phone="+447700900123", deleted=True)
    assert create(http, sandbox, phone="+447700900123").status == 201


# -- list filters and the list sub-limit ------------------------------------------------------


def test_list_filters_match_exactly_and_skip_deleted_contacts(sandbox, http):
    ada = sandbox.seed_contact(
        name="Ada", email="ada@example.com", phone="+4420", mobile="+4477", unique_external_id="u-1"
    )
    sandbox.seed_contact(name="Ada Old", email="ada.old@example.com", phone="+4420", mobile="+4477", deleted=True)
    bob = sandbox.seed_contact(name="Bob", email="bob@example.com", phone="+4420", unique_external_id="U-1x")

    def ids(query):
        resp = call(http, sandbox, "GET", "/api/v2/contacts?" + query)
        assert resp.status == 200 and isinstance(js(resp), list)
        return [c["id"] for c in js(resp)]

    assert ids("email=Ada%40Example.com") == [ada["id"]]
    assert ids("email=ada") == []
    assert ids("phone=%2B4420") == [ada["id"], bob["id"]]
    assert ids("phone=%2B442") == []
    assert ids("mobile=%2B4477") == [ada["id"]]
    assert ids("unique_external_id=u-1") == [ada["id"]]
    assert ids("unique_external_id=U-1") == []
    assert ids("email=ada.old%40example.com") == []
    assert ids("phone=%2B4420&mobile=%2B4477") == [ada["id"]]
    assert ids("updated_since=2000-01-01T00:00:00Z") == [ada["id"], bob["id"]]
    assert ids("updated_since=2999-01-01") == []
    bad = call(http, sandbox, "GET", "/api/v2/contacts?updated_since=yesterday")
    assert bad.status == 400 and error_codes(bad) == [("updated_since", "invalid_value")]


def test_list_by_unique_external_id_is_invalid_field_without_the_feature(http):
    with FreshdeskSandbox(KEY, unique_external_id_enabled=False) as sb:
        resp = call(http, sb, "GET", "/api/v2/contacts?unique_external_id=u-1")
        assert resp.status == 400 and error_codes(resp) == [("unique_external_id", "invalid_field")]


def test_list_calls_have_their_own_lower_limit_and_are_counted(sandbox, http):
    ada = sandbox.seed_contact(name="Ada", email="ada@example.com")
    sandbox.set_list_rate_limit(2, 1.0)
    for _ in range(2):
        assert call(http, sandbox, "GET", "/api/v2/contacts?email=ada%40example.com").status == 200
    limited = call(http, sandbox, "GET", "/api/v2/contacts?email=ada%40example.com")
    assert limited.status == 429
    assert js(limited) == {"message": "You have exceeded the limit of requests per minute"}
    assert limited.headers["Retry-After"] == "1"
    # other calls still go through, and the refused list call cost no account budget
    got = call(http, sandbox, "GET", f"/api/v2/contacts/{ada['id']}")
    assert got.status == 200 and got.headers["X-RateLimit-Remaining"] == "397"
    assert create(http, sandbox, email="bob@example.com").status == 201
    assert sandbox.list_calls() == 3
    assert sandbox.stats() == {"requests": 5, "list_calls": 3, "list_rate_limited": 1}
    time.sleep(1.05)
    assert call(http, sandbox, "GET", "/api/v2/contacts").status == 200
    sandbox.set_list_rate_limit(None)
    for _ in range(3):
        assert call(http, sandbox, "GET", "/api/v2/contacts").status == 200
    assert sandbox.list_calls() == 7
    sandbox.reset()
    assert sandbox.list_calls() == 0


def test_list_limit_from_the_constructor_survives_reset(http):
    with FreshdeskSandbox(KEY, list_rate_limit=1, list_window_seconds=30) as sb:
        assert call(http, sb, "GET", "/api/v2/contacts").status == 200
        resp = call(http, sb, "GET", "/api/v2/contacts")
        assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 30
        sb.set_list_rate_limit(100)
        sb.reset()  # back to the constructor's sub-limit, with a fresh window
        assert call(http, sb, "GET", "/api/v2/contacts").status == 200
        assert call(http, sb, "GET", "/api/v2/contacts").status == 429
        assert [r["status"] for r in sb.requests()] == [200, 429]


# -- updates ----------------------------------------------------------------------------------


def test_put_duplicating_another_contacts_identifier_is_409_naming_it(sandbox, http):
    ada = sandbox.seed_contact(name="Ada", email="ada@example.com", unique_external_id="u-1")
    bob = sandbox.seed_contact(name="Bob", email="bob@example.com", unique_external_id="u-2")
    gone = sandbox.seed_contact(name="Gone", email="gone@example.com", unique_external_id="u-3", deleted=True)
    for body, holder in (
        ({"email": "BOB@example.com"}, bob),
        ({"unique_external_id": "u-2"}, bob),
        ({"email": "gone@example.com"}, gone),
        ({"unique_external_id": "u-3"}, gone),
    ):
        resp = call(http, sandbox, "PUT", f"/api/v2/contacts/{ada['id']}", body)
        assert resp.status == 409
        [error] = js(resp)["errors"]
        assert error["field"] == next(iter(body)) and error["code"] == "duplicate_value"
        assert error["additional_info"] == {"user_id": holder["id"]}
    assert sandbox.contact(ada["id"]) == ada
    # its own values are no duplicates
    resp = call(
        http, sandbox, "PUT", f"/api/v2/contacts/{ada['id']}", {"email": "ada@example.com", "unique_external_id": "u-1"}
    )
    assert resp.status == 200


def test_put_tags_replace_the_list_and_no_tags_leaves_it(sandbox, http):
    ada = sandbox.seed_contact(name="Ada", email="ada@example.com", tags=["vip", "newsletter"])
    path = f"/api/v2/contacts/{ada['id']}"
    assert js(call(http, sandbox, "PUT", path, {"job_title": "CTO"}))["tags"] == ["vip", "newsletter"]
    assert js(call(http, sandbox, "PUT", path, {"tags": ["marketing-consent"]}))["tags"] == ["marketing-consent"]
    assert js(call(http, sandbox, "PUT", path, {"tags": []}))["tags"] == []
    assert sandbox.contact(ada["id"])["tags"] == []


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_unknown_company_is_400_absent_in_db(sandbox, http, method):
    ada = sandbox.seed_contact(name="Ada", email="ada@example.com", company_id=1)
    path = "/api/v2/contacts" if method == "POST" else f"/api/v2/contacts/{ada['id']}"
    for body in ({"company_id": 99}, {"other_companies": [{"company_id": 99}]}):
        payload = {"name": "B", "email": "b@example.com", **body} if method == "POST" else body
        resp = call(http, sandbox, method, path, payload)
        assert resp.status == 400
        [error] = js(resp)["errors"]
        assert (error["field"], error["code"]) == (next(iter(body)), "absent_in_db")
        assert error["message"] == "There is no company matching the given company_id"
    for body in ({"company_id": 0}, {"company_id": "2"}, {"other_companies": [{"company_id": "2"}]}):
        payload = {"name": "B", "email": "b@example.com", **body} if method == "POST" else body
        resp = call(http, sandbox, method, path, payload)
        assert resp.status == 400 and error_codes(resp) == [(next(iter(body)), "datatype_mismatch")]
    assert sandbox.contacts() == [ada]


# -- dropdown custom fields -------------------------------------------------------------------


def test_dropdown_custom_field_accepts_only_its_choices(http):
    with FreshdeskSandbox(KEY, custom_field_choices={"plan": ["Free", "Pro"]}) as sb:
        assert sb.custom_fields == ("signup_method", "plan")
        bad = create(http, sb, email="ada@example.com", custom_fields={"plan": "Enterprise"})
        assert bad.status == 400
        assert js(bad)["errors"] == [
            {"field": "plan", "message": "It should be one of these values: 'Free,Pro'", "code": "invalid_value"}
        ]
        assert create(http, sb, email="ada@example.com", custom_fields={"plan": "pro"}).status == 400  # exact
        ada = js(create(http, sb, email="ada@example.com", custom_fields={"plan": "Pro", "signup_method": "x"}))
        assert ada["custom_fields"] == {"signup_method": "x", "plan": "Pro"}
        put = call(http, sb, "PUT", f"/api/v2/contacts/{ada['id']}", {"custom_fields": {"plan": "Gold"}})
        assert put.status == 400 and error_codes(put) == [("plan", "invalid_value")]
        assert sb.contact(ada["id"])["custom_fields"]["plan"] == "Pro"
        with pytest.raises(ValueError):
            sb.seed_contact(name="B", email="b@example.com", custom_fields={"plan": "Gold"})


def test_contact_fields_lists_dropdowns_with_their_choices(sandbox, http):
    sandbox.set_custom_field_choices("plan", ["Free", "Pro"])
    sandbox.set_custom_field_choices("signup_method", ["google", "email"])
    fields = {f["name"]: f for f in js(call(http, sandbox, "GET", "/api/v2/contact_fields"))}
    assert fields["plan"]["type"] == "custom_dropdown" and fields["plan"]["choices"] == ["Free", "Pro"]
    assert fields["signup_method"]["type"] == "custom_dropdown"
    assert fields["signup_method"]["choices"] == ["google", "email"]
    sandbox.set_custom_field_choices("signup_method", None)  # back to a text field
    fields = {f["name"]: f for f in js(call(http, sandbox, "GET", "/api/v2/contact_fields"))}
    assert fields["signup_method"]["type"] == "custom_text" and "choices" not in fields["signup_method"]
    assert create(http, sandbox, email="a@example.com", custom_fields={"signup_method": "sso"}).status == 201
    with pytest.raises(ValueError):
        sandbox.set_custom_field_choices("plan", [])
