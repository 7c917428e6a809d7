"""Only edge-made identity reaches Hasura, whatever the client sends.

Client-sent x-hasura-* headers, admin secrets and role claims never reach Hasura."""

from __future__ import annotations

import httpx
import pytest

from tests.edge.conftest import DOUBLE_ADMIN_SECRET
from tests.hasura_double import HasuraDouble
from tests.support import raw_http
from tests.support.servers import RunningServer
from tests.support.tokens import hasura_claims, mint

QUERY = {"query": "query { products(limit: 2) { id name } }"}


def hasura_headers(hasura: HasuraDouble) -> list[tuple[str, str]]:
    [record] = hasura.graphql_requests()
    return [(name, value) for name, value in record.headers if name.replace("_", "-").startswith("x-hasura-")]


def test_upstream_receives_admin_secret_role_and_verified_variables_only(edge: RunningServer, hasura: HasuraDouble):
    token = mint(hasura_claims("user-42", **{"x-hasura-org-id": "org-7"}))
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert len(response.json()["data"]["products"]) == 2
    assert sorted(hasura_headers(hasura)) == sorted(
        [
            ("x-hasura-admin-secret", DOUBLE_ADMIN_SECRET),
            ("x-hasura-role", "user"),
            ("x-hasura-user-id", "user-42"),
            ("x-hasura-org-id", "org-7"),
        ]
    )
    assert hasura.last().session == {
        "x-hasura-role": "user",
        "x-hasura-user-id": "user-42",
        "x-hasura-org-id": "org-7",
    }


SPOOFED = [
    ("X-Hasura-Admin-Secret", DOUBLE_ADMIN_SECRET),
    ("x-hasura-admin-secret", "guess"),
    ("X-HASURA-USER-ID", "victim"),
    ("x-hasura-user-id", "victim-2"),
    ("X-Hasura-User-Id", "victim-3"),
    ("x_hasura_role", "admin"),
    ("x_hasura_user_id", "victim-4"),
    ("x-hasura-use-backend-only-permissions", "true"),
    ("X-Hasura-Access-Key", DOUBLE_ADMIN_SECRET),
    ("x-hasura-org-id", "someone-elses-org"),
]


def test_client_x_hasura_headers_in_any_case_and_number_never_reach_hasura(edge: RunningServer, hasura: HasuraDouble):
    token = mint(hasura_claims("user-42"))
    headers = [("Authorization", f"Bearer {token}"), *SPOOFED]
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers=headers)
    assert response.status_code == 200
    assert sorted(hasura_headers(hasura)) == sorted(
        [
            ("x-hasura-admin-secret", DOUBLE_ADMIN_SECRET),
            ("x-hasura-role", "user"),
            ("x-hasura-user-id", "user-42"),
        ]
    )


def test_connection_header_cannot_make_the_edge_drop_its_own_role_header(edge: RunningServer, hasura: HasuraDouble):
    token = mint(hasura_claims("user-42"))
    body = b'{"query":"query { products { id } }"}'
    request = (
        b"POST /graphql HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
        b"Connection: keep-alive, X-Hasura-Role, X-Hasura-User-Id, X-Request-Id\r\n"
        b"X-Custom-Hop: secret-ish\r\nConnection: X-Custom-Hop\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    response = raw_http.exchange(edge.host, edge.port, request)
    assert response.status == 200
    record = hasura.last()
    assert record.header("x-hasura-role") == "user"
    assert record.header("x-hasura-user-id") == "user-42"
    assert record.header("x-request-id") is not None
    assert record.header("x-custom-hop") is None
    assert record.header("connection") != "keep-alive, X-Hasura-Role, X-Hasura-User-Id, X-Request-Id"


def test_requested_role_must_be_in_allowed_roles(edge: RunningServer, hasura: HasuraDouble):
    token = mint(hasura_claims("user-42", allowed_roles=["user", "editor"]))
    ok = httpx.post(
        f"{edge.url}/graphql",
        json=QUERY,
        headers={"Authorization": f"Bearer {token}", "X-Hasura-Role": "editor"},
    )
    assert ok.status_code == 200
    assert hasura.last().header("x-hasura-role") == "editor"
    hasura.reset()
    denied = httpx.post(
        f"{edge.url}/graphql",
        json=QUERY,
        headers={"Authorization": f"Bearer {token}", "x-hasura-role": "admin"},
    )
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["extensions"]["code"] == "access-denied"
    assert hasura.requests == []


def test_reserved_names_in_claims_are_not_forwarded(edge: RunningServer, hasura: HasuraDouble):
    claims = hasura_claims(
        "user-42",
        **{
            "x-hasura-use-backend-only-permissions": "true",
            "x-hasura-admin-secret": "from-token",
            "x-hasura-role": "admin",
        },
    )
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {mint(claims)}"})
    assert response.status_code == 200
    assert sorted(hasura_headers(hasura)) == sorted(
        [
            ("x-hasura-admin-secret", DOUBLE_ADMIN_SECRET),
            ("x-hasura-role", "user"),
            ("x-hasura-user-id", "user-42"),
        ]
    )


def test_claim_value_with_line_break_is_refused_not_forwarded(edge: RunningServer, hasura: HasuraDouble):
    claims = hasura_claims("user-42\r\nx-hasura-role: admin")
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {mint(claims)}"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "jwt-invalid-claims"
    assert hasura.requests == []


def test_request_id_is_kept_when_well_formed_and_replaced_otherwise(edge: RunningServer, hasura: HasuraDouble):
    token = mint()
    kept = httpx.post(
        f"{edge.url}/graphql",
        json=QUERY,
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "req-abc.123"},
    )
    assert kept.headers["x-request-id"] == "req-abc.123"
    assert hasura.last().header("x-request-id") == "req-abc.123"
    hasura.reset()
    replaced = httpx.post(
        f"{edge.url}/graphql",
        json=QUERY,
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": 'bad id"<>'},
    )
    new_id = replaced.headers["x-request-id"]
    assert new_id != 'bad id"<>' and len(new_id) == 36
    assert hasura.last().header_all("x-request-id") == [new_id]


def test_error_responses_carry_the_request_id_too(edge: RunningServer):
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers={"X-Request-Id": "err-1"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "err-1"


@pytest.mark.parametrize(
    ("traceparent", "forwarded"),
    [
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", False),
        ("garbage", False),
    ],
)
def test_only_well_formed_traceparent_is_forwarded(
    edge: RunningServer, hasura: HasuraDouble, traceparent: str, forwarded: bool
):
    headers = {"Authorization": f"Bearer {mint()}", "traceparent": traceparent}
    assert httpx.post(f"{edge.url}/graphql", json=QUERY, headers=headers).status_code == 200
    assert hasura.last().header("traceparent") == (traceparent if forwarded else None)


def test_credentials_and_framing_headers_are_not_forwarded(edge: RunningServer, hasura: HasuraDouble):
    headers = {
        "Authorization": f"Bearer {mint()}",
        "Accept-Encoding": "gzip",
        "User-Agent": "test-agent/1.0",
    }
    assert httpx.post(f"{edge.url}/graphql", json=QUERY, headers=headers).status_code == 200
    record = hasura.last()
    assert record.header("authorization") is None
    assert record.header("accept-encoding") is None
    assert record.header("user-agent") == "test-agent/1.0"
    assert record.header_all("content-type") == ["application/json"]
    assert len(record.header_all("host")) == 1


def test_one_token_with_different_requested_roles_gets_the_right_role_each_time(
    edge: RunningServer, hasura: HasuraDouble
):
    token = mint(hasura_claims("user-42", allowed_roles=["user", "editor"]))
    for requested, expected in ((None, "user"), ("editor", "editor"), (None, "user"), ("editor", "editor")):
        headers = {"Authorization": f"Bearer {token}"}
        if requested:
            headers["x-hasura-role"] = requested
        assert httpx.post(f"{edge.url}/graphql", json=QUERY, headers=headers).status_code == 200
        assert hasura.last().header("x-hasura-role") == expected
