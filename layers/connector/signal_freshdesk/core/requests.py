"""Reading Signal's webhook request: headers, the raw body, and one event or a batch from it."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

# A JSON escape such as "\ud800" gives Python a lone surrogate: text that is not Unicode, which no
# log line, queue message or Freshdesk request can carry.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class BadRequest(Exception):
    """The request cannot be accepted; `status` is 400 or 413 and `message` says what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def request_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers with lower-cased names (API Gateway payload v2 already lower-cases them)."""
    headers = event.get("headers") or {}
    return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {}


def read_body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The raw request body as API Gateway received it (base64 undone), bounded in size."""
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest(400, "the request has no body: send one Signal event or a batch as JSON")
    if not isinstance(raw, str):
        raise BadRequest(400, "the request body must be text")
    if len(raw) > max_bytes * 4 // 3 + 4:
        raise BadRequest(413, f"the body is larger than {max_bytes} bytes")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(400, "the body is marked base64 but is not valid base64") from None
    else:
        data = raw.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise BadRequest(413, f"the body is larger than {max_bytes} bytes")
    return data


def parse_events(data: bytes, max_events: int) -> tuple[list[Any], bool]:
    """One event or a batch from the body. Returns (events, is_batch)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "the body is not UTF-8 text") from None
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise BadRequest(400, "the body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts
        raise BadRequest(400, f"the body's JSON holds a value that cannot be read ({exc})"[:300]) from None
    if not _all_text_is_unicode(parsed):
        raise BadRequest(
            400,
            "the body's JSON holds text that is not valid Unicode: an escaped lone surrogate such as \\ud800 "
            "in a key or a value; send UTF-8 text (a surrogate pair for characters beyond U+FFFF)",
        )
    if isinstance(parsed, dict) and "batch" in parsed:
        parsed = parsed["batch"]
        if not isinstance(parsed, list):
            raise BadRequest(400, "'batch' must be an array of events")
    if isinstance(parsed, list):
        if not parsed:
            raise BadRequest(400, "the batch holds no events")
        if len(parsed) > max_events:
            raise BadRequest(
                413, f"the batch holds {len(parsed)} events; at most {max_events} are accepted per request"
            )
        return parsed, True
    if isinstance(parsed, dict):
        return [parsed], False
    raise BadRequest(
        400, f"the body must be a JSON object (one event) or an array (a batch), not {type(parsed).__name__}"
    )


def _all_text_is_unicode(value: Any) -> bool:
    """Whether every string in a parsed JSON value, keys and values at any depth, is valid Unicode."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True
