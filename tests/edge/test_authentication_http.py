"""Authentication on the HTTP path: every failure is a clean 401/403 and Hasura is never called."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import HS256_KEY, NAMESPACE, hasura_claims, mint

QUERY = {"query": "query { products { id } }"}


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(alg: str) -> str:
    payload = {"sub": "x", "exp": int(time.time()) + 300, NAMESPACE: hasura_claims()}
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(payload)}."


def post(edge: RunningServer, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{edge.url}/graphql", json=QUERY, headers=headers)


FORGED = {
    "alg none": unsigned("none"),
    "alg None": unsigned("None"),
    "alg NONE": unsigned("NONE"),
    "alg nOnE": unsigned("nOnE"),
    "stripped signature": mint().rsplit(".", 1)[0] + ".",
    "cut signature": mint()[:-4],
    "other key": mint(key="another-key-that-is-long-enough-0123456789abcdef"),
    "expired": mint(expires_in=-3600),
    "no exp": mint(expires_in=None),
    "nbf in the future": mint(nbf=int(time.time()) + 3600),
    "garbage": "not-a-jwt",
}


@pytest.mark.parametrize("token", FORGED.values(), ids=FORGED.keys())
def test_forged_or_invalid_tokens_get_401_and_never_reach_hasura(edge: RunningServer, hasura: HasuraDouble, token: str):
    response = post(edge, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "invalid-jwt"
    assert token not in response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert hasura.requests == []


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"x-hasura-default-role": "user", "x-hasura-user-id": "1"}, "jwt-missing-role-claims"),
        ({"x-hasura-allowed-roles": ["user"], "x-hasura-user-id": "1"}, "jwt-missing-role-claims"),
        ({"x-hasura-allowed-roles": "user", "x-hasura-default-role": "user"}, "jwt-invalid-claims"),
        (
            {"x-hasura-allowed-roles": ["user"], "x-hasura-default-role": "user", "x-hasura-user-id": 7},
            "jwt-invalid-claims",
        ),
        ({"x-hasura-allowed-roles": None, "x-hasura-default-role": True}, "jwt-invalid-claims"),
    ],
)
def test_malformed_hasura_claims_are_401_with_hasura_codes(edge: RunningServer, hasura: HasuraDouble, claims, code):
    response = post(edge, {"Authorization": f"Bearer {mint(claims)}"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == code
    assert hasura.requests == []


def test_default_role_outside_allowed_roles_is_403(edge: RunningServer, hasura: HasuraDouble):
    token = mint(hasura_claims(default_role="admin", allowed_roles=["user"]))
    response = post(edge, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert hasura.requests == []


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Token abc"])
def test_malformed_authorization_header_is_401_invalid_headers(edge: RunningServer, hasura: HasuraDouble, value: str):
    response = post(edge, {"Authorization": value})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "invalid-headers"
    assert hasura.requests == []


def test_a_repeated_authorization_value_is_judged_the_same_every_time(edge: RunningServer, hasura: HasuraDouble):
    """The edge remembers which token a header value holds; repeats must not change any answer."""
    good = f"Bearer {mint(hasura_claims('user-7'))}"
    for value in ["Bearer a b", good, "Bearer a b", good, f"bearer  {good[7:]}", "Bearer a b"]:
        response = post(edge, {"Authorization": value})
        if value == "Bearer a b":
            assert response.status_code == 401
            assert response.json()["errors"][0]["extensions"]["code"] == "invalid-headers"
        else:
            assert response.status_code == 200, response.text
    assert [record.header("x-hasura-user-id") for record in hasura.requests] == ["user-7"] * 3


def test_no_credentials_and_no_unauthorized_role_is_401(edge: RunningServer, hasura: HasuraDouble):
    response = post(edge, {})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "access-denied"
    assert hasura.requests == []


def test_token_in_query_string_is_never_read(edge: RunningServer, hasura: HasuraDouble):
    token = mint()
    for name in ("access_token", "token", "jwt", "authorization"):
        response = httpx.post(f"{edge.url}/graphql?{name}={token}", json=QUERY)
        assert response.status_code == 401
    assert hasura.requests == []


def test_unauthorized_role_is_used_without_credentials_and_ignores_client_role(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(unauthorized_role="anonymous")
    response = post(edge, {"x-hasura-role": "admin", "x-hasura-user-id": "1"})
    assert response.status_code == 200
    assert hasura.last().session == {"x-hasura-role": "anonymous"}


def test_invalid_token_is_refused_even_when_an_unauthorized_role_exists(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(unauthorized_role="anonymous")
    response = post(edge, {"Authorization": f"Bearer {mint(expires_in=-600)}"})
    assert response.status_code == 401
    assert hasura.requests == []


def test_allowed_skew_accepts_recently_expired_tokens(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(jwt_secret=json.dumps({"type": "HS256", "key": HS256_KEY, "allowed_skew": 60}))
    assert post(edge, {"Authorization": f"Bearer {mint(expires_in=-30)}"}).status_code == 200
    assert post(edge, {"Authorization": f"Bearer {mint(expires_in=-120)}"}).status_code == 401


def test_audience_and_issuer_are_checked_when_configured(start_edge: EdgeFactory, hasura: HasuraDouble):
    config = {"type": "HS256", "key": HS256_KEY, "audience": "edge-tests", "issuer": "https://idp.example"}
    edge = start_edge(jwt_secret=json.dumps(config))
    good = mint(aud="edge-tests", iss="https://idp.example")
    assert post(edge, {"Authorization": f"Bearer {good}"}).status_code == 200
    for bad in (
        mint(aud="other", iss="https://idp.example"),
        mint(iss="https://idp.example"),
        mint(aud="edge-tests", iss="https://evil.example"),
        mint(aud="edge-tests"),
    ):
        assert post(edge, {"Authorization": f"Bearer {bad}"}).status_code == 401
    assert len(hasura.graphql_requests()) == 1


def test_claims_namespace_path_and_stringified_format(start_edge: EdgeFactory, hasura: HasuraDouble):
    config = {
        "type": "HS256",
        "key": HS256_KEY,
        "claims_namespace_path": "$.hasura.claims",
        "claims_format": "stringified_json",
    }
    edge = start_edge(jwt_secret=json.dumps(config))
    from jose import jwt

    token = jwt.encode(
        {"exp": int(time.time()) + 60, "hasura": {"claims": json.dumps(hasura_claims("u-9"))}},
        HS256_KEY,
        algorithm="HS256",
    )
    assert post(edge, {"Authorization": f"Bearer {token}"}).status_code == 200
    assert hasura.last().session["x-hasura-user-id"] == "u-9"


def test_oversized_authorization_header_is_refused_cleanly(edge: RunningServer, hasura: HasuraDouble):
    response = post(edge, {"Authorization": "Bearer " + "a" * 65536})
    assert response.status_code == 431
    assert hasura.requests == []
