"""`check`: the mapping in use against the account's contact fields, every mismatch named by its rule."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from signal_freshdesk.core.credentials import Credentials
from signal_freshdesk.core.rules import DEFAULT_MAPPING, ContactMapping, parse_mapping
from signal_freshdesk_dev import check
from signal_freshdesk_dev.apigw import LOCAL_WEBHOOK_TOKEN
from signal_freshdesk_dev.sandbox import FreshdeskSandbox

# The standard contact fields Freshdesk lists (GET /api/v2/contact_fields), name required for agents.
STANDARD = (
    "name",
    "job_title",
    "email",
    "phone",
    "mobile",
    "twitter_id",
    "company_name",
    "address",
    "time_zone",
    "language",
    "tag_names",
    "description",
    "client_manager",
    "unique_external_id",
)


def account(*custom: dict, without: tuple[str, ...] = ()) -> list[dict]:
    """An account's contact fields: the standard ones (less `without`), then `custom`."""
    fields = [
        {"name": name, "type": f"default_{name}", "default": True, "required_for_agents": name == "name"}
        for name in STANDARD
        if name not in without
    ]
    return fields + [{"default": False, "required_for_agents": False, **field} for field in custom]


def custom(name: str, kind: str = "custom_text", **more) -> dict:
    return {"name": name, "type": kind, **more}


SIGNUP = custom("signup_method")


def extending(*rules: str) -> ContactMapping:
    """A mapping file extending the Default preset with `rules`, one a line from line 3 on."""
    lines = ",\n".join(rules)
    return parse_mapping(
        '{"extends": "default",\n "fields": [\n' + lines + "\n]}", "mapping.json", base=DEFAULT_MAPPING
    )


def only(mismatches: list[str]) -> str:
    assert len(mismatches) == 1, mismatches
    return mismatches[0]


def test_the_default_preset_fits_an_account_with_a_signup_method_field():
    assert check.mapping_mismatches(DEFAULT_MAPPING, account(SIGNUP)) == []


def test_a_custom_field_the_account_lacks_names_its_rule():
    mismatch = only(check.mapping_mismatches(DEFAULT_MAPPING, account()))
    assert mismatch.startswith("default mapping fields line 20 (fields[7]): custom_fields.signup_method: ")
    assert "contact field signup_method does not exist" in mismatch
    assert "on signed_up events (400 invalid_field)" in mismatch


def test_custom_field_names_compare_without_freshdesks_cf_prefix():
    assert check.mapping_mismatches(DEFAULT_MAPPING, account(custom("cf_signup_method"))) == []


@pytest.mark.parametrize(
    "convert, kind, says",
    [
        ("integer", "custom_text", "the conversion integer makes a number, which only a custom_number takes"),
        ("integer", "custom_checkbox", "the conversion integer makes a number, which only a custom_number takes"),
        ("boolean", "custom_number", "the conversion boolean makes true or false, which only a custom_checkbox"),
        ("date", "custom_text", "the conversion date makes a date, which only a custom_date takes"),
        ("text", "custom_number", "which takes a whole number (convert integer, or a value table of whole numbers)"),
        ("email", "custom_checkbox", "which takes true or false (convert boolean, or a value table of true and"),
        ("phone", "custom_date", "which takes a date (convert date), not text (the conversion phone)"),
        ("id", "custom_number", "not text (the conversion id)"),
    ],
)
def test_a_conversion_the_fields_type_does_not_take_is_a_mismatch(convert, kind, says):
    mapping = extending(f'{{"target": "custom_fields.seats", "source": "traits.seats", "convert": "{convert}"}}')
    mismatch = only(check.mapping_mismatches(mapping, account(SIGNUP, custom("seats", kind))))
    assert mismatch.startswith(
        f"mapping.json fields line 3 (fields[0]): custom_fields.seats: contact field seats is a {kind}"
    )
    assert says in mismatch


@pytest.mark.parametrize(
    "convert, kind",
    [
        ("integer", "custom_number"),
        ("boolean", "custom_checkbox"),
        ("date", "custom_date"),
        ("text", "custom_paragraph"),
        ("phone", "custom_phone_number"),
        ("text", "custom_url"),
        ('{"table": {"small": 1, "large": 10}}', "custom_number"),
        ('{"table": {"yes": true, "no": false}}', "custom_checkbox"),
        ('{"table": {"gold": "Gold"}, "otherwise": "Other"}', "custom_text"),
    ],
)
def test_a_conversion_the_fields_type_takes_is_no_mismatch(convert, kind):
    value = convert if convert.startswith("{") else f'"{convert}"'
    mapping = extending(f'{{"target": "custom_fields.seats", "source": "traits.seats", "convert": {value}}}')
    assert check.mapping_mismatches(mapping, account(SIGNUP, custom("seats", kind))) == []


def test_a_dropdown_filled_without_a_value_table_warns_its_values_are_not_checked():
    mapping = extending('{"target": "custom_fields.plan", "source": "traits.plan"}')
    dropdown = custom("plan", "custom_dropdown", choices=["Free", "Pro"])
    mismatch = only(check.mapping_mismatches(mapping, account(SIGNUP, dropdown)))
    assert mismatch.startswith("mapping.json fields line 3 (fields[0]): custom_fields.plan: ")
    assert 'is a custom_dropdown (choices "Free", "Pro") filled by the conversion text, not a value table' in mismatch
    assert "its values are not checked against the choices" in mismatch


@pytest.mark.parametrize(
    "convert, given",
    [
        ('{"table": {"pro": "Pro", "team": "Team"}}', '"Team"'),
        ('{"table": {"pro": "Pro"}, "otherwise": "Unknown"}', '"Unknown" (otherwise)'),
        ('{"table": {"pro": "Pro", "one": 1}}', "1"),
    ],
)
def test_a_value_table_giving_a_value_not_among_the_dropdowns_choices_is_a_mismatch(convert, given):
    mapping = extending(f'{{"target": "custom_fields.plan", "source": "traits.plan", "convert": {convert}}}')
    dropdown = custom("plan", "custom_dropdown", choices=["Free", "Pro"])
    mismatch = only(check.mapping_mismatches(mapping, account(SIGNUP, dropdown)))
    assert mismatch.endswith(f'the value table gives {given}, not among its choices "Free", "Pro"')


def test_a_value_table_within_the_dropdowns_choices_is_no_mismatch_however_they_are_listed():
    mapping = extending(
        '{"target": "custom_fields.plan", "source": "traits.plan",'
        ' "convert": {"table": {"pro": "Pro"}, "otherwise": "Free"}}'
    )
    as_texts = custom("plan", "custom_dropdown", choices=["Free", "Pro"])
    as_objects = custom("plan", "custom_dropdown", choices=[{"id": 1, "value": "Free"}, {"id": 2, "value": "Pro"}])
    assert check.mapping_mismatches(mapping, account(SIGNUP, as_texts)) == []
    assert check.mapping_mismatches(mapping, account(SIGNUP, as_objects)) == []


def test_a_value_table_giving_the_wrong_kind_of_value_for_a_typed_field_is_a_mismatch():
    mapping = extending(
        '{"target": "custom_fields.seats", "source": "traits.seats", "convert": {"table": {"small": "1"}}}',
        '{"target": "custom_fields.since", "source": "traits.since", "convert": {"table": {"old": "2020-01-01"}}}',
    )
    fields = account(SIGNUP, custom("seats", "custom_number"), custom("since", "custom_date"))
    seats, since = check.mapping_mismatches(mapping, fields)
    assert seats.startswith("mapping.json fields line 3 (fields[0]): custom_fields.seats:")
    assert seats.endswith(
        'which takes a whole number (convert integer, or a value table of whole numbers); the value table gives "1"'
    )
    assert since == (
        "mapping.json fields line 4 (fields[1]): custom_fields.since: contact field since is a custom_date,"
        " which takes a date (convert date), not a value table"
    )


def test_a_field_the_account_requires_for_agents_that_no_rule_fills_is_a_mismatch():
    required = custom("region", required_for_agents=True)
    mismatch = only(check.mapping_mismatches(DEFAULT_MAPPING, account(SIGNUP, required)))
    assert mismatch == (
        "default mapping: no rule fills contact field region, which the account marks required for agents:"
        " contacts the connector makes lack it (add a rule for custom_fields.region)"
    )
    mapping = extending('{"target": "custom_fields.region", "source": "traits.region"}')
    assert check.mapping_mismatches(mapping, account(SIGNUP, required)) == []


def test_a_required_standard_field_counts_as_filled_by_the_target_that_fills_it():
    fields = account(SIGNUP)
    for field in fields:
        field["required_for_agents"] = field["name"] in ("name", "company_name", "address")
    # company_id fills company_name; nothing fills address.
    assert check.mapping_mismatches(DEFAULT_MAPPING, fields) == [
        "default mapping: no rule fills contact field address, which the account marks required for agents:"
        " contacts the connector makes lack it (add a rule for address)"
    ]


def test_a_standard_target_the_account_does_not_list_is_a_mismatch():
    mapping = extending(
        '{"target": "mobile", "source": "traits.mobile", "convert": "phone"}',
        '{"target": "view_all_tickets", "source": "traits.sees_all", "convert": "boolean"}',
    )
    mismatches = check.mapping_mismatches(
        mapping, account(SIGNUP, without=("mobile", "client_manager", "company_name"))
    )
    assert mismatches == [
        "default mapping fields line 19 (fields[6]): company_id: the account's contact fields do not list"
        " company_name: Freshdesk would reject it (400 invalid_field)",
        "mapping.json fields line 3 (fields[0]): mobile: the account's contact fields do not list mobile:"
        " Freshdesk would reject it (400 invalid_field)",
        "mapping.json fields line 4 (fields[1]): view_all_tickets: the account's contact fields do not list"
        " client_manager: Freshdesk would reject it (400 invalid_field)",
    ]


def test_every_mismatch_is_listed_each_naming_its_rule():
    mapping = extending(
        '{"target": "custom_fields.plan", "source": "traits.plan"}',
        '{"target": "custom_fields.seats", "source": "traits.seats", "convert": "integer"}',
        '{"target": "custom_fields.beta", "source": "traits.beta", "convert": "boolean"}',
    )
    fields = account(
        custom("plan", "custom_dropdown", choices=["Pro"]),
        custom("seats"),
        custom("vip", "custom_checkbox", required_for_agents=True),
        without=("unique_external_id",),
    )
    mismatches = check.mapping_mismatches(mapping, fields)
    assert [m.split(": ")[0:2] for m in mismatches] == [
        ["default mapping fields line 17 (fields[4])", "unique_external_id"],
        ["default mapping fields line 20 (fields[7])", "custom_fields.signup_method"],
        ["mapping.json fields line 3 (fields[0])", "custom_fields.plan"],
        ["mapping.json fields line 4 (fields[1])", "custom_fields.seats"],
        ["mapping.json fields line 5 (fields[2])", "custom_fields.beta"],
        ["mapping.json", "no rule fills contact field vip, which the account marks required for agents"],
    ]


# -- through the sandbox -----------------------------------------------------------------------
PLAN_MAPPING = """{
  "extends": "default",
  "fields": [
    {"target": "custom_fields.plan", "source": "traits.plan",
     "convert": {"table": {"pro": "Pro", "free": "Free"}, "otherwise": "Other"}, "policy": "if_empty"},
    {"target": "custom_fields.seats", "source": "traits.seats", "convert": "integer"},
    {"target": "mobile", "source": "traits.mobile", "convert": "phone"}
  ],
  "companies": {"fields": [{"target": "industry", "source": "traits.industry"}]}
}
"""


@pytest.fixture
def plan_mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.json"
    path.write_text(PLAN_MAPPING, encoding="utf-8")
    return path


def test_the_sandbox_option_declares_the_custom_fields_the_mapping_fills_and_finds_no_mismatch(plan_mapping):
    out = io.StringIO()
    assert check.main(["--sandbox", "--mapping", str(plan_mapping)], out=out, env={}) == 0
    text = out.getvalue()
    assert "mapping      mapping.json, extending the Default preset: 11 contact field rules" in text
    assert "contact field plan exists (custom_dropdown), filled by mapping.json fields line 4 (fields[0])" in text
    assert "contact field seats exists (custom_number), filled by mapping.json fields line 6 (fields[1])" in text
    assert "mapping: 11 rules checked against the account's contact fields; no mismatch" in text
    assert "1 company field rule(s) not checked" in text
    assert "result: all good" in text


def test_the_mapping_is_the_functions_own_unless_the_option_overrides_it(plan_mapping):
    out = io.StringIO()
    assert check.main(["--sandbox"], out=out, env={"MAPPING_FILE": str(plan_mapping)}) == 0
    assert "contact field plan exists" in out.getvalue()
    out = io.StringIO()
    assert check.main(["--sandbox", "--mapping", "default"], out=out, env={"MAPPING_FILE": str(plan_mapping)}) == 0
    assert "the Default preset (built in): 8 contact field rules" in out.getvalue()
    assert "contact field plan" not in out.getvalue()


def test_an_account_that_does_not_fit_the_mapping_fails_with_every_mismatch_read_only(plan_mapping):
    mapping = parse_mapping(plan_mapping.read_text(), "mapping.json", base=DEFAULT_MAPPING)
    with FreshdeskSandbox(
        custom_field_choices={"plan": ("Pro", "Free")},
        custom_field_types={"seats": "custom_text"},
        required_custom_fields=("region",),
    ) as sandbox:
        target = check.Target(Credentials("sandbox", sandbox.api_key, LOCAL_WEBHOOK_TOKEN), "test", sandbox.base_url)
        out = io.StringIO()
        assert check.run_check(target, out=out, mapping=mapping) == 1
        assert [(r["method"], r["path"]) for r in sandbox.requests()] == [("GET", "/api/v2/contact_fields")]
    lines = out.getvalue().splitlines()
    assert [line for line in lines if "MISMATCH" in line] == [
        "  MISMATCH     mapping.json fields line 4 (fields[0]): custom_fields.plan: contact field plan is a"
        ' custom_dropdown; the value table gives "Other" (otherwise), not among its choices "Pro", "Free"',
        "  MISMATCH     mapping.json fields line 6 (fields[1]): custom_fields.seats: contact field seats is a"
        " custom_text, but the conversion integer makes a number, which only a custom_number takes",
        "  MISMATCH     mapping.json: no rule fills contact field region, which the account marks required for"
        " agents: contacts the connector makes lack it (add a rule for custom_fields.region)",
    ]
    assert "  FAIL         mapping: 3 mismatches in 11 rules checked against the account's contact fields" in lines
    assert lines[-1] == "result: NOT ready, see above"


def test_a_mapping_file_the_connector_cannot_use_is_reported_before_any_call(tmp_path):
    path = tmp_path / "mapping.json"
    path.write_text('{\n  "fields": [\n    {"target": "nickname", "source": "traits.nick"}\n  ]\n}\n')
    out = io.StringIO()
    assert check.main(["--sandbox", "--mapping", str(path)], out=out, env={}) == 1
    assert out.getvalue().startswith("check: mapping.json line 3 (fields[0]): unknown target 'nickname'")
