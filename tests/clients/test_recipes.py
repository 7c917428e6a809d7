"""The recipes' regions (tests/support/recipes.py) stay what the user guide can copy: named, short, and
free of test plumbing. That each runs against the edge is tested in tests/edge/test_real_http_clients.py
and tests/edge/ws/test_real_clients.py."""

from __future__ import annotations

import re

import pytest

from tests.support.recipes import all_recipes

RECIPES = all_recipes()
EXPECTED = {
    "apollo-http",
    "apollo-ws",
    "graphql-ws-fail-fast",
    "graphql-ws-refresh",
    "subscriptions-transport-ws",
    "urql",
    "graphql-request",
    "gql-http",
    "gql-ws",
}
PLUMBING = ("input.", "responses.push", "linkSaw", "finish(", "harness", "process.", "seen.")


def test_every_recipe_is_there() -> None:
    assert set(RECIPES) == EXPECTED


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_recipe_is_short_kebab_case_and_has_no_test_plumbing(name: str) -> None:
    _, text = RECIPES[name]
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name)
    assert len(text.splitlines()) <= 25
    assert not any(word in text for word in PLUMBING), text
    assert "edge.example.com" not in text  # the URLs come from GRAPHQL_URL and WS_URL
    assert not text.startswith((" ", "\t", "\n")) and not text.endswith("\n\n")
