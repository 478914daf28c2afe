"""Checks of the SAM template: linters, checkov, an offline `sam build`, and structural rules.

The SAM CLI (with cfn-lint) lives in its own environment because it pins exact versions of
boto3 and others, and checkov in another. Point `SAM_CLI` / `CFN_LINT` / `CHECKOV` at the
executables, or install them at `.tools/sam/bin/` and `.tools/checkov/bin/` with `make tools`.
"""

from __future__ import annotations

import json
import os
import re
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
CHECKOV_BIN = REPO / ".tools" / "checkov" / "bin"
FUNCTION_ROLES = {"IngestFunction": "IngestFunctionRole", "RetryFunction": "RetryFunctionRole"}
FUNCTION_LOG_GROUPS = {"IngestFunction": "IngestLogGroup", "RetryFunction": "RetryLogGroup"}
# X-Ray's write actions support no resource-level permissions: "*" is the only resource they take.
XRAY_WRITE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
KMS_KEY = {"Ref": "KmsKeyArn"}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _tool(env_var: str, name: str, default_dir: Path = TOOLS_BIN) -> str:
    path = Path(os.environ.get(env_var) or default_dir / name)
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
    for queue in (retry, dlq):
        # The customer managed key when one is given, SQS-managed encryption otherwise: never neither.
        assert queue.get("KmsMasterKeyId") == {"Fn::If": ["HasKmsKey", KMS_KEY, {"Ref": "AWS::NoValue"}]}
        assert queue.get("SqsManagedSseEnabled") == {"Fn::If": ["HasKmsKey", {"Ref": "AWS::NoValue"}, True]}
    assert retry["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert dlq.get("MessageRetentionPeriod") == 1209600
    assert "RedriveAllowPolicy" in dlq


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A document's statements, with conditional ones (Fn::If) unwrapped into both branches."""
    return [statement for _, statement in _conditional_statements(document)]


def _conditional_statements(document: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(condition, statement): the condition a statement's Fn::If needs true, None for an unconditional
    one. A statement in an Fn::If's false branch gets "!condition"."""
    found: list[tuple[str | None, dict[str, Any]]] = []
    for statement in _as_list(document.get("Statement", [])):
        if isinstance(statement, dict) and "Fn::If" in statement:
            condition, when_true, when_false = statement["Fn::If"]
            for branch, name in ((when_true, condition), (when_false, f"!{condition}")):
                if isinstance(branch, dict) and "Sid" in branch:
                    found.append((name, branch))
        else:
            found.append((None, statement))
    return found


def test_policy_statements_have_no_wildcards(template: dict[str, Any]) -> None:
    statements = 0
    for owner, document in _policy_documents(template):
        # Managed policy names and SAM policy templates hide their statements from this check
        # (SQSSendMessagePolicy, for one, grants sqs:SendMessage*): only inline documents.
        assert isinstance(document, dict) and "Statement" in document, (
            f"{owner}: use an inline policy document, not {document!r}"
        )
        for condition, statement in _conditional_statements(document):
            statements += 1
            if condition == "TracingEnabled" and set(_as_list(statement.get("Action"))) <= XRAY_WRITE:
                # The one exception, and only while tracing is on (test_xray_permissions_only_with_tracing).
                assert statement.get("Resource") == "*", (owner, statement)
                continue
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
    assert set(grants) == set(FUNCTION_ROLES.values()), grants
    for fn, role in FUNCTION_ROLES.items():
        assert all(s["Resource"] == secret for s in grants[role]), grants[role]
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
        ("ApproximateAgeOfOldestMessage", "DeadLetterQueue"),
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
        "DashboardUrl",
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
    assert table["Properties"]["SSESpecification"] == {
        "Fn::If": ["HasKmsKey", {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KMS_KEY}, {"SSEEnabled": True}]
    }
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
                    "dynamodb:UpdateItem",
                ]
                users.add(owner)
    assert len(users) == 2, users  # the ingest and the retry function


# --------------------------------------------------------------------------------------------
# (4) Hardening: roles, encryption, retention, checkov, the operator's view
# --------------------------------------------------------------------------------------------
def _role_statements(template: dict[str, Any], role: str) -> list[tuple[str | None, dict[str, Any]]]:
    props = template["Resources"][role]["Properties"]
    return [pair for policy in props.get("Policies", []) for pair in _conditional_statements(policy["PolicyDocument"])]


def test_functions_run_under_their_own_roles_without_managed_policies(template: dict[str, Any]) -> None:
    # With `Policies` SAM generates the role and attaches AWSLambdaBasicExecutionRole (logs on "*") and,
    # for a conditional Tracing, AWSXrayWriteOnlyAccess ("*"): each function names its own role instead.
    for fn, role in FUNCTION_ROLES.items():
        props = template["Resources"][fn]["Properties"]
        assert props.get("Role") == {"Fn::GetAtt": [role, "Arn"]}, f"{fn} must run under {role}"
        assert "Policies" not in props, f"{fn}: its permissions belong in {role}"
        role_props = template["Resources"][role]["Properties"]
        assert template["Resources"][role]["Type"] == "AWS::IAM::Role"
        assert "ManagedPolicyArns" not in role_props, f"{role} attaches managed policies"
        trust = role_props["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ], trust
    assert "Policies" not in template.get("Globals", {}).get("Function", {})
    assert not _resources(template, "AWS::IAM::ManagedPolicy") and not _resources(template, "AWS::IAM::Policy")


def test_each_role_writes_only_its_own_log_group(template: dict[str, Any]) -> None:
    for fn, role in FUNCTION_ROLES.items():
        group = FUNCTION_LOG_GROUPS[fn]
        assert _function_prop(template, fn, "LoggingConfig")["LogGroup"] == {"Ref": group}
        logs = [
            s for _, s in _role_statements(template, role) if any(a.startswith("logs:") for a in _as_list(s["Action"]))
        ]
        assert len(logs) == 1, logs
        # A log group's Arn attribute is arn:...:log-group:<name>:* (its streams) and nothing else.
        assert logs[0]["Resource"] == {"Fn::GetAtt": [group, "Arn"]}, logs[0]
        # The stack creates the group: no logs:CreateLogGroup (which needs a wider resource).
        assert sorted(_as_list(logs[0]["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]


def test_xray_permissions_only_with_tracing(template: dict[str, Any]) -> None:
    for role in FUNCTION_ROLES.values():
        xray = [
            (c, s)
            for c, s in _role_statements(template, role)
            if any(a.startswith("xray:") for a in _as_list(s["Action"]))
        ]
        assert len(xray) == 1, xray
        condition, statement = xray[0]
        assert condition == "TracingEnabled", f"{role}: X-Ray permissions without the tracing condition"
        assert set(_as_list(statement["Action"])) == XRAY_WRITE and statement["Resource"] == "*"
    assert template["Globals"]["Function"]["Tracing"] == {"Fn::If": ["TracingEnabled", "Active", "PassThrough"]}


_TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

template = yaml_parse(open(sys.argv[1], encoding="utf-8").read())
for resource in template["Resources"].values():
    for key in ("CodeUri", "ContentUri"):  # what `sam validate` also replaces: no upload offline
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = "s3://bucket/key"

class NoManagedPolicies:
    def load(self):
        return {}

json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)
"""


def test_transformed_template_attaches_no_managed_policy_and_grants_no_wildcard_but_xray() -> None:
    # What SAM adds implicitly only shows after its transform: run SAM's own translator (it ships with
    # the SAM CLI, in its tool environment) the way `sam validate` does.
    python = Path(_tool("SAM_CLI", "sam")).parent / "python"
    result = _run([str(python), "-c", _TRANSFORM, "template.yaml"], timeout=300)
    assert result.returncode == 0, f"SAM transform failed:\n{result.stderr}"
    resources = json.loads(result.stdout)["Resources"]
    roles = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert set(roles) == set(FUNCTION_ROLES.values()), f"SAM generated roles: {sorted(set(roles))}"
    for name, props in roles.items():
        assert not props.get("ManagedPolicyArns"), f"{name}: {props['ManagedPolicyArns']}"
        for policy in props.get("Policies", []):
            for condition, statement in _conditional_statements(policy["PolicyDocument"]):
                if statement.get("Effect") != "Allow" or "*" not in _as_list(statement.get("Resource")):
                    continue
                assert condition == "TracingEnabled" and set(_as_list(statement["Action"])) <= XRAY_WRITE, (
                    name,
                    statement,
                )
    assert not [k for k, r in resources.items() if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")]


def test_ingest_concurrency_is_capped_by_a_parameter(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["IngestReservedConcurrency"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] == 0 and 1 <= parameter["Default"] <= 100
    assert "rate limit" in parameter["Description"] and "0" in parameter["Description"]
    # 0 means "no reservation", never ReservedConcurrentExecutions: 0 (which would stop the function).
    assert template["Conditions"]["CapIngestConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "IngestReservedConcurrency"}, "0"]}]
    }
    assert template["Resources"]["IngestFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["CapIngestConcurrency", {"Ref": "IngestReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }


def test_stack_deletion_keeps_the_parked_events_and_the_secret(template: dict[str, Any]) -> None:
    for logical_id in ("DeadLetterQueue", "DeadLetterQueuePolicy", "FreshdeskSecret"):
        resource = template["Resources"][logical_id]
        assert resource.get("DeletionPolicy") == "Retain", logical_id
        assert resource.get("UpdateReplacePolicy") == "Retain", logical_id


def test_a_customer_managed_key_encrypts_queues_tables_and_secret(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["KmsKeyArn"]
    assert parameter["Default"] == "" and re.fullmatch(
        parameter["AllowedPattern"], "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    assert not re.fullmatch(parameter["AllowedPattern"], "arn:aws:kms:eu-west-1:123456789012:alias/mine")
    assert template["Conditions"]["HasKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]}
    no_value = {"Ref": "AWS::NoValue"}
    resources = template["Resources"]
    for queue in ("RetryQueue", "DeadLetterQueue"):
        assert resources[queue]["Properties"]["KmsMasterKeyId"] == {"Fn::If": ["HasKmsKey", KMS_KEY, no_value]}
    for table in ("IdempotencyTable", "IdentityMapTable"):
        sse = resources[table]["Properties"]["SSESpecification"]["Fn::If"]
        assert sse[0] == "HasKmsKey" and sse[1]["KMSMasterKeyId"] == KMS_KEY and sse[1]["SSEType"] == "KMS"
    assert resources["FreshdeskSecret"]["Properties"]["KmsKeyId"] == {"Fn::If": ["HasKmsKey", KMS_KEY, no_value]}


def test_roles_may_use_only_the_given_key_and_only_through_the_services(template: dict[str, Any]) -> None:
    for role in FUNCTION_ROLES.values():
        kms = [
            (c, s)
            for c, s in _role_statements(template, role)
            if any(a.startswith("kms:") for a in _as_list(s["Action"]))
        ]
        assert len(kms) == 1, (role, kms)
        condition, statement = kms[0]
        assert condition == "HasKmsKey"
        assert sorted(_as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert statement["Resource"] == KMS_KEY
        services = statement["Condition"]["StringEquals"]["kms:ViaService"]
        assert {s["Fn::Sub"].split(".")[0] for s in services} == {"sqs", "secretsmanager", "dynamodb"}


def test_queues_refuse_calls_without_tls(template: dict[str, Any]) -> None:
    guarded = set()
    for policy in _resources(template, "AWS::SQS::QueuePolicy").values():
        props = policy["Properties"]
        for statement in _as_list(props["PolicyDocument"]["Statement"]):
            if (
                statement.get("Effect") == "Deny"
                and statement.get("Principal") == "*"
                and statement.get("Action") == "sqs:*"
                and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            ):
                queues = [q["Ref"] for q in props["Queues"]]
                assert statement["Resource"] == {"Fn::GetAtt": [queues[0], "Arn"]} and len(queues) == 1
                guarded.add(queues[0])
    assert guarded == {"RetryQueue", "DeadLetterQueue"}, guarded


def test_checkov_finds_nothing() -> None:
    result = _run(
        [
            _tool("CHECKOV", "checkov", CHECKOV_BIN),
            "--file",
            "template.yaml",
            "--framework",
            "cloudformation",
            "--compact",
            "--quiet",
            "--skip-download",  # no calls to Prisma Cloud: offline, and the same checks every run
        ],
        timeout=300,
    )
    output = (result.stdout + result.stderr).strip()
    summary = re.search(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", output)
    assert summary, f"no checkov summary:\n{output}"
    assert result.returncode == 0 and summary.group(2) == "0", f"checkov findings:\n{output}"
    assert int(summary.group(1)) > 0, output


def test_every_skipped_checkov_check_says_why(template: dict[str, Any]) -> None:
    skipped = 0
    for logical_id, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skipped += 1
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip.get("id", "")), (logical_id, skip)
            assert len(str(skip.get("comment", "")).split()) >= 8, f"{logical_id}: skip {skip['id']} without a reason"
    assert skipped, "no skipped checks found: the test reads the wrong place"


def _dashboard(template: dict[str, Any]) -> dict[str, Any]:
    dashboards = _resources(template, "AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1, dashboards
    body = next(iter(dashboards.values()))["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    return json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", body))


def _dashboard_metrics(dashboard: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """(widget title, metric) for every metric of the dashboard, with "." shorthands filled in."""
    found = []
    for widget in dashboard["widgets"]:
        previous: list[Any] = []
        for metric in widget["properties"].get("metrics", []):
            parts = [p for p in metric if not isinstance(p, dict)]
            parts = [previous[i] if p == "." and i < len(previous) else p for i, p in enumerate(parts)]
            found.append((widget["properties"]["title"], parts + [m for m in metric if isinstance(m, dict)]))
            previous = parts
    return found


def test_dashboard_shows_outcomes_drops_queues_freshdesk_and_latency(template: dict[str, Any]) -> None:
    from signal_freshdesk.core.model import DropReason, Outcome

    metrics = _dashboard_metrics(_dashboard(template))
    custom = {m[1] for _, m in metrics if m[0] == "SignalFreshdesk"}
    for _, metric in metrics:
        if metric[0] == "SignalFreshdesk":  # the EMF metrics carry exactly the service dimension
            assert metric[2:4] == ["service", "signal-freshdesk"], metric
    service = template["Globals"]["Function"]["Environment"]["Variables"]
    assert (service["POWERTOOLS_METRICS_NAMESPACE"], service["POWERTOOLS_SERVICE_NAME"]) == (
        "SignalFreshdesk",
        "signal-freshdesk",
    )
    expected = {o.value for o in Outcome} | {f"retry_{o.value}" for o in Outcome}
    # dropped_already_handled: the retry function skips an event the idempotency record says is done.
    expected |= {f"dropped_{r.value}" for r in DropReason} | {"dropped_already_handled"}
    expected |= {"freshdesk_call", "freshdesk_429", "freshdesk_rate_remaining"}
    assert expected <= custom, f"not on the dashboard: {sorted(expected - custom)}"
    aws = {(m[0], m[1], m[3]) for _, m in metrics if m[0].startswith("AWS/")}
    for queue in ("<RetryQueue.QueueName>", "<DeadLetterQueue.QueueName>"):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue) in aws
        assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue) in aws
    assert ("AWS/SQS", "ApproximateNumberOfMessagesDelayed", "<RetryQueue.QueueName>") in aws  # backoff waits
    latency = {
        m[-1].get("stat") for _, m in metrics if m[:4] == ["AWS/Lambda", "Duration", "FunctionName", "<IngestFunction>"]
    }
    assert {"p50", "p99"} <= latency, latency
    budget = [(t, m) for t, m in metrics if m[1] == "freshdesk_rate_remaining"]
    widget = next(w for w in _dashboard(template)["widgets"] if w["properties"]["title"] == budget[0][0])
    assert widget["properties"]["stat"] == "Minimum"  # a gauge: the lowest budget left, not a sum
    url = template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://") and "${OperationsDashboard}" in url and "cloudwatch" in url


def test_dashboard_metrics_are_ones_the_code_emits(template: dict[str, Any]) -> None:
    from signal_freshdesk.core.model import DropReason, Outcome

    source = "\n".join(p.read_text() for p in (REPO / "layers" / "connector" / "signal_freshdesk").rglob("*.py"))
    derived = (
        {o.value for o in Outcome} | {f"retry_{o.value}" for o in Outcome} | {f"dropped_{r.value}" for r in DropReason}
    )
    for _, metric in _dashboard_metrics(_dashboard(template)):
        if metric[0] == "SignalFreshdesk" and metric[1] not in derived:
            name = metric[1].removeprefix("dropped_")
            emitted = rf'count\(\s*"{re.escape(metric[1])}"' if name == metric[1] else rf'reason="{re.escape(name)}"'
            assert re.search(emitted, source), f"nothing emits {metric[1]}"


def test_dlq_alarm_fires_well_before_sqs_expires_parked_events(template: dict[str, Any]) -> None:
    retention = template["Resources"]["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
    ages = [
        a["Properties"]
        for a in _resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
        and a["Properties"]["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}
    ]
    assert len(ages) == 1, ages
    alarm = ages[0]
    assert alarm["Statistic"] == "Maximum" and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # At least three days left to act once it fires.
    assert alarm["Threshold"] + alarm["Period"] * alarm["EvaluationPeriods"] <= retention - 3 * 86400, alarm


def test_the_secrets_extension_is_the_default_from_a_mapping_of_aws_arm64_layers(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["SecretsExtensionLayerArn"]
    assert parameter["Default"] == "auto"
    layers = template["Mappings"]["SecretsExtensionLayers"]
    assert {"us-east-1", "eu-west-1", "eu-west-2", "ap-southeast-2", "sa-east-1"} <= set(layers)
    for region, entry in layers.items():
        arn = entry["Arm64"]
        assert f":lambda:{region}:" in arn and ":layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:" in arn, arn
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["SECRETS_EXTENSION"] == {"Fn::If": ["HasSecretsExtension", "on", "off"]}
    assert template["Conditions"]["HasSecretsExtension"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SecretsExtensionLayerArn"}, "none"]}]
    }
