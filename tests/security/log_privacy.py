"""pytest plugin: no personal data and no secret in any log line the test suite produces.

Registered from tests/conftest.py (`pytest_plugins = ["tests.security.log_privacy"]`).

At `pytest_configure` one handler is attached to the root logger and to the connector's logger
("signal-freshdesk", in case it ever stops propagating). It sees every record any code emits
during the session (a record that reaches it through both loggers is handled once) and renders each
as an operator would read it: `record.getMessage()`, every attribute a caller added with `extra=`,
the exception and stack text, and the JSON line Powertools itself writes (which also holds keys
appended with `logger.append_keys`).

What is scanned (a decision): records of our loggers
("signal-freshdesk*", "signal_freshdesk*") and records logged on the root logger itself. Records of
third-party loggers (moto's werkzeug access log, urllib3's connection debug, botocore) are counted
but not scanned: they only carry what those libraries log about their own requests, at levels the
connector never enables.

A scanned record fails the whole run (exit status 1, with a redacted report at the end) when it
holds an email address, an E.164-like phone number (`+` and 8 to 15 digits), a name, email or phone
of the sample events in events/*.json or of the tests' own data, or a secret the tests use: the
sandbox API key and the other keys (`rotated-key`, `a-key-nobody-has`, ...), the webhook token, a
signing secret (also in its Basic-auth form). Test data and secrets are collected from the sources
of tests/ (dict literals and keywords such as `email=`, `api_key=`, constants named *KEY*,
*TOKEN*, *SECRET*), so a new test's data is covered without editing this file.

The connector's logger is lowered to DEBUG for the session, so a debug line that would leak once
somebody deploys with `LogLevel=DEBUG` is caught too.

Also here: the hypothesis profiles of the security tests ("security-ci" for CI, "long" for
`HYPOTHESIS_LONG=1`, which is then loaded as the default of the whole run), and the fixture
`log_privacy` (this test's scanned records and the scanner itself).
"""

from __future__ import annotations

import ast
import base64
import json
import logging
import re
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from signal_freshdesk_dev.apigw import LOCAL_WEBHOOK_TOKEN

from .helpers import register_profiles

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
EVENTS_DIR = REPO_ROOT / "events"

OUR_LOGGER = "signal-freshdesk"
SCANNED_PREFIXES = ("signal-freshdesk", "signal_freshdesk")
ROOT_NAME = "root"

# -- hypothesis profiles ("security-ci", "long"; see helpers.register_profiles) --------------------
PROFILE = register_profiles()
if PROFILE == "long":
    settings.load_profile("long")

# -- what counts as personal data or a secret ---------------------------------------------------
# Secrets the suite is known to use; more are collected from the test sources.
KNOWN_SECRETS = ("sandbox-api-key", "rotated-key", "a-key-nobody-has", LOCAL_WEBHOOK_TOKEN)

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# `+` then 8 to 15 digits, single spaces, dots or hyphens allowed between them (+44 7700 900123).
PHONE = re.compile(r"(?<![\w+])\+\d(?:[ .\-]?\d){7,14}(?![\d])")

PII_KEYS = frozenset({"name", "first_name", "last_name", "firstName", "lastName", "email", "phone", "mobile"})
IDENTITY_KEYS = PII_KEYS - {"name"}
SECRET_KEYS = frozenset({"api_key", "webhook_token", "signing_secret", "token", "secret", "password"})
SECRET_CONSTANT = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
MIN_NAME = 4  # shorter names ("A", "N", "Ctx") would match ordinary words
# Placeholders the tests use as names; they are words any message may hold.
PLACEHOLDER_NAMES = frozenset({"First", "Last", "Other", "Name", "Full Name", "Only A Name", "Some Name"})
MIN_SECRET = 8
MIN_PHONE_DIGITS = 8


@dataclass
class TestData:
    """Values that must never be logged, by kind: name, email, phone, secret."""

    values: dict[str, set[str]] = field(
        default_factory=lambda: {"name": set(), "email": set(), "phone": set(), "secret": set()}
    )

    def add(self, kind: str, value: Any) -> None:
        if not isinstance(value, str):
            return
        value = value.strip()
        if kind in ("name", "first_name", "last_name", "firstName", "lastName"):
            if len(value) >= MIN_NAME and any(c.isalpha() for c in value) and value not in PLACEHOLDER_NAMES:
                self.values["name"].add(value)
        elif kind == "email":
            if "@" in value and len(value) >= 6:
                self.values["email"].add(value)
        elif kind in ("phone", "mobile"):
            digits = re.sub(r"\D", "", value)
            if len(digits) >= MIN_PHONE_DIGITS:
                self.values["phone"].add(value)
                self.values["phone"].add(digits)
        elif (
            kind == "secret" and len(value) >= MIN_SECRET and not value.startswith("REPLACE_WITH") and " " not in value
        ):
            self.values["secret"].add(value)
            for user in (f"{value}:X", f"{value}:"):  # the Basic-auth header Freshdesk gets
                self.values["secret"].add(base64.b64encode(user.encode()).decode())


def collect_event_data(data: TestData, events_dir: Path = EVENTS_DIR) -> None:
    """Names, emails and phones of the sample events (API Gateway requests and SQS records)."""
    for path in sorted(events_dir.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except ValueError:
            continue
        for item in _json_documents(document):
            _collect_traits(data, item)


def _json_documents(value: Any) -> Iterator[Any]:
    """Every value in a JSON document, with JSON text held in strings (bodies, envelopes) opened."""
    stack = [value]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item[:1] in ("{", "["):
            try:
                stack.append(json.loads(item))
            except ValueError:
                pass


def _collect_traits(data: TestData, item: Any) -> None:
    if not isinstance(item, dict):
        return
    for key, value in item.items():
        if key in IDENTITY_KEYS or (key == "name" and (item.keys() & IDENTITY_KEYS)):
            data.add(key, value)
        if key == "traits" and isinstance(value, dict):
            for trait, trait_value in value.items():
                if trait in PII_KEYS:
                    data.add(trait, trait_value)
        if key in SECRET_KEYS:
            data.add("secret", value)


def collect_source_data(data: TestData, tests_dir: Path = TESTS_DIR) -> None:
    """Test data and secrets written in the tests' own sources."""
    for path in sorted(tests_dir.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                pairs = {
                    k.value: v
                    for k, v in zip(node.keys, node.values, strict=False)
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                }
                _collect_pairs(data, pairs, traits=False)
                traits = pairs.get("traits")
                if isinstance(traits, ast.Dict):
                    _collect_pairs(
                        data,
                        {
                            k.value: v
                            for k, v in zip(traits.keys, traits.values, strict=False)
                            if isinstance(k, ast.Constant) and isinstance(k.value, str)
                        },
                        traits=True,
                    )
            elif isinstance(node, ast.Call):
                _collect_pairs(data, {kw.arg: kw.value for kw in node.keywords if kw.arg}, traits=False)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    name = (
                        target.id
                        if isinstance(target, ast.Name)
                        else (target.attr if isinstance(target, ast.Attribute) else "")
                    )
                    if name in SECRET_KEYS or (name.isupper() and SECRET_CONSTANT.search(name)):
                        for constant in _string_constants(node.value):
                            data.add("secret", constant)


def _collect_pairs(data: TestData, pairs: dict[str, ast.AST], *, traits: bool) -> None:
    contact_like = traits or bool(pairs.keys() & IDENTITY_KEYS)
    for key, value in pairs.items():
        if key in IDENTITY_KEYS or (key == "name" and contact_like):
            for constant in _string_constants(value):
                data.add(key, constant)
        elif key in SECRET_KEYS:
            for constant in _string_constants(value):
                data.add("secret", constant)


def _string_constants(node: ast.AST | None) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [c for element in node.elts for c in _string_constants(element)]
    return []


class Scanner:
    """Finds personal data and secrets in text, and redacts them."""

    def __init__(self, data: TestData) -> None:
        self.data = data
        self._kinds: dict[str, str] = {}
        # Names as written (case-sensitive: "Shah", not "shah" in "sha256"); emails, phones and
        # secrets in any case.
        self._names = self._alternation(data.values["name"], 0)
        self._literals = self._alternation(
            data.values["email"] | data.values["phone"] | data.values["secret"], re.IGNORECASE
        )

    def _alternation(self, values: Iterable[str], flags: int) -> re.Pattern[str] | None:
        parts = []
        for value in sorted(values, key=len, reverse=True):  # the longest first: "Priya Shah", then "Priya"
            kind = next(k for k, vs in self.data.values.items() if value in vs)
            self._kinds.setdefault(value.lower(), kind)
            part = re.escape(value)
            if value[0].isalnum():
                part = r"(?<![A-Za-z0-9])" + part
            if value[-1].isalnum():
                part += r"(?![A-Za-z0-9])"
            parts.append(part)
        return re.compile("|".join(parts), flags) if parts else None

    def findings(self, text: str) -> list[tuple[str, int, int]]:
        """(kind, start, end) of each match; overlapping matches are merged into the first."""
        found: list[tuple[str, int, int]] = []
        for kind, pattern in (("email", EMAIL), ("phone", PHONE)):
            found.extend((kind, m.start(), m.end()) for m in pattern.finditer(text))
        for pattern in (self._names, self._literals):
            if pattern is not None:
                found.extend(
                    (self._kinds.get(m.group(0).lower(), "secret"), m.start(), m.end()) for m in pattern.finditer(text)
                )
        found.sort(key=lambda f: (f[1], -f[2]))
        merged: list[tuple[str, int, int]] = []
        for kind, start, end in found:
            if merged and start < merged[-1][2]:
                last = merged[-1]
                merged[-1] = (last[0], last[1], max(last[2], end))
            else:
                merged.append((kind, start, end))
        return merged

    def redact(self, text: str) -> str:
        out, position = [], 0
        for kind, start, end in self.findings(text):
            out.append(text[position:start])
            out.append(f"[{kind.upper()} REDACTED]")
            position = end
        out.append(text[position:])
        return "".join(out)


# -- capturing the records ----------------------------------------------------------------------
_STANDARD_ATTRS = frozenset(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__) | {
    "message",
    "asctime",
}


@dataclass(frozen=True)
class CapturedRecord:
    test: str
    logger: str
    level: str
    message: str
    fields: dict[str, Any]
    text: str  # everything an operator could read of the record, as scanned


@dataclass(frozen=True)
class Offence:
    record: CapturedRecord
    kinds: tuple[str, ...]
    redacted: str


def render(record: logging.LogRecord) -> tuple[str, dict[str, Any], str]:
    """(message, extra fields, full text) of a record."""
    try:
        message = record.getMessage()
    except Exception as exc:
        message = f"{record.msg!r} % {record.args!r} ({type(exc).__name__})"
    fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
    parts = [message]
    for key, value in fields.items():
        parts.append(f"{key}={_text_of(value)}")
    if record.exc_info and record.exc_info[0] is not None:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    parts.extend(_powertools_lines(record))
    return message, fields, "\n".join(parts)


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=repr, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _powertools_lines(record: logging.LogRecord) -> list[str]:
    """The JSON line(s) Powertools writes for the record, with keys appended outside `extra=`."""
    lines = []
    logger = logging.getLogger(record.name)
    for handler in logger.handlers:
        formatter = handler.formatter
        if formatter is None or "powertools" not in type(formatter).__module__:
            continue
        try:
            lines.append(formatter.format(record))
        except Exception as exc:
            lines.append(f"<powertools formatter failed: {type(exc).__name__}>")
    return lines


def scanned_logger(name: str) -> bool:
    return name == ROOT_NAME or name.startswith(SCANNED_PREFIXES)


class PrivacyHandler(logging.Handler):
    """Sees every record; scans ours and the root logger's, remembers offences and this test's records."""

    MAX_TEST_RECORDS = 20_000

    def __init__(self, scanner: Scanner) -> None:
        super().__init__(level=logging.NOTSET)
        self.scanner = scanner
        self.current_test = "<session>"
        self.test_records: list[CapturedRecord] = []
        self.offences: list[Offence] = []
        self.seen = 0
        self.scanned = 0
        self._handled: weakref.WeakSet[logging.LogRecord] = weakref.WeakSet()
        self._state = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # Powertools adds a SuppressFilter for its service to every handler on the root logger when a
        # Logger is created; this handler must see those records all the same.
        return True

    def emit(self, record: logging.LogRecord) -> None:  # runs under the handler's lock
        if record in self._handled:
            return
        self._handled.add(record)
        self.seen += 1
        if not scanned_logger(record.name):
            return
        try:
            message, fields, text = render(record)
        except Exception as exc:
            message, fields, text = f"<record not renderable: {type(exc).__name__}>", {}, ""
        captured = CapturedRecord(self.current_test, record.name, record.levelname, message, fields, text)
        with self._state:
            self.scanned += 1
            if len(self.test_records) < self.MAX_TEST_RECORDS:
                self.test_records.append(captured)
            findings = self.scanner.findings(text)
            if findings:
                kinds = tuple(sorted({kind for kind, _, _ in findings}))
                self.offences.append(Offence(captured, kinds, self.scanner.redact(text)))

    def start_test(self, nodeid: str) -> None:
        with self._state:
            self.current_test = nodeid
            self.test_records = []

    def end_test(self) -> None:
        with self._state:
            self.current_test = "<session>"


class LogPrivacy:
    """What the `log_privacy` fixture gives a test."""

    def __init__(self, handler: PrivacyHandler) -> None:
        self._handler = handler
        self.scanner = handler.scanner

    def records(self) -> list[CapturedRecord]:
        """This test's scanned records so far (our loggers and the root logger)."""
        with self._handler._state:
            return list(self._handler.test_records)

    def offences(self, records: Iterable[CapturedRecord] | None = None) -> list[Offence]:
        found = []
        for record in self.records() if records is None else records:
            findings = self.scanner.findings(record.text)
            if findings:
                found.append(
                    Offence(record, tuple(sorted({k for k, _, _ in findings})), self.scanner.redact(record.text))
                )
        return found


# -- pytest hooks -------------------------------------------------------------------------------
_KEY = pytest.StashKey["PrivacyHandler"]()
_saved_level: dict[str, int] = {}


def build_scanner() -> Scanner:
    data = TestData()
    for secret in KNOWN_SECRETS:
        data.add("secret", secret)
    collect_event_data(data)
    collect_source_data(data)
    return Scanner(data)


def pytest_configure(config: pytest.Config) -> None:
    handler = PrivacyHandler(build_scanner())
    config.stash[_KEY] = handler
    logging.getLogger().addHandler(handler)
    # The connector's Logger is created on import; lower it once it exists (see the module docstring).
    import signal_freshdesk.observability  # noqa: F401

    ours = logging.getLogger(OUR_LOGGER)
    ours.addHandler(handler)
    _saved_level[OUR_LOGGER] = ours.level
    ours.setLevel(logging.DEBUG)


def pytest_unconfigure(config: pytest.Config) -> None:
    handler = config.stash.get(_KEY, None)
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    ours = logging.getLogger(OUR_LOGGER)
    ours.removeHandler(handler)
    if OUR_LOGGER in _saved_level:
        ours.setLevel(_saved_level.pop(OUR_LOGGER))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    handler = item.config.stash.get(_KEY, None)
    if handler is not None:
        handler.start_test(item.nodeid)
    try:
        return (yield)
    finally:
        if handler is not None:
            handler.end_test()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    handler = session.config.stash.get(_KEY, None)
    if handler is not None and handler.offences:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if session.config.pluginmanager.get_plugin("terminalreporter") is None:
            print(_report(handler), file=sys.stderr)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    handler = config.stash.get(_KEY, None)
    if handler is None:
        return
    if handler.offences:
        terminalreporter.write_sep("=", "PERSONAL DATA OR SECRETS IN THE LOGS", red=True, bold=True)
        terminalreporter.write_line(_report(handler))
    else:
        terminalreporter.write_line(
            f"log privacy: {handler.scanned} of {handler.seen} log records scanned "
            "(our loggers and root), no personal data or secret found"
        )


def _report(handler: PrivacyHandler, limit: int = 40) -> str:
    headline = (
        f"{len(handler.offences)} log record(s) hold personal data or a secret "
        f"(of {handler.scanned} scanned); the run fails. Matches are redacted below."
    )
    lines = [headline, ""]
    for offence in handler.offences[:limit]:
        record = offence.record
        text = offence.redacted.replace("\n", " | ")
        if len(text) > 600:
            text = text[:600] + " ..."
        lines.append(f"- {record.test}  [{record.logger} {record.level}]  found: {', '.join(offence.kinds)}")
        lines.append(f"    {text}")
    if len(handler.offences) > limit:
        lines.append(f"... and {len(handler.offences) - limit} more")
    return "\n".join(lines)


@pytest.fixture
def log_privacy(request: pytest.FixtureRequest) -> LogPrivacy:
    handler = request.config.stash.get(_KEY, None)
    if handler is None:
        pytest.fail("the log_privacy plugin is not configured")
    return LogPrivacy(handler)
