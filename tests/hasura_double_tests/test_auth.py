"""Admin-secret mode semantics (``getUserInfoWithExpTime_``, server/src-lib/Hasura/Server/Auth.hs); every error
comes back with HTTP 200 (``allMod200``, server/src-lib/Hasura/Server/App.hs)."""

from __future__ import annotations

import httpx
import pytest

from tests.hasura_double import HasuraDouble
from tests.support.servers import serving

from .conftest import ADMIN, SECRET, gql, http_client, only_error

QUERY = "{ users(limit: 1) { id } }"


async def test_correct_secret_runs_as_admin(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    response = await gql(client, QUERY)
    assert response.status_code == 200
    assert len(response.json()["data"]["users"]) == 1
    assert double.last().session == {"x-hasura-role": "admin"}


async def test_wrong_secret_is_access_denied(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    error = only_error(await gql(client, QUERY, headers={"x-hasura-admin-secret": "nope"}))
    assert error == {
        "message": "invalid x-hasura-admin-secret/x-hasura-access-key",
        "extensions": {"path": "$", "code": "access-denied"},
    }
    assert double.last().session is None


async def test_missing_secret_without_unauthorized_role_is_access_denied(client: httpx.AsyncClient) -> None:
    error = only_error(await gql(client, QUERY, headers={"x-hasura-role": "user"}))
    assert error["message"] == "x-hasura-admin-secret/x-hasura-access-key required, but not found"
    assert error["extensions"] == {"path": "$", "code": "access-denied"}


async def test_deprecated_access_key_header_is_accepted(client: httpx.AsyncClient) -> None:
    response = await gql(client, QUERY, headers={"x-hasura-access-key": SECRET})
    assert "data" in response.json()


async def test_admin_secret_header_wins_over_access_key(client: httpx.AsyncClient) -> None:
    headers = {"x-hasura-admin-secret": "wrong", "x-hasura-access-key": SECRET}
    assert only_error(await gql(client, QUERY, headers=headers))["extensions"]["code"] == "access-denied"


async def test_impersonation_takes_role_and_every_session_header(
    client: httpx.AsyncClient, double: HasuraDouble
) -> None:
    headers = {**ADMIN, "X-Hasura-Role": "user", "X-Hasura-User-Id": "42", "x-hasura-org-id": "7", "x-other": "1"}
    await gql(client, QUERY, headers=headers)
    assert double.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "42", "x-hasura-org-id": "7"}


async def test_duplicate_session_header_last_value_wins(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    headers = [*ADMIN.items(), ("x-hasura-user-id", "1"), ("x-hasura-user-id", "2")]
    await client.post("/v1/graphql", json={"query": QUERY}, headers=headers)
    assert double.last().session == {"x-hasura-user-id": "2", "x-hasura-role": "admin"}


async def test_unauthorized_role_keeps_client_session_headers_but_forces_role() -> None:
    double = HasuraDouble(unauthorized_role="anonymous")
    with serving(double.app) as server:
        async with http_client(server.url) as client:
            headers = {"x-hasura-role": "admin", "x-hasura-user-id": "99"}
            response = await gql(client, QUERY, headers=headers)
            assert "data" in response.json()
            wrong = await gql(client, QUERY, headers={"x-hasura-admin-secret": "bad"})
    assert double.requests[0].session == {"x-hasura-role": "anonymous", "x-hasura-user-id": "99"}
    assert only_error(wrong)["extensions"]["code"] == "access-denied"


@pytest.mark.parametrize("path", ["/v1/metadata", "/v2/query", "/v1/query"])
async def test_admin_apis_keep_real_statuses(client: httpx.AsyncClient, path: str) -> None:
    body = {"type": "export_metadata", "args": {}}
    missing = await client.post(path, json=body)
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "x-hasura-admin-secret/x-hasura-access-key required, but not found",
        "path": "$",
        "code": "access-denied",
    }
    as_user = await client.post(path, json=body, headers={**ADMIN, "x-hasura-role": "user"})
    assert as_user.status_code == 400
    assert as_user.json() == {"error": "restricted access : admin only", "path": "$", "code": "access-denied"}
    as_admin = await client.post(path, json=body, headers=ADMIN)
    assert as_admin.status_code == 200
