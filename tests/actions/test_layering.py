"""House rule 1: business logic in actions/handlers/ and actions/providers/ never imports the web layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.migrations import REPO_ROOT

WEB = ("fastapi", "starlette", "uvicorn", "httpx", "actions.routes", "actions.app", "actions.security", "actions.deps")
FILES = sorted(
    [*(REPO_ROOT / "actions" / "handlers").glob("*.py"), *(REPO_ROOT / "actions" / "providers").glob("*.py")]
)


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_core_modules_do_not_import_the_web_layer(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = [
        name
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    ]
    assert not [name for name in imported if name.startswith(WEB)], imported
