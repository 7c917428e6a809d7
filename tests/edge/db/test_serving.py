"""The edge in front of a database without its tables: it serves, answers API keys with 503 and logs the
command that creates them; once that command has run, the same edge accepts keys."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from edge.db.cli import main as db_main
from edge.db.schema import UPGRADE_COMMAND
from edge.keys import generate_key
from edge.keys.cli import main as keys_main
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.postgres import fresh_database
from tests.support.tokens import hasura_claims, mint

pytestmark = pytest.mark.postgres

PLANS: dict[str, Any] = {"plans": {"free": {}}, "jwt_plan": "free", "anonymous_plan": "free"}
QUERY = {"query": "{ products(limit: 1) { id } }"}
KEY = re.compile(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url, prefix="edge_db_serving") as url:
        yield url


def post(url: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json=QUERY, headers=headers, timeout=10)


def test_keys_get_503_and_a_log_line_naming_the_command_until_the_upgrade(
    start_edge: EdgeFactory, hasura: HasuraDouble, empty_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge")
    edge = start_edge(database_url=empty_database, **PLANS)
    assert httpx.get(f"{edge.url}/healthz", timeout=10).status_code == 200  # it started without its tables
    assert post(edge.url, Authorization=f"Bearer {mint(hasura_claims('jwt-user'))}").status_code == 200

    refused = post(edge.url, **{"X-API-Key": generate_key().key})
    assert refused.status_code == 503
    assert refused.json()["errors"][0]["extensions"]["code"] == "api-key-store-unavailable"
    missing = [record for record in caplog.records if record.getMessage() == "api_key_schema_missing"]
    assert missing and all(record.__dict__["fix"] == UPGRADE_COMMAND for record in missing)

    assert db_main(["upgrade"], database_url=empty_database, out=io.StringIO()) == 0
    out = io.StringIO()
    assert keys_main(["create", "--owner", "late", "--plan", "free"], database_url=empty_database,
                     known_plans={"free"}, out=out) == 0  # fmt: skip
    key = KEY.search(out.getvalue())
    assert key is not None
    accepted = post(edge.url, **{"X-API-Key": key.group(0)})  # failures are not cached: no restart needed
    assert accepted.status_code == 200, accepted.text
    assert hasura.last().session["x-hasura-role"] == "user"
