"""The docs describe what exists: every error code and every setting is documented."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import edge
from edge.errors import EdgeError, all_error_classes
from edge.settings import EdgeSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def import_every_edge_module() -> None:
    for module in pkgutil.walk_packages(edge.__path__, "edge."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


def test_every_error_code_and_status_is_listed_in_docs_errors():
    import_every_edge_module()  # error classes defined anywhere in the package count
    text = (DOCS / "errors.md").read_text()
    for cls in all_error_classes():
        if cls is EdgeError:
            continue
        assert f"| {cls.status} | `{cls.code}` |" in text, f"{cls.__name__} ({cls.status} {cls.code}) is not documented"


def test_every_setting_is_documented_in_docs_configuration():
    text = (DOCS / "configuration.md").read_text()
    for name in EdgeSettings.model_fields:
        assert f"`EDGE_{name.upper()}`" in text, f"EDGE_{name.upper()} is not documented"
