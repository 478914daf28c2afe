"""What a mapping rule makes of an event value: each conversion returns the value to send, or None when
the value is not usable (absent, empty, of the wrong kind, or one Freshdesk would refuse).

Pure functions; `docs/mapping.md` lists what each accepts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import phonenumbers

MAX_TEXT = 255
_EMAIL = re.compile(r"^[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+$")
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,18}$")
_DATE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ].*)?$")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
# Control and format characters (NUL, tab, newline, a right-to-left override, a zero-width joiner...),
# and lone surrogates, which no encoder accepts: a text holding one is never usable.
_UNUSABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def has_unusable_characters(text: str) -> bool:
    """Whether `text` holds a Unicode control (Cc) or format (Cf) character, or a lone surrogate (Cs)."""
    # str.isprintable is False for every such character, so the common clean text costs one C-level scan.
    return not text.isprintable() and any(unicodedata.category(ch) in _UNUSABLE_CATEGORIES for ch in text)


def usable_text(value: object) -> str | None:
    """A text the mapping can use: a string, trimmed, not empty, and without control or format characters
    anywhere in it (leading and trailing ones included). Anything else counts as absent."""
    if not isinstance(value, str) or has_unusable_characters(value):
        return None
    return value.strip() or None


def cut(text: str | None) -> str | None:
    """At most 255 characters, trimmed again after the cut."""
    return (text[:MAX_TEXT].strip() or None) if text else None


def to_text(value: object) -> str | None:
    return cut(usable_text(value))


def to_id(value: object) -> str | None:
    """An identifier as a string (an integer becomes one), trimmed; over 255 characters it is not usable:
    cutting an id would join the contact to somebody else's record."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = usable_text(value)
    return text if text is not None and len(text) <= MAX_TEXT else None


def to_email(value: object) -> str | None:
    text = usable_text(value)
    if text is None:
        return None
    email = text.lower()
    if len(email) > MAX_TEXT or _SHA256_HEX.match(email) or not _EMAIL.match(email):
        return None
    return email


def to_phone(value: object, region: str) -> str | None:
    """E.164, when libphonenumber calls the number possible in `region` (national numbers) or anywhere."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else usable_text(value)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def to_integer(value: object) -> int | None:
    """A JSON integer, or a text of at most 18 digits with an optional sign. Fractions are not integers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2**63) < value < 2**63 else None
    text = usable_text(value)
    if text is not None and text.isascii() and _INTEGER.match(text):
        return int(text)
    return None


def to_boolean(value: object) -> bool | None:
    """true/false, 1/0, or the texts true, false, yes, no, y, n, 1, 0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {1: True, 0: False}.get(value)
    text = usable_text(value)
    if text is None:
        return None
    folded = text.casefold()
    return True if folded in _TRUE else False if folded in _FALSE else None


def to_date(value: object) -> str | None:
    """`yyyy-mm-dd` from an ISO 8601 date or date-time (the date as written: no time-zone conversion)."""
    text = usable_text(value)
    found = _DATE.match(text) if text is not None else None
    if found is None:
        return None
    try:
        return date.fromisoformat(found.group(1)).isoformat()
    except ValueError:
        return None


def from_table(value: object, table: Mapping[str, Any], otherwise: Any = None) -> Any:
    """The table's value for an event value (compared trimmed and ignoring case; numbers and booleans as
    their JSON text), else `otherwise` (None: not usable)."""
    if isinstance(value, bool):
        key: str | None = "true" if value else "false"
    elif isinstance(value, int):
        key = str(value)
    else:
        text = usable_text(value)
        key = text.casefold() if text is not None else None
    if key is None:
        return None
    return table.get(key, otherwise)


def converter(
    name: str, *, region: str, table: Mapping[str, Any] | None = None, otherwise: Any = None
) -> Callable[[object], Any]:
    """The function for a conversion name (`table` for a value table)."""
    if name == "table":
        assert table is not None
        return lambda value: from_table(value, table, otherwise)
    if name == "phone":
        return lambda value: to_phone(value, region)
    return _SIMPLE[name]


_SIMPLE: dict[str, Callable[[object], Any]] = {
    "text": to_text,
    "id": to_id,
    "email": to_email,
    "integer": to_integer,
    "boolean": to_boolean,
    "date": to_date,
}
