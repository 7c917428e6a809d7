"""The client recipes: marked regions of the scripts in ``tests/clients/`` that the user guide copies.

A recipe is the lines strictly between ``// recipe: <name>`` and ``// end recipe`` (``# recipe: <name>`` and
``# end recipe`` in Python), with their common indentation removed. The scripts run against a running edge
in tests/edge/test_real_http_clients.py and tests/edge/ws/test_real_clients.py.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
_START = re.compile(r"^\s*(?://|#) recipe: (?P<name>\S+)\s*$")
_END = re.compile(r"^\s*(?://|#) end recipe\s*$")


def recipe_files() -> list[Path]:
    return sorted([*CLIENTS.glob("*.mjs"), *CLIENTS.glob("*.py")])


def read_recipes(path: Path) -> dict[str, str]:
    """The recipes in one script, by name (each text ends with a newline)."""
    found: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        start = _START.match(line)
        if start:
            assert name is None, f"{path.name}:{number}: a recipe starts inside recipe {name}"
            name, lines = start["name"], []
        elif _END.match(line):
            assert name is not None, f"{path.name}:{number}: an end of recipe outside any recipe"
            assert name not in found, f"{path.name}: recipe {name} appears twice"
            found[name] = textwrap.dedent("\n".join(lines) + "\n")
            name = None
        elif name is not None:
            lines.append(line)
    assert name is None, f"{path.name}: recipe {name} never ends"
    return found


def all_recipes() -> dict[str, tuple[Path, str]]:
    """Every recipe in tests/clients/, by name: (script, text). Names are unique across the scripts."""
    recipes: dict[str, tuple[Path, str]] = {}
    for path in recipe_files():
        for name, text in read_recipes(path).items():
            assert name not in recipes, f"recipe {name} is in both {recipes[name][0].name} and {path.name}"
            recipes[name] = (path, text)
    return recipes
