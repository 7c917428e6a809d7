"""API keys (Postgres, managed with ``python -m edge keys``) and the authorizer, through the real edge."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.keys.cli import main as keys_main
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.edge_database import edge_database
from tests.support.servers import RunningServer, start_server
from tests.support.tokens import hasura_claims, mint

QUERY = {"query": "{ products(limit: 1) { id } }"}
PLANS: dict[str, Any] = {
    "plans": {
        "free": {"rate": {"requests_per_second": 0.05, "burst": 2}},
        "partner": {"rate": {"requests_per_second": 0.05, "burst": 5}, "roles": ["service", "user"]},
    },
    "jwt_plan": "free",
    "anonymous_plan": "free",
}
KEY = re.compile(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys_database(postgres_server_url: str) -> Iterator[str]:
    with edge_database(postgres_server_url, "edge_keys_http") as url:
        yield url


def create_key(database_url: str, *args: str) -> str:
    out = io.StringIO()
    code = keys_main(["create", *args], database_url=database_url, known_plans=PLANS["plans"].keys(), out=out)
    assert code == 0
    match = KEY.search(out.getvalue())
    assert match is not None
    return match.group(0)


def post(edge: RunningServer, **headers: str) -> httpx.Response:
    return httpx.post(f"{edge.url}/graphql", json=QUERY, headers=headers, timeout=10)


def test_a_key_alone_authenticates_as_its_role_and_session_variables(
    start_edge: EdgeFactory, hasura: HasuraDouble, keys_database: str
):
    key = create_key(keys_database, "--owner", "inventory-bot", "--plan", "partner", "--role", "service",
                     "--var", "x-hasura-org-id=42")  # fmt: skip
    edge = start_edge(database_url=keys_database, **PLANS)
    response = post(edge, **{"X-API-Key": key, "x-hasura-role": "admin", "x-hasura-org-id": "1"})
    assert response.status_code == 200
    assert response.headers["ratelimit-limit"] == "5"  # the key's plan
    record = hasura.last()
    assert record.session == {"x-hasura-role": "service", "x-hasura-org-id": "42"}
    assert record.header("x-api-key") is None  # consumed by the edge, never forwarded


def test_key_and_jwt_together_the_key_picks_the_plan_and_the_jwt_the_identity(
    start_edge: EdgeFactory, hasura: HasuraDouble, keys_database: str
):
    key = create_key(keys_database, "--owner", "web-app", "--plan", "partner", "--role", "service")
    edge = start_edge(database_url=keys_database, **PLANS)
    token = mint(hasura_claims("user-77"))
    response = post(edge, **{"X-API-Key": key, "Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["ratelimit-limit"] == "5"
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "user-77"}


def test_limits_count_per_key(start_edge: EdgeFactory, hasura: HasuraDouble, keys_database: str):
    first = create_key(keys_database, "--owner", "a", "--plan", "free")
    second = create_key(keys_database, "--owner", "b", "--plan", "free")
    edge = start_edge(database_url=keys_database, **PLANS)
    assert [post(edge, **{"X-API-Key": first}).status_code for _ in range(3)] == [200, 200, 429]
    assert post(edge, **{"X-API-Key": second}).status_code == 200


def test_unknown_revoked_and_expired_keys_are_401_with_their_own_codes(
    start_edge: EdgeFactory, hasura: HasuraDouble, keys_database: str
):
    revoked = create_key(keys_database, "--owner", "old", "--plan", "free")
    key_id = revoked.split("_")[1]
    assert (
        keys_main(["revoke", key_id], database_url=keys_database, known_plans=["free", "partner"], out=io.StringIO())
        == 0
    )
    expired = create_key(keys_database, "--owner", "tmp", "--plan", "free", "--expires-in", "1s")
    edge = start_edge(database_url=keys_database, **PLANS)
    import time

    time.sleep(1.2)
    cases = {
        "hek_aaaaaaaaaa_" + "A" * 43: "invalid-api-key",
        "not-a-key": "invalid-api-key",
        revoked[:-4] + "AAAA": "invalid-api-key",  # right id, wrong secret: says nothing about the key's state
        revoked: "api-key-revoked",
        expired: "api-key-expired",
    }
    for presented, code in cases.items():
        response = post(edge, **{"X-API-Key": presented})
        assert response.status_code == 401, presented
        assert response.json()["errors"][0]["extensions"]["code"] == code
        assert presented not in response.text
    assert hasura.requests == []


def test_keys_without_a_database_are_refused(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(**PLANS)
    response = post(edge, **{"X-API-Key": "hek_aaaaaaaaaa_" + "A" * 43})
    assert response.status_code == 401
    assert hasura.requests == []


def test_python_m_edge_keys_manages_keys(keys_database: str, tmp_path: Path):
    config = tmp_path / "edge.yaml"
    config.write_text("plans:\n  free: {}\njwt_plan: free\nanonymous_plan: free\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "EDGE_CONFIG": str(config),
        "EDGE_HASURA_URL": "http://hasura:8080",
        "EDGE_HASURA_ADMIN_SECRET": "cli-test-secret",
        "EDGE_UNAUTHORIZED_ROLE": "anonymous",
        "EDGE_DATABASE_URL": keys_database,
    }
    run = subprocess.run(
        [sys.executable, "-m", "edge", "keys", "create", "--owner", "cli", "--plan", "free"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    key = KEY.search(run.stdout)
    assert key is not None
    listed = subprocess.run(
        [sys.executable, "-m", "edge", "keys", "list"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0
    assert key.group(0).split("_")[1] in listed.stdout
    assert key.group(0) not in listed.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "edge", "keys", "create", "--owner", "x", "--plan", "gold"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "gold" in unknown.stderr


class AuthorizerApp:
    """A webhook that allows ``Bearer good``, denies the rest, and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.broken = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.calls += 1
        headers = dict(scope["headers"])
        if self.broken:
            status, body = 500, b"oops"
        elif headers.get(b"authorization") == b"Bearer good":
            status, body = (
                200,
                b'{"X-Hasura-Role": "user", "X-Hasura-User-Id": "hook-1", "Cache-Control": "max-age=60"}',
            )
        else:
            status, body = 401, b"{}"
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def authorizer() -> Iterator[tuple[AuthorizerApp, RunningServer]]:
    app = AuthorizerApp()
    server = start_server(app)
    yield app, server
    server.stop()


def test_authorizer_allows_denies_caches_and_fails_closed(
    start_edge: EdgeFactory, hasura: HasuraDouble, authorizer: tuple[AuthorizerApp, RunningServer]
):
    hook, server = authorizer
    edge = start_edge(jwt_secret=None, unauthorized_role=None, authorizer_url=f"{server.url}/auth")
    for _ in range(3):
        assert post(edge, Authorization="Bearer good").status_code == 200
    assert hook.calls == 1  # cached per credential
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "hook-1"}
    denied = post(edge, Authorization="Bearer bad")
    assert denied.status_code == 401
    assert denied.json()["errors"][0]["extensions"]["code"] == "authorizer-denied"
    hook.broken = True
    failing = post(edge, Authorization="Bearer other")
    assert failing.status_code == 503
    assert failing.json()["errors"][0]["extensions"]["code"] == "authorizer-unavailable"
    assert len(hasura.graphql_requests()) == 3


def test_jwt_shaped_tokens_go_to_jwt_and_opaque_ones_to_the_authorizer(
    start_edge: EdgeFactory, hasura: HasuraDouble, authorizer: tuple[AuthorizerApp, RunningServer]
):
    hook, server = authorizer
    edge = start_edge(authorizer_url=f"{server.url}/auth")
    assert post(edge, Authorization=f"Bearer {mint(hasura_claims('jwt-user'))}").status_code == 200
    assert hook.calls == 0
    assert hasura.last().session["x-hasura-user-id"] == "jwt-user"
    assert post(edge, Authorization="Bearer good").status_code == 200
    assert hook.calls == 1


def test_revoking_through_the_edge_takes_effect_at_once_on_that_edge(
    start_edge: EdgeFactory, hasura: HasuraDouble, keys_database: str
):
    key = create_key(keys_database, "--owner", "revoke-me", "--plan", "partner", "--role", "service")
    edge = start_edge(database_url=keys_database, admin_secret="ops", api_key_cache_seconds=3600, **PLANS)
    assert post(edge, **{"X-API-Key": key}).status_code == 200  # now cached for an hour
    key_id = key.split("_")[1]
    revoked = httpx.post(f"{edge.url}/admin/keys/{key_id}/revoke", headers={"X-Edge-Admin-Secret": "ops"})
    assert revoked.json() == {"revoked": True, "key_id": key_id, "sockets_closed": 0}
    refused = post(edge, **{"X-API-Key": key})
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "api-key-revoked"
    missing = httpx.post(f"{edge.url}/admin/keys/zzzzzzzzzz/revoke", headers={"X-Edge-Admin-Secret": "ops"})
    assert missing.status_code == 404
