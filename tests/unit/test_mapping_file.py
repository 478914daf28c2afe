"""A user's mapping file: how it is read, what each conversion and policy does, and every error it can
have. Pure: no sockets, no AWS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from signal_freshdesk.core import rules
from signal_freshdesk.core.conversions import from_table, to_boolean, to_date, to_id, to_integer, to_text
from signal_freshdesk.core.envelope import slim_event
from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.mapping import company_domain, company_ref, fill, plan_event
from signal_freshdesk.core.model import CompanyRef, Drop, DropReason, Operation, PlannedCompany, PlannedContact
from signal_freshdesk.core.rules import DEFAULT_MAPPING, MappingError, mapping_from, parse_mapping
from signal_freshdesk.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "mapping.example.json"
SCHEMA = json.loads((ROOT / "layers" / "connector" / "mapping.schema.json").read_text())


def custom(fields: list[dict[str, Any]], **top: Any) -> rules.ContactMapping:
    return parse_mapping(json.dumps({"extends": "default", "fields": fields, **top}, indent=1), base=DEFAULT_MAPPING)


def identify(**traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": "m-1",
        "userId": "usr-1",
        "timestamp": "2026-11-30T10:00:00Z",
        "traits": {"name": "Jane Doe", "email": "jane@example.com", **traits},
        "context": {"consent": {"canonical": {"marketing": True}}},
    }


def track(name: str, properties: dict[str, Any] | None = None, **traits: Any) -> dict[str, Any]:
    return {**identify(**traits), "type": "track", "event": name, "properties": properties or {}}


def planned(event: dict[str, Any], mapping: rules.ContactMapping) -> PlannedContact:
    plan = plan_event(event, mapping=mapping)
    assert isinstance(plan, PlannedContact), plan
    return plan


# --------------------------------------------------------------------------- the files we ship


def test_the_example_and_the_built_in_mapping_load_and_match_the_schema():
    validator = jsonschema.Draft202012Validator(SCHEMA)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for path in (EXAMPLE, ROOT / "layers/connector/signal_freshdesk/core/default_mapping.json"):
        assert list(validator.iter_errors(json.loads(path.read_text()))) == [], path
    example = mapping_from(EXAMPLE)
    assert len([rule for rule in example.fields if rule.origin.endswith("fields")]) == 18  # 8 built in + 10
    assert example.operation_for("plan_changed") is Operation.UPDATE


def test_a_mapping_file_in_the_repository_loads_when_there_is_one():
    # layers/connector/mapping.json is the user's file: a broken one fails the tests here (and the build).
    path = rules.bundled_mapping_path()
    if path is None:
        assert not (ROOT / "layers/connector/mapping.json").exists()
    else:
        mapping_from(path)


def test_the_build_check_names_the_line_of_a_broken_file(tmp_path):
    broken = tmp_path / "mapping.json"
    broken.write_text(
        '{"extends": "default",\n "fields": [\n  {"target": "mobile", "source": "traits.m", "convert": "phon"}\n ]\n}'
    )
    done = subprocess.run(
        [sys.executable, "-m", "signal_freshdesk.core.rules", str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "mapping.json line 3 (fields[0]): unknown conversion 'phon'" in done.stderr
    broken.write_text(EXAMPLE.read_text())
    done = subprocess.run(
        [sys.executable, "-m", "signal_freshdesk.core.rules", str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_layer_build_runs_the_check_before_shipping_the_file():
    makefile = (ROOT / "layers/connector/Makefile").read_text()
    check = makefile.index("-m signal_freshdesk.core.rules mapping.json")
    assert check < makefile.index('cp mapping.json "$(PYTHON_DIR)/signal_freshdesk/mapping.json"')


# --------------------------------------------------------------------------- choosing the mapping


def test_mapping_file_setting_picks_a_file_the_built_in_one_or_refuses_a_broken_one(tmp_path):
    assert Settings.from_env({"MAPPING_FILE": str(EXAMPLE)}).mapping.operation_for("trial_started") is not None
    assert Settings.from_env({"MAPPING_FILE": "default"}).mapping is DEFAULT_MAPPING
    broken = tmp_path / "mine.json"
    broken.write_text('{"fields": [}')
    with pytest.raises(ConfigError, match=r"mine.json line 1 column 13: not valid JSON"):
        Settings.from_env({"MAPPING_FILE": str(broken)})
    with pytest.raises(ConfigError, match="cannot be read"):
        Settings.from_env({"MAPPING_FILE": str(tmp_path / "absent.json")})


def test_the_ingest_function_refuses_to_work_with_a_mapping_it_cannot_use(tmp_path, monkeypatch, caplog):
    from signal_freshdesk.entry import ingest
    from signal_freshdesk.runtime import reset_runtime

    broken = tmp_path / "mapping.json"
    broken.write_text('{"extends": "default", "fields": [{"target": "tags", "source": "traits.x"}]}')
    monkeypatch.setenv("MAPPING_FILE", str(broken))
    monkeypatch.setenv("FRESHDESK_SECRET_ID", "s")
    monkeypatch.setenv("RETRY_QUEUE_URL", "q")
    reset_runtime()
    try:
        answer = ingest.handle({"headers": {}, "body": "{}"})
    finally:
        reset_runtime()
    assert answer["statusCode"] >= 500 and "cannot read its configuration" in answer["body"]
    errors = [getattr(record, "error", "") for record in caplog.records if record.levelname == "ERROR"]
    assert any("mapping.json line 1 (fields[0]): 'tags' cannot be a target" in error for error in errors)


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Pro plan ", "Pro plan"),
        ("", None),
        ("  ", None),
        (None, None),
        (42, None),
        ("a\x00b", None),
        ("x" * 300, "x" * 255),
    ],
)
def test_text_is_a_trimmed_string_without_control_characters_at_most_255(value, expected):
    assert to_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(42, "42"), (" u-1 ", "u-1"), ("x" * 256, None), (True, None), (1.5, None)]
)
def test_id_takes_strings_and_integers_and_is_never_cut(value, expected):
    assert to_id(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        ("12", 12),
        (" -3 ", -3),
        ("+7", 7),
        ("1.5", None),
        (1.0, None),
        (True, None),
        ("1e3", None),
        ("9" * 19, None),
    ],
)
def test_integer_takes_json_integers_and_digit_strings_only(value, expected):
    assert to_integer(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (2, None),
        ("Yes", True),
        ("n", False),
        ("TRUE", True),
        ("maybe", None),
    ],
)
def test_boolean_reads_true_false_yes_no_and_one_zero(value, expected):
    assert to_boolean(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01", "2026-12-01"),
        ("2026-12-01T23:30:00-05:00", "2026-12-01"),
        ("2026-12-01 08:00", "2026-12-01"),
        ("2026-02-30", None),
        ("01/12/2026", None),
        ("2026-12-01x", None),
        (1764547200, None),
    ],
)
def test_date_is_the_date_as_written_in_iso_8601(value, expected):
    assert to_date(value) == expected


def test_a_value_table_compares_trimmed_ignoring_case_and_falls_back_to_otherwise():
    table = {"pro": "Pro", "true": "Yes", "3": "Three"}
    assert from_table(" PRO ", table) == "Pro"
    assert from_table(True, table) == "Yes"
    assert from_table(3, table) == "Three"
    assert from_table("gold", table) is None
    assert from_table("gold", table, "Other") == "Other"
    assert from_table("", table, "Other") is None  # nothing given is not "something else"


def test_each_conversion_fills_its_field_through_the_engine():
    mapping = mapping_from(EXAMPLE)
    event = identify(
        mobile="07700 900456", plan=" PRO ", seats="12", beta="yes", trial_ends_at="2027-01-15T09:00:00Z", region="uk"
    )
    body = planned(event, mapping).contact
    assert body["mobile"] == "+447700900456"
    assert body["custom_fields"] == {
        "plan": "Pro",
        "seats": 12,
        "beta_tester": True,
        "trial_ends": "2027-01-15",
        "region": "EMEA",
    }


def test_other_emails_keeps_the_usable_addresses_of_a_list():
    mapping = custom([{"target": "other_emails", "source": "traits.emails", "convert": "email", "policy": "if_empty"}])
    body = planned(
        identify(emails=["A@Example.com", "not an email", "a@example.com", "b@example.org"]), mapping
    ).contact
    assert body["other_emails"] == ["a@example.com", "b@example.org"]


def test_a_traits_source_reads_context_traits_when_the_top_level_value_is_not_usable():
    mapping = custom([{"target": "custom_fields.seats", "source": "traits.seats", "convert": "integer"}])
    event = identify(seats="many")
    event["context"]["traits"] = {"seats": 5}
    assert planned(event, mapping).contact["custom_fields"] == {"seats": 5}


def test_a_join_leaves_out_parts_without_a_usable_value():
    mapping = custom(
        [
            {
                "target": "address",
                "source": [{"join": ["traits.street", "traits.city", "traits.zip"], "separator": ", "}],
            },
        ]
    )
    assert (
        planned(identify(street="1 High St", city="", zip="AB1 2CD"), mapping).contact["address"]
        == "1 High St, AB1 2CD"
    )


# --------------------------------------------------------------------------- policies and events


def test_create_only_goes_on_create_if_empty_on_both_and_is_flagged_for_the_update():
    mapping = mapping_from(EXAMPLE)
    plan = planned(identify(utm_source="newsletter", account_manager="Sam", mobile="+447700900456"), mapping)
    assert plan.contact["custom_fields"]["first_source"] == "newsletter"
    assert "first_source" not in plan.update.get("custom_fields", {})
    assert plan.update["custom_fields"]["account_manager"] == "Sam"
    assert plan.if_empty == frozenset({"mobile", "custom_fields.account_manager"})


def test_a_rule_limited_to_events_fills_nothing_for_other_events():
    mapping = custom(
        [
            {"target": "custom_fields.plan", "source": "properties.plan", "on": ["Plan Changed"]},
            {"target": "custom_fields.seen", "source": "traits.seen", "on": [{"type": "identify"}]},
        ],
        events=[{"event": "Plan Changed", "action": "update"}],
    )
    changed = planned(track("plan-changed", {"plan": "Pro"}, seen="x"), mapping)
    assert changed.operation is Operation.UPDATE and changed.contact["custom_fields"] == {"plan": "Pro"}
    assert planned(identify(seen="x", plan="Pro"), mapping).contact["custom_fields"] == {"seen": "x"}


def test_event_actions_create_create_or_update_update_and_everything_else_is_unsupported():
    mapping = custom(
        [], events=[{"event": "Trial Started", "action": "create"}, {"type": "identify", "action": "update"}]
    )
    assert planned(track("Trial Started"), mapping).operation is Operation.SIGN_UP
    assert planned(identify(), mapping).operation is Operation.UPDATE
    assert planned(track("Identified"), mapping).operation is Operation.IDENTIFY  # kept from the built-in events
    dropped = plan_event(track("Order Completed"), mapping=mapping)
    assert isinstance(dropped, Drop) and dropped.reason is DropReason.UNSUPPORTED_EVENT


def test_an_update_only_event_without_a_name_is_still_planned():
    mapping = custom([], events=[{"event": "Plan Changed", "action": "update"}])
    event = track("Plan Changed")
    del event["traits"]["name"]
    assert planned(event, mapping).update == {"email": "jane@example.com", "unique_external_id": "usr-1"}


def test_a_user_rule_for_a_target_replaces_the_built_in_rules_for_it_and_keeps_the_others():
    mapping = custom([{"target": "job_title", "source": "traits.role"}])
    body = planned(identify(title="CEO", role="Founder"), mapping).contact
    assert body["job_title"] == "Founder" and body["email"] == "jane@example.com"


def test_a_mapping_without_extends_is_the_whole_mapping():
    mapping = parse_mapping(
        json.dumps(
            {
                "events": [{"type": "identify", "action": "create_or_update"}],
                "fields": [
                    {"target": "name", "source": "traits.full_name"},
                    {"target": "email", "source": "traits.mail", "convert": "email"},
                ],
            }
        )
    )
    body = planned(identify(full_name="J. Doe", mail="J@Example.com"), mapping).contact
    assert body == {"name": "J. Doe", "email": "j@example.com", "tags": ["marketing-consent"]}
    assert isinstance(plan_event(track("Signed Up"), mapping=mapping), Drop)


def test_fill_names_the_rule_behind_every_field():
    mapping = mapping_from(EXAMPLE)
    filled = {item.target: item.rule for item in fill(identify(plan="pro"), mapping.fields, region="GB", creating=True)}
    assert (
        filled["custom_fields.plan"].label
        == f"mapping.example.json fields line {_line_of('custom_fields.plan')} (fields[1])"
    )
    assert filled["email"].origin == "default mapping fields"


def _line_of(needle: str) -> int:
    return next(n for n, line in enumerate(EXAMPLE.read_text().splitlines(), 1) if needle in line)


# --------------------------------------------------------------------------- retries keep what a mapping reads


def test_the_slim_event_kept_for_retries_maps_like_the_full_one_under_a_custom_mapping():
    mapping = mapping_from(EXAMPLE)
    event = identify(
        plan="pro", seats=3, region="us", account_manager="Sam", mobile="+447700900456", address={"c": "x"}
    )
    event["properties"] = {"plan": "enterprise", "trial_ends_at": "2027-01-01"}
    event["context"]["traits"] = {"utm_source": "ads"}
    event["context"]["ip"] = "203.0.113.9"
    assert plan_event(slim_event(event), mapping=mapping) == plan_event(event, mapping=mapping)
    assert "ip" not in json.dumps(slim_event(event))


# --------------------------------------------------------------------------- companies


def test_a_group_event_plans_a_company_from_its_own_traits_only():
    mapping = mapping_from(EXAMPLE)
    event = {
        "type": "group",
        "messageId": "g-1",
        "groupId": "grp-9",
        "timestamp": "2026-11-30T10:00:00Z",
        "traits": {
            "name": " Acme Ltd ",
            "website": "https://www.Acme.example/about",
            "industry": "Retail",
            "plan": "pro",
        },
        "context": {"traits": {"name": "Jane Doe", "industry": "Person's"}},
    }
    plan = plan_event(event, mapping=mapping)
    assert isinstance(plan, PlannedCompany)
    assert plan.company == {
        "name": "Acme Ltd",
        "domains": ["acme.example"],
        "industry": "Retail",
        "account_tier": "Premium",
    }
    assert plan.group_id == "grp-9" and plan.person == "group:grp-9"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("acme.com", "acme.com"),
        ("https://www.acme.co.uk/x?y", "acme.co.uk"),
        ("WWW.Acme.COM", "acme.com"),
        ("localhost", None),
        ("not a domain", None),
        ("http://", None),
        (7, None),
    ],
)
def test_company_domains_are_hosts_without_www(value, expected):
    assert company_domain(value) == expected


def test_a_contact_event_names_its_company_by_group_or_name_unless_it_gives_a_company_id():
    event = identify(company={"name": "Acme Ltd"})
    event["context"]["groupId"] = "grp-9"
    assert company_ref(event) == CompanyRef("Acme Ltd", "grp-9")
    assert planned(identify(company="Acme Ltd"), DEFAULT_MAPPING).company == CompanyRef("Acme Ltd", None)
    assert planned(identify(company="Acme Ltd", company_id=12), DEFAULT_MAPPING).company is None
    assert planned(identify(), DEFAULT_MAPPING).company is None


def test_companies_can_be_turned_off():
    mapping = custom([], companies={"enabled": False})
    dropped = plan_event({"type": "group", "groupId": "g", "traits": {"name": "Acme"}}, mapping=mapping)
    assert isinstance(dropped, Drop) and dropped.reason is DropReason.UNSUPPORTED_EVENT
    assert planned(identify(company="Acme"), mapping).company is None


# --------------------------------------------------------------------------- errors, each with its line

BROKEN = [
    ('{"fields": [}', "line 1 column 13: not valid JSON"),
    ('{"extends": "default", "feilds": []}', "line 1: unknown key 'feilds'"),
    ('{"extends": "preset"}', "line 1: 'extends' can only be \"default\""),
    (
        '{"extends": "default",\n"fields": [\n{"target": "tags", "source": "traits.t"}]}',
        "line 3 (fields[0]): 'tags' cannot be a target",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "plan", "source": "traits.p"}]}',
        "line 3 (fields[0]): unknown target 'plan'",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "custom_fields.Plan", "source": "traits.p"}]}',
        "line 3 (fields[0]): unknown target 'custom_fields.Plan'",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "email", "source": "traits.e", "convert": "text"}]}',
        "line 3 (fields[0]): email takes the conversion email, not 'text'",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "mobile", "source": "traits.m", "policy": "sometimes"}]}',
        "line 3 (fields[0]): 'policy' must be one of overwrite, if_empty, create_only",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "other_emails", "source": "traits.e", "convert": "email"}]}',
        "line 3 (fields[0]): other_emails is replaced whole by an update",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "mobile", "source": "context.ip"}]}',
        "line 3 (fields[0]): the source 'context.ip' is not kept for retries",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "mobile", "source": "traits..m"}]}',
        "line 3 (fields[0]): a source is a dotted path into the event",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "mobile", "source": []}]}',
        "line 3 (fields[0]): 'source' must name at least one place",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "language", "source": "traits.l",\n "convert": {"table": {"EN": "en", "en": "en"}}}]}',
        "line 4 (fields[0]): the table lists one value twice",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "language", "source": "traits.l",\n "convert": {"table": {}}}]}',
        "line 4 (fields[0]): 'table' must map event values",
    ),
    (
        '{"extends": "default",\n"fields": [\n{"target": "mobile", "source": "traits.m", "on": []}]}',
        "line 3 (fields[0]): 'on' must list track event names",
    ),
    (
        '{"extends": "default",\n"events": [\n{"event": "Signed Up", "action": "upsert"}]}',
        "line 3 (events[0]): 'action' must be one of create, create_or_update, update",
    ),
    (
        '{"extends": "default",\n"events": [\n{"type": "page", "action": "create"}]}',
        'line 3 (events[0]): say {"type": "identify"}',
    ),
    (
        '{"extends": "default",\n"events": [\n{"event": "Paid", "action": "create"},\n{"event": "paid", "action": "update"}]}',
        "line 4 (events[1]): the event 'paid' is listed twice",
    ),
    (
        '{"extends": "default",\n"companies": {\n"fields": [\n{"target": "industry", "source": "traits.i", "policy": "if_empty"}]}}',
        "line 4 (companies.fields[0]): company fields take the policy overwrite or create_only",
    ),
    (
        '{"extends": "default",\n"companies": {\n"fields": [\n{"target": "domains", "source": "traits.d"}]}}',
        "line 4 (companies.fields[0]): unknown target 'domains'",
    ),
    ('{"events": [], "fields": []}', "line 1: no event creates or updates contacts"),
    (
        '{"events": [{"type": "identify", "action": "create"}],\n "fields": [{"target": "email", "source": "traits.e", "convert": "email"}]}',
        "line 1: no rule fills 'name'",
    ),
    (
        '{"events": [{"type": "identify", "action": "create"}],\n "fields": [{"target": "name", "source": "traits.n"}]}',
        "line 1: no rule fills an identifier",
    ),
]


@pytest.mark.parametrize(("text", "message"), BROKEN, ids=[message for _, message in BROKEN])
def test_a_broken_mapping_is_refused_with_the_line_and_the_rule(text, message):
    with pytest.raises(MappingError) as raised:
        parse_mapping(text, "mapping.json", base=DEFAULT_MAPPING)
    assert f"mapping.json {message}" in str(raised.value)


# The schema checks a file's shape; what needs more than the shape the loader alone checks.
BEYOND_THE_SCHEMA = (
    "is not kept for retries",
    "listed twice",
    "replaced whole",
    "takes the conversion",
    "one value twice",
)
SHAPE_ERRORS = [case for case in BROKEN[1:20] if not any(phrase in case[1] for phrase in BEYOND_THE_SCHEMA)]


@pytest.mark.parametrize(("text", "message"), SHAPE_ERRORS, ids=[message for _, message in SHAPE_ERRORS])
def test_the_schema_refuses_what_the_loader_refuses_for_its_shape(text, message):
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert list(validator.iter_errors(json.loads(text))), message
