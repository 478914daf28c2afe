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
