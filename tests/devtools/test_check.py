"""`check`: a read-only credentials check against the sandbox's answers, and where the credentials come from."""

from __future__ import annotations

import io
import json
import socket
import uuid

import boto3
import pytest

from signal_freshdesk.core.credentials import Credentials
from signal_freshdesk_dev import check
from signal_freshdesk_dev.apigw import LOCAL_WEBHOOK_TOKEN
from signal_freshdesk_dev.handlers import REPO_ROOT
from signal_freshdesk_dev.local_aws import REGION

SANDBOX_KEY = "sandbox-api-key"


def run(freshdesk, api_key: str = SANDBOX_KEY) -> tuple[int, str]:
    target = check.Target(Credentials("sandbox", api_key, LOCAL_WEBHOOK_TOKEN), "test", freshdesk.base_url)
    out = io.StringIO()
    return check.run_check(target, out=out), out.getvalue()


def fix_of(status: int) -> str:
    return check.TROUBLESHOOTING[status][2].replace("`", "")


def test_good_credentials_pass_with_one_read_only_call(freshdesk):
    code, text = run(freshdesk)
    assert code == 0
    assert "200 OK: the domain and the API key are accepted" in text
    assert "contact field signup_method exists" in text
    assert "result: all good" in text
    assert [(r["method"], r["path"]) for r in freshdesk.requests()] == [("GET", "/api/v2/contact_fields")]
    assert freshdesk.contacts() == []
    assert SANDBOX_KEY not in text


def test_a_wrong_key_is_401_with_the_readmes_fix(freshdesk):
    code, text = run(freshdesk, api_key="not-the-key")
    assert code == 1
    assert "401 Unauthorized (Freshdesk code invalid_credentials)" in text
    assert "likely cause: wrong or missing API key" in text and fix_of(401) in text
    assert "not-the-key" not in text


def test_a_role_without_contact_rights_is_403_with_the_readmes_fix(freshdesk):
    freshdesk.set_mode("forbidden")
    code, text = run(freshdesk)
    assert code == 1
    assert "403 Forbidden (Freshdesk code access_denied)" in text and fix_of(403) in text


def test_a_wrong_domain_is_404_with_the_readmes_fix(freshdesk):
    freshdesk.set_mode("not_found")
    code, text = run(freshdesk)
    assert code == 1
    assert "404 Not Found" in text and "wrong Freshdesk domain" in text and fix_of(404) in text


def test_a_missing_signup_method_field_is_a_warning_that_explains_the_fallback(freshdesk):
    freshdesk.custom_fields = ()
    code, text = run(freshdesk)
    assert code == 1
    assert "200 OK" in text
    assert "contact field signup_method does not exist" in text
    # The warning is now one of the mapping's mismatches: it names the Default preset's rule, and the
    # events that rule applies to by their normalised name.
    assert "default mapping fields line 20 (fields[7]): custom_fields.signup_method:" in text
    assert "Freshdesk would reject custom_fields.signup_method on signed_up events" in text
    assert "re-sends the contact without that field, logs a warning" in text


def test_a_connection_failure_is_reported_not_raised():
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    target = check.Target(Credentials("sandbox", SANDBOX_KEY, LOCAL_WEBHOOK_TOKEN), "test", f"http://127.0.0.1:{port}")
    out = io.StringIO()
    assert check.run_check(target, out=out) == 1
    assert "no answer" in out.getvalue() and "could not connect" in out.getvalue()


@pytest.mark.parametrize(
    "error, meaning",
    [
        ("MaxRetryError: SSLError", "TLS handshake failed"),
        ("MaxRetryError: NameResolutionError", "does not resolve"),
        ("MaxRetryError: NewConnectionError", "could not connect"),
    ],
)
def test_transport_errors_say_what_they_mean(error, meaning):
    assert meaning in check.describe_transport_error(error)


def test_the_fixes_are_the_readme_troubleshooting_tables_words():
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("### Troubleshooting", 1)[1]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("|")
    ]
    for status, (symptom, cause, fix) in check.TROUBLESHOOTING.items():
        assert [symptom, cause, fix] in rows, f"README troubleshooting row for {status} changed"


def test_the_environment_supplies_domain_and_key_and_the_domain_is_validated():
    target = check.target_from_env({"FRESHDESK_DOMAIN": "https://acme.freshdesk.com", "FRESHDESK_API_KEY": "k"})
    assert target.credentials.domain == "acme" and target.base_url_override == ""
    with pytest.raises(check.CheckError, match="FRESHDESK_DOMAIN"):
        check.target_from_env({"FRESHDESK_DOMAIN": "acme.example.com/x", "FRESHDESK_API_KEY": "k"})
    with pytest.raises(check.CheckError, match="--stack"):
        check.target_from_env({})


def test_the_sandbox_option_checks_against_a_fresh_sandbox():
    out = io.StringIO()
    assert check.main(["--sandbox"], out=out) == 0
    assert "result: all good" in out.getvalue()


def test_a_deployed_stacks_secret_is_found_through_its_secretarn_output(stack):
    stack.set_secret(domain="https://acme.freshdesk.com", api_key="real-looking-key")
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    name = f"check-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(
            {
                "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"SecretArn": {"Value": stack.resources.secret_arn}},
            }
        ),
    )
    target = check.target_from_stack(name, REGION)
    assert target.credentials.domain == "acme" and target.base_url_override == ""
    assert target.credentials.base_url() == "https://acme.freshdesk.com"
    assert f"stack {name}'s secret" in target.source
    with pytest.raises(check.CheckError):
        check.target_from_stack("no-such-stack", REGION)


def test_a_secret_still_holding_placeholders_is_reported(stack):
    stack.set_secret(api_key="REPLACE_WITH_YOUR_FRESHDESK_API_KEY")
    text = stack.secrets.get_secret_value(SecretId=stack.resources.secret_arn)["SecretString"]
    with pytest.raises(check.CheckError, match="placeholder"):
        check.target_from_secret_text(text, "stack x's secret")
