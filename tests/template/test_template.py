"""Checks of the SAM template: linters, an offline `sam build`, and structural rules.

The SAM CLI (with cfn-lint) lives in its own environment because it pins exact versions of
boto3 and others. Point `SAM_CLI` / `CFN_LINT` at the executables, or install them at
`.tools/sam/bin/` with `make tools`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
TOOLS_BIN = REPO / ".tools" / "sam" / "bin"


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _tool(env_var: str, name: str) -> str:
    path = Path(os.environ.get(env_var) or TOOLS_BIN / name)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{name} not found at {path}: run `make tools` (or set {env_var} to the executable)",
            pytrace=False,
        )
    return str(path)


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["SAM_CLI_TELEMETRY"] = "0"
    # `sam validate` needs a region even though it does not call AWS.
    env.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    # `sam build` looks for python3.13 (with pip) on PATH: use the interpreter running the tests.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, env=_tool_env(), capture_output=True, text=True, timeout=timeout, check=False)


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long (JSON) form."""


def _construct_cfn_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    assert TEMPLATE.is_file(), f"{TEMPLATE} is missing"
    with TEMPLATE.open(encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=_CfnLoader)
    assert isinstance(doc, dict) and "Resources" in doc
    return doc


def _resources(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == rtype}


def _function_prop(template: dict[str, Any], logical_id: str, prop: str) -> Any:
    """A function property, falling back to Globals.Function like SAM does."""
    props = template["Resources"][logical_id].get("Properties", {})
    if prop in props:
        return props[prop]
    return template.get("Globals", {}).get("Function", {}).get(prop)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(owner, policy document) for every inline policy in the template."""
    for logical_id, res in template["Resources"].items():
        rtype, props = res.get("Type"), res.get("Properties", {})
        if rtype == "AWS::Serverless::Function":
            for policy in _as_list(props.get("Policies", [])):
                yield logical_id, policy
        elif rtype == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield logical_id, policy.get("PolicyDocument")
        elif rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield logical_id, props.get("PolicyDocument")


# --------------------------------------------------------------------------------------------
# (1) Linters
# --------------------------------------------------------------------------------------------
def test_cfn_lint_has_no_findings() -> None:
    result = _run([_tool("CFN_LINT", "cfn-lint"), "template.yaml"], timeout=300)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, f"cfn-lint findings:\n{findings}"


def test_sam_validate_lint_passes() -> None:
    result = _run([_tool("SAM_CLI", "sam"), "validate", "--lint", "--template-file", "template.yaml"], timeout=300)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"sam validate --lint failed:\n{output}"
    assert "is a valid SAM Template" in output, output


# --------------------------------------------------------------------------------------------
# (2) Offline build (arm64, no container)
# --------------------------------------------------------------------------------------------
def test_sam_build_produces_layer_and_functions(tmp_path: Path) -> None:
    build_dir = tmp_path / "build"  # SAM writes build.toml next to it, so inside tmp_path
    had_aws_sam = (REPO / ".aws-sam").exists()
    result = _run(
        [
            _tool("SAM_CLI", "sam"),
            "build",
            "--template-file",
            "template.yaml",
            "--build-dir",
            str(build_dir),
            "--no-cached",
        ],
        timeout=900,
    )
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    layer = build_dir / "ConnectorLayer" / "python"
    expected = [
        layer / "signal_freshdesk" / "__init__.py",
        layer / "urllib3",
        layer / "phonenumbers",
        layer / "aws_lambda_powertools",
        build_dir / "IngestFunction" / "app.py",
        build_dir / "RetryFunction" / "app.py",
    ]
    missing = [str(p.relative_to(build_dir)) for p in expected if not p.exists()]
    assert not missing, f"missing from the build: {missing}"
    assert had_aws_sam or not (REPO / ".aws-sam").exists(), "sam build wrote .aws-sam into the repository"
    # Bytecode ships with the layer (Lambda cannot write it under /opt), valid without source timestamps.
    for package, module in (("core", "ingest"), ("core", "retry"), ("core", "mapping"), ("adapters", "freshdesk")):
        pyc = layer / "signal_freshdesk" / package / "__pycache__" / f"{module}.cpython-313.pyc"
        assert pyc.exists(), f"{pyc.name} is not in the built layer"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc.name} is not an unchecked-hash pyc (flags {flags:#b})"
    assert (layer / "urllib3" / "__pycache__").is_dir()


# --------------------------------------------------------------------------------------------
# (3) Structure
# --------------------------------------------------------------------------------------------
def test_webhook_route_is_post_events_with_payload_v2(template: dict[str, Any]) -> None:
    events = template["Resources"]["IngestFunction"]["Properties"].get("Events", {})
    routes = [e["Properties"] for e in events.values() if e.get("Type") == "HttpApi"]
    assert len(routes) == 1, f"expected one HttpApi event on IngestFunction, got {routes}"
    route = routes[0]
    assert route.get("Path") == "/events"
    assert str(route.get("Method", "")).upper() == "POST"
    assert route.get("PayloadFormatVersion") == "2.0"
    assert route.get("ApiId") == {"Ref": "WebhookApi"}
    assert _resources(template, "AWS::Serverless::HttpApi").keys() == {"WebhookApi"}


def test_webhook_api_is_throttled_and_access_logged(template: dict[str, Any]) -> None:
    props = template["Resources"]["WebhookApi"]["Properties"]
    settings = props.get("DefaultRouteSettings", {})
    assert "ThrottlingBurstLimit" in settings and "ThrottlingRateLimit" in settings
    destination = props.get("AccessLogSettings", {}).get("DestinationArn", {})
    group = destination.get("Fn::GetAtt", [None])[0]
    assert template["Resources"].get(group, {}).get("Type") == "AWS::Logs::LogGroup"


def test_ingest_timeout_is_under_api_gateway_limit(template: dict[str, Any]) -> None:
    timeout = _function_prop(template, "IngestFunction", "Timeout")
    assert isinstance(timeout, int) and timeout < 30, timeout


def test_retry_queue_visibility_covers_six_function_timeouts(template: dict[str, Any]) -> None:
    timeout = _function_prop(template, "RetryFunction", "Timeout")
    assert isinstance(timeout, int), timeout
    visibility = template["Resources"]["RetryQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout, (visibility, timeout)


def _retry_event_sources(template: dict[str, Any]) -> list[dict[str, Any]]:
    queue_arn = {"Fn::GetAtt": ["RetryQueue", "Arn"]}
    sources = [
        r["Properties"]
        for r in _resources(template, "AWS::Lambda::EventSourceMapping").values()
        if r["Properties"].get("EventSourceArn") == queue_arn
        and r["Properties"].get("FunctionName") == {"Ref": "RetryFunction"}
    ]
    for event in template["Resources"]["RetryFunction"]["Properties"].get("Events", {}).values():
        if event.get("Type") == "SQS" and event["Properties"].get("Queue") == queue_arn:
            sources.append(event["Properties"])
    return sources


def test_retry_event_source_reports_item_failures_and_caps_concurrency(template: dict[str, Any]) -> None:
    sources = _retry_event_sources(template)
    assert len(sources) == 1, f"expected one event source from RetryQueue to RetryFunction, got {sources}"
    source = sources[0]
    assert "ReportBatchItemFailures" in source.get("FunctionResponseTypes", [])
    assert "MaximumConcurrency" in source.get("ScalingConfig", {})
    assert source.get("BatchSize", 10) <= 10


def test_queues_are_encrypted_and_redrive_to_dlq(template: dict[str, Any]) -> None:
    retry = template["Resources"]["RetryQueue"]["Properties"]
    dlq = template["Resources"]["DeadLetterQueue"]["Properties"]
    assert retry.get("SqsManagedSseEnabled") is True and dlq.get("SqsManagedSseEnabled") is True
    assert retry["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert dlq.get("MessageRetentionPeriod") == 1209600
    assert "RedriveAllowPolicy" in dlq


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A document's statements, with conditional ones (Fn::If) unwrapped into both branches."""
    found = []
    for statement in _as_list(document.get("Statement", [])):
        if isinstance(statement, dict) and "Fn::If" in statement:
            found.extend(b for b in statement["Fn::If"][1:] if isinstance(b, dict) and "Sid" in b)
        else:
            found.append(statement)
    return found


def test_policy_statements_have_no_wildcards(template: dict[str, Any]) -> None:
    statements = 0
    for owner, document in _policy_documents(template):
        # Managed policy names and SAM policy templates hide their statements from this check
        # (SQSSendMessagePolicy, for one, grants sqs:SendMessage*): only inline documents.
        assert isinstance(document, dict) and "Statement" in document, (
            f"{owner}: use an inline policy document, not {document!r}"
        )
        for statement in _statements(document):
            statements += 1
            assert "NotAction" not in statement and "NotResource" not in statement, (owner, statement)
            for action in _as_list(statement.get("Action")):
                assert isinstance(action, str) and "*" not in action, f"{owner}: wildcard action {action!r}"
            for resource in _as_list(statement.get("Resource")):
                assert resource != "*", f"{owner}: Resource '*' in {statement}"
                assert "*" not in json.dumps(resource), f"{owner}: wildcard resource {resource!r}"
    assert statements >= 4, "expected inline statements on both functions"


def test_no_sam_sqs_event_attaching_the_account_wide_poller_policy(template: dict[str, Any]) -> None:
    # SAM's SQS event attaches AWSLambdaSQSQueueExecutionRole (receive/delete on every queue).
    for logical_id, fn in _resources(template, "AWS::Serverless::Function").items():
        for name, event in fn.get("Properties", {}).get("Events", {}).items():
            assert event.get("Type") != "SQS", f"{logical_id}.{name}: use an EventSourceMapping"


def test_secret_access_is_limited_to_the_one_secret(template: dict[str, Any]) -> None:
    secret = {"Fn::If": ["CreateSecret", {"Ref": "FreshdeskSecret"}, {"Ref": "ExistingSecretArn"}]}
    grants: dict[str, list[Any]] = {}
    for owner, document in _policy_documents(template):
        if not isinstance(document, dict):
            continue
        for statement in _statements(document):
            if any(a.startswith("secretsmanager:") for a in _as_list(statement.get("Action"))):
                grants.setdefault(owner, []).append(statement)
    assert set(grants) == {"IngestFunction", "RetryFunction"}, grants
    for fn, statements in grants.items():
        assert all(s["Resource"] == secret for s in statements), statements
        assert _function_prop(template, fn, "Environment")["Variables"]["FRESHDESK_SECRET_ID"] == secret


def test_no_parameter_carries_an_api_key(template: dict[str, Any]) -> None:
    for name in template.get("Parameters", {}):
        normalised = name.lower().replace("_", "").replace("-", "")
        assert "apikey" not in normalised, f"parameter {name} would put the API key in plain text"


def test_secret_generates_the_webhook_token(template: dict[str, Any]) -> None:
    secret = template["Resources"]["FreshdeskSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret.get("Condition") == "CreateSecret"
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["GenerateStringKey"] == "webhook_token"
    assert generate.get("PasswordLength", 32) >= 32
    assert generate.get("ExcludePunctuation") is True
    assert set(json.loads(generate["SecretStringTemplate"])) == {"domain", "api_key"}


def test_log_groups_have_retention_and_functions_use_them(template: dict[str, Any]) -> None:
    groups = _resources(template, "AWS::Logs::LogGroup")
    assert groups, "no log groups"
    for logical_id, group in groups.items():
        assert "RetentionInDays" in group.get("Properties", {}), f"{logical_id} keeps logs forever"
    for fn in ("IngestFunction", "RetryFunction"):
        target = (_function_prop(template, fn, "LoggingConfig") or {}).get("LogGroup")
        assert isinstance(target, dict) and target.get("Ref") in groups, f"{fn} logs to {target!r}"


def test_function_environment_matches_the_contract(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for name in (
        "FRESHDESK_SECRET_ID",
        "RETRY_QUEUE_URL",
        "DLQ_URL",
        "DEFAULT_PHONE_REGION",
        "CONSENT_MODE",
        "MAX_ATTEMPTS",
        "MAX_RETRY_AGE_SECONDS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
    ):
        assert name in variables, name
    assert variables["RETRY_QUEUE_URL"] == {"Ref": "RetryQueue"}
    assert variables["DLQ_URL"] == {"Ref": "DeadLetterQueue"}


def test_alarms_cover_the_failure_paths(template: dict[str, Any]) -> None:
    watched = set()
    for alarm in _resources(template, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        dimension = props["Dimensions"][0]["Value"]
        target = dimension.get("Ref") or dimension.get("Fn::GetAtt", [None])[0]
        watched.add((props["MetricName"], target))
        assert props.get("AlarmActions") == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }
    assert {
        ("ApproximateNumberOfMessagesVisible", "DeadLetterQueue"),
        ("ApproximateAgeOfOldestMessage", "RetryQueue"),
        ("Errors", "IngestFunction"),
        ("Errors", "RetryFunction"),
        ("Throttles", "IngestFunction"),
        ("Throttles", "RetryFunction"),
        ("5xx", "WebhookApi"),
    } <= watched, watched


def test_outputs_never_expose_the_token(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in (
        "WebhookUrl",
        "SecretArn",
        "WebhookTokenCommand",
        "RetryQueueUrl",
        "DeadLetterQueueUrl",
        "IngestFunctionName",
        "RetryFunctionName",
    ):
        assert name in outputs, name
    assert "/events" in json.dumps(outputs["WebhookUrl"]["Value"])
    assert "get-secret-value" in json.dumps(outputs["WebhookTokenCommand"]["Value"])
    assert "resolve:secretsmanager" not in json.dumps(outputs)


def test_idempotency_table_expires_items_and_only_the_functions_use_it(template: dict[str, Any]) -> None:
    table = template["Resources"]["IdempotencyTable"]
    assert table["Condition"] == "IdempotencyEnabled"
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["IDEMPOTENCY_TABLE"] == {"Fn::If": ["IdempotencyEnabled", {"Ref": "IdempotencyTable"}, ""]}
    for owner, document in _policy_documents(template):
        for statement in _statements(document):
            if any(a.startswith("dynamodb:") for a in _as_list(statement.get("Action"))):
                assert statement["Resource"] in (
                    {"Fn::GetAtt": ["IdempotencyTable", "Arn"]},
                    {"Fn::GetAtt": ["IdentityMapTable", "Arn"]},
                ), (owner, statement)


def test_the_identity_map_table_expires_people_and_the_functions_only_read_and_write_items(
    template: dict[str, Any],
) -> None:
    table = template["Resources"]["IdentityMapTable"]
    assert table["Condition"] == "IdentityMapEnabled"
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["IDENTITY_MAP_TABLE"] == {"Fn::If": ["IdentityMapEnabled", {"Ref": "IdentityMapTable"}, ""]}
    users = set()
    for owner, document in _policy_documents(template):
        for statement in _statements(document):
            if statement.get("Resource") == {"Fn::GetAtt": ["IdentityMapTable", "Arn"]}:
                assert sorted(_as_list(statement["Action"])) == [
                    "dynamodb:BatchGetItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:PutItem",
                ]
                users.add(owner)
    assert len(users) == 2, users  # the ingest and the retry function
