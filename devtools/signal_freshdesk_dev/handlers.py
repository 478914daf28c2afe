"""Load the real Lambda handlers from functions/ (both files are named app.py, so by path)."""

from __future__ import annotations

import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(os.environ.get("SIGNAL_FRESHDESK_ROOT", Path(__file__).resolve().parents[2]))
EVENTS_DIR = REPO_ROOT / "events"


@cache
def handler_module(function: str) -> ModuleType:
    path = REPO_ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"signal_freshdesk_function_{function}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ingest_handler():
    return handler_module("ingest").lambda_handler


def retry_handler():
    return handler_module("retry").lambda_handler


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/, by file name with or without .json."""
    filename = name if name.endswith(".json") else f"{name}.json"
    return json.loads((EVENTS_DIR / filename).read_text())


def signal_events_of(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The Signal events inside an HTTP API sample request (one, or each of a batch)."""
    body = json.loads(request["body"])
    if isinstance(body, dict) and "batch" in body:
        return body["batch"]
    return body if isinstance(body, list) else [body]
