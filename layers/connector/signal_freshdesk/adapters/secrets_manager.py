"""AWS Secrets Manager: read the connector's JSON secret (a `SecretSource`). boto3 is imported on first use only."""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import ConfigError, SecretUnavailable
from .boto_clients import boto3_client


def read_secret_json(secret_id: str) -> Any:
    if not secret_id:
        raise ConfigError("FRESHDESK_SECRET_ID is not set: it must name the connector's secret")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = boto3_client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        if code == "ResourceNotFoundException":
            raise ConfigError(f"the secret named by FRESHDESK_SECRET_ID does not exist ({code})") from None
        raise SecretUnavailable(f"Secrets Manager refused GetSecretValue: {code}") from None
    except BotoCoreError as exc:
        raise SecretUnavailable(f"Secrets Manager could not be reached: {type(exc).__name__}") from None
    text = response.get("SecretString")
    if not text:
        raise ConfigError("the secret has no SecretString: store it as JSON text")
    try:
        value = json.loads(text)
    except ValueError:
        raise ConfigError('the secret is not valid JSON: expected {"domain", "api_key", "webhook_token"}') from None
    return value


class SecretsManagerSource:
    """Every read goes to Secrets Manager (the CredentialStore caches in front of it)."""

    def __init__(self, secret_id: str) -> None:
        self.secret_id = secret_id

    def read_secret(self, *, force: bool = False) -> Any:
        return read_secret_json(self.secret_id)
