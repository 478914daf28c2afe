"""The secret through the AWS Parameters and Secrets Lambda Extension: one localhost GET, no boto3.

Importing boto3 and building a Secrets Manager client is the largest single cost of a cold start
(see docs/performance.md). When the extension's layer is attached to the function, it serves

    GET http://localhost:2773/secretsmanager/get?secretId=<id>
    X-Aws-Parameters-Secrets-Token: $AWS_SESSION_TOKEN

and answers with the GetSecretValue JSON (`SecretString` inside), from its own cache of up to
`SECRETS_MANAGER_TTL` (300 s by default). The extension can only be called while the function is
invoked, never during INIT: the connector reads its secret on first use, inside an invocation.

Secrets Manager itself (boto3, `secrets_manager.read_secret_json`) is still used:
- when the extension cannot be reached (not attached, another port): from then on in this container;
- for a single read, when the extension answers anything but 200: Secrets Manager's own error then
  says what is wrong (missing secret, access denied);
- for a forced read after Freshdesk answered 401. The extension would answer from its cache, which
  may hold the key that was just rotated away; the extension documents no way to skip that cache.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import urllib3

from ..core.errors import ConfigError
from ..observability import logger
from . import secrets_manager

DEFAULT_PORT = 2773
HOST = "localhost"
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
EXTENSIONS_DIR = Path("/opt/extensions")
# The extension answers from memory when warm; a miss costs one GetSecretValue, well under a second.
CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 3.0


class ExtensionUnreachable(Exception):
    """Nothing listens on the extension's port: it is not attached to this function."""


class ExtensionRefused(Exception):
    """The extension answered, but not with the secret (its status is in the message, never a value)."""


def extension_enabled(mode: str, env: Mapping[str, str] | None = None, extensions_dir: Path = EXTENSIONS_DIR) -> bool:
    """`on`/`off` as configured; `auto`: when the extension's port is configured or its layer is attached."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    env = os.environ if env is None else env
    if env.get(PORT_VARIABLE, "").strip():
        return True
    try:
        names = [p.name.lower() for p in extensions_dir.iterdir()]
    except OSError:
        return False
    return any("parametersandsecrets" in name.replace("-", "").replace("_", "") for name in names)


class ExtensionSecretSource:
    """A `SecretSource`: the connector's JSON secret through the extension, with Secrets Manager as the
    fallback. Not thread-safe on its own: the CredentialStore's lock serialises reads.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        port: int = DEFAULT_PORT,
        host: str = HOST,
        env: Mapping[str, str] | None = None,
        fallback: Callable[[str], Any] = secrets_manager.read_secret_json,
    ) -> None:
        self.secret_id = secret_id
        self._port = port
        self._host = host
        self._env = os.environ if env is None else env
        self._fallback = fallback
        self._pool: urllib3.HTTPConnectionPool | None = None
        self.absent = False

    def read_secret(self, *, force: bool = False) -> Any:
        if not self.secret_id:
            raise ConfigError("FRESHDESK_SECRET_ID is not set: it must name the connector's secret")
        if not force and not self.absent:
            try:
                value = self.read_via_extension()
            except ExtensionUnreachable as exc:
                self.absent = True
                _warn(
                    "the Parameters and Secrets extension is not reachable; reading the secret from "
                    "Secrets Manager from now on",
                    str(exc),
                )
            except ExtensionRefused as exc:
                _warn(
                    "the Parameters and Secrets extension did not return the secret; asking Secrets Manager", str(exc)
                )
            else:
                return value
        return self._fallback(self.secret_id)

    def read_via_extension(self) -> Any:
        token = self._env.get("AWS_SESSION_TOKEN", "")
        if not token:
            raise ExtensionUnreachable("AWS_SESSION_TOKEN is not set, so the extension cannot be called")
        if self._pool is None:
            self._pool = urllib3.HTTPConnectionPool(
                self._host,
                self._port,
                maxsize=1,
                retries=False,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            )
        try:
            response = self._pool.request(
                "GET",
                f"/secretsmanager/get?secretId={quote(self.secret_id, safe='')}",
                headers={TOKEN_HEADER: token},
                redirect=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:  # refused: no extension on this port
            raise ExtensionUnreachable(f"connection to port {self._port} failed: {type(exc).__name__}") from None
        except urllib3.exceptions.HTTPError as exc:  # timeout or a dropped connection: try again next time
            raise ExtensionRefused(f"no answer: {type(exc).__name__}") from None
        if response.status != 200:
            raise ExtensionRefused(f"the extension answered HTTP {response.status}")
        try:
            document = json.loads(response.data)
        except ValueError:
            raise ExtensionRefused("the extension's answer is not JSON") from None
        text = document.get("SecretString") if isinstance(document, dict) else None
        if not text:
            raise ConfigError("the secret has no SecretString: store it as JSON text")
        try:
            return json.loads(text)
        except ValueError:
            raise ConfigError('the secret is not valid JSON: expected {"domain", "api_key", "webhook_token"}') from None


def _warn(message: str, detail: str) -> None:
    logger.warning(message, extra={"detail": detail})
