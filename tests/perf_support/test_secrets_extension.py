"""The secret through the Parameters and Secrets extension (a local stand-in), with Secrets Manager (moto) behind it."""

from __future__ import annotations

import json
import socket

import pytest

from signal_freshdesk.adapters.secrets_extension import ExtensionSecretSource, extension_enabled
from signal_freshdesk.core.credentials import CredentialStore
from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.settings import Settings
from signal_freshdesk.runtime import build_secret_source
from signal_freshdesk_dev.bench.extension import ExtensionStandIn, boto3_lookup, static_lookup
from signal_freshdesk_dev.local_aws import REGION

TOKEN = "testing"  # AWS_SESSION_TOKEN in the tests' fake credentials


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def secret_id(stack):
    return stack.resources.secret_arn


@pytest.fixture
def extension(secret_id):
    """The stand-in serving a copy of the secret that differs from Secrets Manager's by its api_key."""
    value = json.dumps(
        {"domain": "sandbox", "api_key": "key-from-extension", "webhook_token": "local-webhook-token-0123456789abcdef"}
    )
    with ExtensionStandIn(static_lookup({secret_id: value}), token=TOKEN) as stand_in:
        yield stand_in


def test_reads_the_secret_through_the_extension(extension, secret_id):
    reader = ExtensionSecretSource(secret_id, port=extension.port)
    assert reader.read_secret()["api_key"] == "key-from-extension"
    assert extension.hits == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 500])
def test_an_error_answer_falls_back_to_secrets_manager_for_that_read(extension, secret_id, status):
    extension.fail_status = status
    reader = ExtensionSecretSource(secret_id, port=extension.port)
    assert reader.read_secret()["api_key"] == "sandbox-api-key"  # moto's copy
    assert not reader.absent
    extension.fail_status = 0
    assert reader.read_secret()["api_key"] == "key-from-extension"  # the extension is tried again next time


def test_a_wrong_token_is_refused_by_the_extension_and_secrets_manager_answers(extension, secret_id):
    reader = ExtensionSecretSource(secret_id, port=extension.port, env={"AWS_SESSION_TOKEN": "not-the-token"})
    assert reader.read_secret()["api_key"] == "sandbox-api-key"
    assert extension.hits == 1


def test_connection_refused_falls_back_to_secrets_manager_from_then_on(secret_id):
    reader = ExtensionSecretSource(secret_id, port=free_port())
    assert reader.read_secret()["api_key"] == "sandbox-api-key"
    assert reader.absent
    assert reader.read_secret()["api_key"] == "sandbox-api-key"


def test_without_a_session_token_the_extension_is_not_called(extension, secret_id):
    reader = ExtensionSecretSource(secret_id, port=extension.port, env={})
    assert reader.read_secret()["api_key"] == "sandbox-api-key"
    assert extension.hits == 0


def test_a_forced_read_bypasses_the_extensions_cache(extension, secret_id):
    reader = ExtensionSecretSource(secret_id, port=extension.port)
    assert reader.read_secret(force=True)["api_key"] == "sandbox-api-key"
    assert extension.hits == 0


def test_a_secret_that_is_not_json_is_a_config_error(secret_id):
    with (
        ExtensionStandIn(static_lookup({secret_id: "not json"}), token=TOKEN) as stand_in,
        pytest.raises(ConfigError, match="not valid JSON"),
    ):
        ExtensionSecretSource(secret_id, port=stand_in.port).read_secret()


def test_the_credential_store_refreshes_a_rotated_key_past_both_caches(stack, secret_id):
    # The extension caches the secret it first read; the key is then rotated in Secrets Manager.
    with ExtensionStandIn(boto3_lookup(stack.secrets.meta.endpoint_url, REGION), token=TOKEN) as stand_in:
        store = CredentialStore(ExtensionSecretSource(secret_id, port=stand_in.port), max_age=300)
        stale = store.get()
        assert stale.api_key == "sandbox-api-key"
        stack.set_secret(api_key="rotated-key")
        assert store.get().api_key == "sandbox-api-key"  # within max_age: still cached
        assert store.refresh(stale).api_key == "rotated-key"
        assert stand_in.hits == 1  # the refresh went to Secrets Manager, not to the extension's cache
        assert store.get().api_key == "rotated-key"


def test_ingest_reads_through_the_extension_and_recovers_from_a_rotation(stack, configure):
    with ExtensionStandIn(boto3_lookup(stack.secrets.meta.endpoint_url, REGION), token=TOKEN) as stand_in:
        configure(SECRETS_EXTENSION="on", PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(stand_in.port))
        status, _ = stack.post("page-view")
        assert status == 200 and stand_in.hits == 1
        stack.freshdesk.api_key = "rotated-key"
        stack.set_secret(api_key="rotated-key")
        status, body = stack.post("signed-up")
        assert status == 201 and body["outcome"] == "delivered"
        assert [r["status"] for r in stack.freshdesk.requests()] == [401, 201]
        assert stand_in.hits == 1


def test_ingest_works_when_the_extension_is_configured_but_absent(stack, configure):
    configure(SECRETS_EXTENSION="on", PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(free_port()))
    status, body = stack.post("signed-up")
    assert status == 201 and body["outcome"] == "delivered"


def test_extension_mode_on_off_and_auto(tmp_path):
    assert extension_enabled("on", {}, tmp_path)
    assert not extension_enabled("off", {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773"}, tmp_path)
    assert not extension_enabled("auto", {}, tmp_path / "missing")
    assert extension_enabled("auto", {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773"}, tmp_path)
    (tmp_path / "AWSParametersAndSecretsLambdaExtension").write_text("")
    assert extension_enabled("auto", {}, tmp_path)


def test_settings_for_the_extension():
    settings = Settings.from_env({"SECRETS_EXTENSION": "ON", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2774"})
    assert settings.secrets_extension == "on" and settings.secrets_extension_port == 2774
    assert Settings.from_env({}).secrets_extension == "auto"
    with pytest.raises(ConfigError, match="SECRETS_EXTENSION"):
        Settings.from_env({"SECRETS_EXTENSION": "maybe"})


def test_runtime_uses_secrets_manager_directly_when_the_extension_is_off():
    source = build_secret_source(Settings(secret_id="x", secrets_extension="off"))
    assert not isinstance(source, ExtensionSecretSource)
    source = build_secret_source(Settings(secret_id="x", secrets_extension="on"))
    assert isinstance(source, ExtensionSecretSource)
