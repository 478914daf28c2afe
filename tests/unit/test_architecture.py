"""The core decides and the adapters talk: the core imports no adapter and no AWS or HTTP library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import signal_freshdesk

PACKAGE = Path(signal_freshdesk.__file__).resolve().parent
CORE_MODULES = sorted((PACKAGE / "core").glob("*.py"))
FORBIDDEN_LIBRARIES = {"boto3", "botocore", "urllib3", "requests", "http", "socket"}
FORBIDDEN_PACKAGE_PARTS = {"adapters", "runtime", "entry"}


def imported_names(path: Path) -> list[str]:
    """Absolute names of everything a module imports, relative imports resolved against its package."""
    package = "signal_freshdesk.core"
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_core_modules_are_found():
    assert {"model.py", "ports.py", "delivery.py", "ingest.py", "retry.py", "mapping.py"} <= {
        p.name for p in CORE_MODULES
    }


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda p: p.name)
def test_a_core_module_imports_no_adapter_and_no_aws_or_http_library(path):
    offending = []
    for name in imported_names(path):
        parts = name.split(".")
        if parts[0] in FORBIDDEN_LIBRARIES:
            offending.append(name)
        if parts[0] == "signal_freshdesk" and len(parts) > 1 and parts[1] in FORBIDDEN_PACKAGE_PARTS:
            offending.append(name)
    assert offending == [], f"{path.name} imports {offending}"


def test_importing_the_whole_core_loads_neither_boto3_nor_urllib3():
    # Powertools itself imports botocore when it is installed (for its user agent), so only the two
    # libraries the core could pull in on its own are checked in a fresh interpreter.
    code = (
        "import importlib, pkgutil, sys\n"
        "import signal_freshdesk.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__): importlib.import_module(f'signal_freshdesk.core.{m.name}')\n"
        "print(sorted({k.split('.')[0] for k in sys.modules} & {'boto3', 'urllib3'}))\n"
        "print(sorted(k for k in sys.modules if k.startswith('signal_freshdesk.adapters')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "[]"]


def test_the_import_rule_would_catch_an_adapter_import(tmp_path):
    module = tmp_path / "sneaky.py"
    module.write_text("from ..adapters.sqs import SqsQueues\nimport urllib3\n", encoding="utf-8")
    assert "signal_freshdesk.adapters.sqs" in imported_names(module)
    assert "urllib3" in imported_names(module)
