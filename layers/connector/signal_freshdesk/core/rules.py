"""A contact mapping as data: which events reach Freshdesk, and which rule fills each field.

The Default preset is one such mapping (`default_mapping.json`, built in); a user's mapping file
replaces it, or extends it with `"extends": "default"`. Loading checks everything that can be checked
without the account (`make check` compares with the account's own fields): a mapping that loads is
one the engine in `mapping` can apply. Every error names the line of the file it is about.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .model import Operation

CONVERSIONS = ("text", "id", "email", "phone", "integer", "boolean", "date")
POLICIES = ("overwrite", "if_empty", "create_only")
ACTIONS = {"create": Operation.SIGN_UP, "create_or_update": Operation.IDENTIFY, "update": Operation.UPDATE}
# Standard contact fields a rule may fill, with the conversions that make a value Freshdesk accepts.
CONTACT_TARGETS: dict[str, tuple[str, ...]] = {
    "name": ("text", "email"),
    "email": ("email",),
    "phone": ("phone", "text"),
    "mobile": ("phone", "text"),
    "twitter_id": ("text", "id"),
    "unique_external_id": ("id", "text"),
    "other_emails": ("email",),
    "company_id": ("integer",),
    "view_all_tickets": ("boolean",),
    "address": ("text",),
    "description": ("text",),
    "job_title": ("text",),
    "language": ("text", "table"),
    "time_zone": ("text", "table"),
}
COMPANY_TARGETS: dict[str, tuple[str, ...]] = {
    "description": ("text",),
    "note": ("text",),
    "health_score": ("text", "table"),
    "account_tier": ("text", "table"),
    "industry": ("text", "table"),
    "renewal_date": ("date",),
}
# Fields the connector keeps to itself: tags carry only the consent tag (merged, never replaced), and a
# company is linked through `company_id`.
RESERVED_TARGETS = {
    "tags": "tags are the connector's own: it adds and removes only the marketing-consent tag",
    "other_companies": "a contact's companies are linked through company_id (see companies)",
    "custom_fields": "name the custom field: custom_fields.<name>",
}
_CUSTOM_FIELD = re.compile(r"^custom_fields\.([a-z0-9_]{1,64})$")
# Where a source may read: what the retry queue keeps of an event (envelope.slim_event).
SOURCE_ROOTS = ("traits", "context.traits", "properties", "context.groupId")
TOP_LEVEL_SOURCES = ("type", "event", "messageId", "userId", "user_id", "timestamp")
SOURCE_DEPTH = 4
_PATH = re.compile(r"^[A-Za-z_$][\w$-]*(?:\.[A-Za-z_$][\w$-]*)*$")
_NAME_SEPARATORS = re.compile(r"[\s_-]+")
# The name identify calls go by: no track event's normalised name starts with "$type:".
IDENTIFY_CALL = "$type:identify"


class MappingError(ConfigError):
    """A mapping file the connector cannot use. The message names the file, the line and the rule."""


def normalise_event_name(name: object) -> str:
    """`Signed Up`, `signed_up` and `signed-up` all become `signed_up`."""
    if not isinstance(name, str):
        return ""
    return _NAME_SEPARATORS.sub("_", name.strip().lower()).strip("_")


Path_ = tuple[str, ...]


@dataclass(frozen=True)
class Join:
    """Several values joined by `separator` (first and last name): each part is its own list of
    alternatives, and a part with no usable value is left out."""

    parts: tuple[tuple[Path_, ...], ...]
    separator: str = " "


Source = Path_ | Join


@dataclass(frozen=True)
class FieldRule:
    """One rule: where a value comes from, what it becomes, and when it is sent.

    `sources` are alternatives: the first with a usable value wins. A `traits.x` path reads the event's
    top-level `traits`, then `context.traits` (top level wins, but only with a usable value).
    `events` (normalised names) limits the rule to those events; None: every contact event.
    """

    target: str
    sources: tuple[Source, ...]
    convert: str = "text"
    table: Mapping[str, Any] | None = None
    otherwise: Any = None
    policy: str = "overwrite"
    events: frozenset[str] | None = None
    line: int = 0
    index: int = 0
    origin: str = ""

    @property
    def label(self) -> str:
        """Where the rule is written: `mapping.json line 12 (fields[3])`."""
        return f"{self.origin} line {self.line} (fields[{self.index}])"

    def applies_to(self, event_name: str) -> bool:
        return self.events is None or event_name in self.events


@dataclass(frozen=True)
class EventRule:
    """Which events are contact events, and what they do: `name` is IDENTIFY_CALL for identify calls,
    else the normalised name of a track event."""

    name: str
    operation: Operation
    line: int = 0


@dataclass(frozen=True)
class ContactMapping:
    origin: str
    events: tuple[EventRule, ...]
    fields: tuple[FieldRule, ...]
    companies: bool = True
    company_fields: tuple[FieldRule, ...] = ()
    extends: str = ""

    def operation_for(self, name: str) -> Operation | None:
        for rule in self.events:
            if rule.name == name:
                return rule.operation
        return None

    def rules_for(self, target: str) -> tuple[FieldRule, ...]:
        return tuple(rule for rule in self.fields if rule.target == target)


# -- reading a file, with the line of every object ---------------------------------------------------
class _Located(dict[str, Any]):
    """A JSON object that knows the line it starts on."""

    line = 0


def _decoder() -> json.JSONDecoder:
    decoder = json.JSONDecoder()

    def parse_object(state: tuple[str, int], *args: Any) -> tuple[dict[str, Any], int]:
        text, end = state
        found, after = json.decoder.JSONObject(state, *args)  # type: ignore[attr-defined]
        located = _Located(found)
        located.line = text.count("\n", 0, end) + 1
        return located, after

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder


def parse_mapping(text: str, origin: str = "mapping.json", *, base: ContactMapping | None = None) -> ContactMapping:
    """A mapping from the text of a mapping file. `base` is the mapping `"extends": "default"` builds on.

    Raises MappingError naming the line of the first problem found."""
    try:
        document = _decoder().decode(text)
    except json.JSONDecodeError as exc:
        raise MappingError(f"{origin} line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from None
    return _Reader(origin).mapping(document, base)


def load_mapping(path: str | Path, *, base: ContactMapping | None = None) -> ContactMapping:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"mapping file {file}: cannot be read: {exc}") from None
    return parse_mapping(text, file.name, base=base)


class _Reader:
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: object, message: str, rule: str = "") -> MappingError:
        line = getattr(where, "line", 0)
        place = f"{self.origin} line {line}" if line else self.origin
        return MappingError(f"{place}{f' ({rule})' if rule else ''}: {message}")

    def object_of(self, value: object, parent: object, what: str) -> _Located:
        if not isinstance(value, _Located):
            raise self.fail(parent, f"{what} must be a JSON object")
        return value

    def only_keys(self, item: _Located, allowed: tuple[str, ...], rule: str) -> None:
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise self.fail(item, f"unknown key {unknown[0]!r}; expected one of {', '.join(allowed)}", rule)

    def mapping(self, document: object, base: ContactMapping | None) -> ContactMapping:
        top = self.object_of(document, None, "the mapping")
        self.only_keys(top, ("$schema", "description", "extends", "events", "fields", "companies"), "")
        extends = top.get("extends", "")
        if extends not in ("", "default"):
            raise self.fail(top, f"'extends' can only be \"default\", not {extends!r}")
        if extends and base is None:
            raise self.fail(top, "'extends': \"default\" needs the built-in mapping")
        events = self.events(top.get("events", []), top)
        fields = self.fields(top.get("fields", []), top, CONTACT_TARGETS, "fields")
        companies, company_fields = self.companies(top.get("companies", {}), top)
        if extends and base is not None:
            events = _extend_events(base.events, events)
            fields = _extend_fields(base.fields, fields)
            company_fields = _extend_fields(base.company_fields, company_fields)
        if not events:
            raise self.fail(top, "no event creates or updates contacts: 'events' is empty")
        if not any(rule.target == "name" for rule in fields):
            raise self.fail(top, "no rule fills 'name', which Freshdesk requires for a new contact")
        if not any(rule.target in ("email", "phone", "unique_external_id") for rule in fields):
            raise self.fail(top, "no rule fills an identifier (email, phone or unique_external_id)")
        return ContactMapping(self.origin, events, fields, companies, company_fields, extends)

    def events(self, value: object, parent: _Located) -> tuple[EventRule, ...]:
        if not isinstance(value, list):
            raise self.fail(parent, "'events' must be a list")
        rules: list[EventRule] = []
        for index, raw in enumerate(value):
            where = f"events[{index}]"
            item = self.object_of(raw, parent, where)
            self.only_keys(item, ("type", "event", "action"), where)
            kind = item.get("type", "track" if "event" in item else None)
            if kind == "identify" and "event" not in item:
                name = IDENTIFY_CALL
            elif kind == "track" and isinstance(item.get("event"), str) and normalise_event_name(item["event"]):
                name = normalise_event_name(item["event"])
            else:
                raise self.fail(item, 'say {"type": "identify"} or {"event": "<track event name>"}', where)
            if name in ("page", "screen", "group"):
                raise self.fail(item, f"{name} events are not contact events", where)
            action = item.get("action")
            if not isinstance(action, str) or action not in ACTIONS:
                raise self.fail(item, f"'action' must be one of {', '.join(ACTIONS)}, not {action!r}", where)
            if any(rule.name == name for rule in rules):
                raise self.fail(item, f"the event {name!r} is listed twice", where)
            rules.append(EventRule(name, ACTIONS[action], item.line))
        return tuple(rules)

    def companies(self, value: object, parent: _Located) -> tuple[bool, tuple[FieldRule, ...]]:
        item = self.object_of(value, parent, "'companies'") if value != {} else _Located()
        self.only_keys(item, ("enabled", "fields"), "companies")
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail(item, "'enabled' must be true or false", "companies")
        return enabled, self.fields(item.get("fields", []), item, COMPANY_TARGETS, "companies.fields")

    def fields(
        self, value: object, parent: _Located, targets: Mapping[str, tuple[str, ...]], section: str
    ) -> tuple[FieldRule, ...]:
        if not isinstance(value, list):
            raise self.fail(parent, f"'{section}' must be a list")
        return tuple(self.rule(raw, parent, index, targets, section) for index, raw in enumerate(value))

    def rule(
        self, raw: object, parent: _Located, index: int, targets: Mapping[str, tuple[str, ...]], section: str
    ) -> FieldRule:
        where = f"{section}[{index}]"
        item = self.object_of(raw, parent, where)
        self.only_keys(item, ("target", "source", "convert", "policy", "on", "comment"), where)
        target = item.get("target")
        if not isinstance(target, str):
            raise self.fail(item, '\'target\' must be a field name such as "mobile" or "custom_fields.plan"', where)
        if target in RESERVED_TARGETS:
            raise self.fail(item, f"'{target}' cannot be a target: {RESERVED_TARGETS[target]}", where)
        custom = _CUSTOM_FIELD.match(target)
        if target not in targets and not custom:
            raise self.fail(
                item,
                f"unknown target {target!r}; expected custom_fields.<name> (lower-case letters, digits, _) or one"
                f" of {', '.join(targets)}",
                where,
            )
        convert, table, otherwise = self.conversion(item.get("convert", "text"), item, where)
        allowed = targets.get(target)
        if allowed is not None and convert not in allowed and not (convert == "table" and "text" in allowed):
            raise self.fail(item, f"{target} takes the conversion {' or '.join(allowed)}, not {convert!r}", where)
        policy = item.get("policy", "overwrite")
        if policy not in POLICIES:
            raise self.fail(item, f"'policy' must be one of {', '.join(POLICIES)}, not {policy!r}", where)
        if target == "other_emails" and policy == "overwrite":
            raise self.fail(
                item, "other_emails is replaced whole by an update: use the policy if_empty or create_only", where
            )
        if section == "companies.fields" and policy == "if_empty":
            raise self.fail(item, "company fields take the policy overwrite or create_only", where)
        on = item.get("on")
        events: frozenset[str] | None = None
        if on is not None and section == "companies.fields":
            raise self.fail(item, "company rules apply to group events: they take no 'on'", where)
        if on is not None:
            names = [self.on_name(entry) for entry in on] if isinstance(on, list) else []
            if not names or None in names:
                raise self.fail(
                    item, '\'on\' must list track event names or {"type": "identify"}, such as ["Signed Up"]', where
                )
            events = frozenset(name for name in names if name is not None)
        sources = self.sources(item.get("source"), item, where)
        return FieldRule(
            target, sources, convert, table, otherwise, policy, events, item.line, index, f"{self.origin} {section}"
        )

    @staticmethod
    def on_name(entry: object) -> str | None:
        if isinstance(entry, str) and normalise_event_name(entry):
            return normalise_event_name(entry)
        if isinstance(entry, dict) and dict(entry) == {"type": "identify"}:
            return IDENTIFY_CALL
        return None

    def conversion(self, value: object, item: _Located, where: str) -> tuple[str, Mapping[str, Any] | None, Any]:
        if isinstance(value, str):
            if value not in CONVERSIONS:
                raise self.fail(
                    item, f"unknown conversion {value!r}; expected one of {', '.join(CONVERSIONS)} or a table", where
                )
            return value, None, None
        if isinstance(value, _Located):
            self.only_keys(value, ("table", "otherwise"), where)
            table = value.get("table")
            if not isinstance(table, dict) or not table:
                raise self.fail(value, "'table' must map event values to Freshdesk values", where)
            for key, mapped in table.items():
                if not isinstance(mapped, (str, int, bool)) or mapped == "":
                    raise self.fail(value, f"the table's value for {key!r} must be a text, number or boolean", where)
            folded = {key.strip().casefold(): mapped for key, mapped in table.items()}
            if len(folded) != len(table):
                raise self.fail(value, "the table lists one value twice (keys compare ignoring case)", where)
            otherwise = value.get("otherwise")
            if otherwise is not None and (not isinstance(otherwise, (str, int, bool)) or otherwise == ""):
                raise self.fail(value, "'otherwise' must be a text, number or boolean", where)
            return "table", folded, otherwise
        raise self.fail(item, "'convert' must be a conversion name or {\"table\": {...}}", where)

    def sources(self, value: object, item: _Located, where: str) -> tuple[Source, ...]:
        alternatives = value if isinstance(value, list) else [value]
        if not alternatives:
            raise self.fail(item, "'source' must name at least one place in the event", where)
        found: list[Source] = []
        for alternative in alternatives:
            if isinstance(alternative, _Located):
                self.only_keys(alternative, ("join", "separator"), where)
                parts = alternative.get("join")
                separator = alternative.get("separator", " ")
                if not isinstance(parts, list) or len(parts) < 2 or not isinstance(separator, str):
                    raise self.fail(alternative, "'join' must list two or more sources to join", where)
                found.append(Join(tuple(self.paths(part, alternative, where) for part in parts), separator))
            else:
                found.extend(self.paths(alternative, item, where))
        return tuple(found)

    def paths(self, value: object, item: object, where: str) -> tuple[Path_, ...]:
        options = value if isinstance(value, list) else [value]
        paths = []
        for option in options:
            if not isinstance(option, str) or not _PATH.match(option):
                raise self.fail(
                    item, f'a source is a dotted path into the event such as "traits.plan", not {option!r}', where
                )
            path = tuple(option.split("."))
            if not _readable(path):
                raise self.fail(
                    item,
                    f"the source {option!r} is not kept for retries: read one of {', '.join(TOP_LEVEL_SOURCES)},"
                    f" context.groupId, or {', '.join(r + '.*' for r in SOURCE_ROOTS[:3])} (at most {SOURCE_DEPTH} levels"
                    " deep)",
                    where,
                )
            paths.append(path)
        return tuple(paths)


def _readable(path: Path_) -> bool:
    if len(path) == 1:
        return path[0] in TOP_LEVEL_SOURCES
    for root in SOURCE_ROOTS:
        steps = tuple(root.split("."))
        if path[: len(steps)] == steps:
            return len(path) - len(steps) <= SOURCE_DEPTH
    return False


def _extend_events(base: tuple[EventRule, ...], extra: tuple[EventRule, ...]) -> tuple[EventRule, ...]:
    mine = {rule.name for rule in extra}
    return tuple(rule for rule in base if rule.name not in mine) + extra


def _extend_fields(base: tuple[FieldRule, ...], extra: tuple[FieldRule, ...]) -> tuple[FieldRule, ...]:
    """The user's rules for a target replace the built-in ones for it; the others stay."""
    mine = {rule.target for rule in extra}
    return tuple(rule for rule in base if rule.target not in mine) + extra


def _load_default() -> ContactMapping:
    text = (Path(__file__).with_name("default_mapping.json")).read_text(encoding="utf-8")
    return parse_mapping(text, "default mapping")


DEFAULT_MAPPING: ContactMapping = _load_default()


def mapping_from(path: str | Path | None) -> ContactMapping:
    """The mapping in `path` (extending the built-in one when it says so), or the built-in one."""
    if not path:
        return DEFAULT_MAPPING
    return load_mapping(path, base=DEFAULT_MAPPING)


def bundled_mapping_path() -> Path | None:
    """The user's mapping file: `signal_freshdesk/mapping.json` in the built layer, or
    `layers/connector/mapping.json` in the source tree (where users edit it). None when there is none."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "mapping.json", package.parent / "mapping.json"):
        if candidate.is_file():
            return candidate
    return None


def json_path_get(document: Mapping[str, Any], path: Path_) -> Any:
    """The value at a dotted path, or None where the path leads nowhere."""
    value: Any = document
    for step in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def check_file(argv: list[str]) -> int:
    """`python -m signal_freshdesk.core.rules FILE`: whether the connector can use a mapping file (the
    layer's build runs it, so a broken file fails the build). Prints the problem, with its line."""
    if len(argv) != 1:
        print("usage: python -m signal_freshdesk.core.rules MAPPING_FILE", file=sys.stderr)
        return 2
    try:
        mapping = mapping_from(argv[0])
    except MappingError as exc:
        print(f"mapping error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{argv[0]}: {len(mapping.events)} event rules, {len(mapping.fields) + len(mapping.company_fields)} field rules"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(check_file(sys.argv[1:]))
