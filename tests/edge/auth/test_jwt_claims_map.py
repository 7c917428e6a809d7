"""Hasura's claims_map tests (server/tests-py/test_jwt_claims_map.py), ported to the edge.

The three claims maps, the tokens (RSA and Ed25519, as Hasura runs them) and the expected
sessions or errors are Hasura's; the edge's answer is what its verifier and role selection
decide, and one request through the edge shows the mapped session reaching Hasura.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from jose import jwt

from edge.auth.claims import HasuraClaims, select_role
from edge.auth.jwt_config import parse_jwt_secret
from edge.auth.jwt_verifier import JWTVerifier
from edge.errors import AuthenticationError, InvalidJWTClaims, MissingRoleClaims, RoleNotAllowed
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.tokens import HS256_KEY

from .helpers import NOW, Clock, KeyPair, ed_pair, mint, rsa_pair

MYAPP = "https://myapp.com/jwt/claims"

BASIC_CLAIMS_MAP = {
    "x-hasura-user-id": {"path": "$.['https://myapp.com/jwt/claims'].user.id"},
    "x-hasura-allowed-roles": {"path": "$.['https://myapp.com/jwt/claims'].role.allowed"},
    "x-hasura-default-role": {"path": "$.['https://myapp.com/jwt/claims'].role.default"},
}
BASIC_CLAIMS_MAP_WITH_DEFAULT_VALUES = {
    "x-hasura-user-id": {"path": "$.['https://myapp.com/jwt/claims'].user.id", "default": "1"},
    "x-hasura-allowed-roles": {
        "path": "$.['https://myapp.com/jwt/claims'].role.allowed",
        "default": ["user", "editor"],
    },
    "x-hasura-default-role": {"path": "$.['https://myapp.com/jwt/claims'].role.default", "default": "user"},
}
STATIC_CLAIMS_MAP = {
    "x-hasura-user-id": {"path": "$.['https://myapp.com/jwt/claims'].user.id"},
    "x-hasura-allowed-roles": ["user", "editor"],
    "x-hasura-default-role": "user",
    "x-hasura-custom-header": "custom-value",
}

RSA = rsa_pair()
ED = ed_pair()
KEYS: dict[str, tuple[KeyPair, str]] = {"rsa": (RSA, "RS256"), "ed25519": (ED, "Ed25519")}


def clean_null_terms(d: dict[str, Any]) -> dict[str, Any]:
    """Hasura's helper: drops None values and the objects left empty."""
    clean = {}
    for k, v in d.items():
        if isinstance(v, dict):
            nested = clean_null_terms(v)
            if nested:
                clean[k] = nested
        elif v is not None:
            clean[k] = v
    return clean


def mk_claims(user_id: Any = None, allowed_roles: Any = None, default_role: Any = None) -> dict[str, Any]:
    return {
        "sub": "1234567890",
        "name": "John Doe",
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
        MYAPP: clean_null_terms({"user": {"id": user_id}, "role": {"allowed": allowed_roles, "default": default_role}}),
    }


async def session(key: str, claims_map: dict[str, Any], token_claims: dict[str, Any]) -> HasuraClaims:
    pair, type_ = KEYS[key]
    (config,) = parse_jwt_secret({"type": type_, "key": pair.public_pem, "claims_map": claims_map})
    verified = await JWTVerifier((config,), clock=Clock()).verify(mint(token_claims, key=pair, alg=pair.alg))
    return verified.claims


async def refused(key: str, claims_map: dict[str, Any], token_claims: dict[str, Any]) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as info:
        await session(key, claims_map, token_claims)
    return info.value


WITH_AND_WITHOUT_DEFAULTS = pytest.mark.parametrize(
    "claims_map", [BASIC_CLAIMS_MAP, BASIC_CLAIMS_MAP_WITH_DEFAULT_VALUES], ids=["basic", "with_default_values"]
)
BOTH_KEYS = pytest.mark.parametrize("key", sorted(KEYS))


@BOTH_KEYS
@WITH_AND_WITHOUT_DEFAULTS
async def test_jwt_claims_map_valid_claims_success(key: str, claims_map: dict[str, Any]) -> None:
    claims = await session(key, claims_map, mk_claims("1", ["user", "editor"], "user"))
    assert claims == HasuraClaims(("user", "editor"), "user", {"x-hasura-user-id": "1"})
    assert select_role(claims, "user") == "user"


@BOTH_KEYS
@WITH_AND_WITHOUT_DEFAULTS
async def test_jwt_claims_map_invalid_role_in_request_header(key: str, claims_map: dict[str, Any]) -> None:
    claims = await session(key, claims_map, mk_claims("1", ["contractor", "editor"], "contractor"))
    with pytest.raises(RoleNotAllowed) as info:
        select_role(claims, "user")
    assert (info.value.code, info.value.message) == ("access-denied", "Your requested role is not in allowed roles")


@BOTH_KEYS
@WITH_AND_WITHOUT_DEFAULTS
async def test_jwt_claims_map_no_allowed_roles_in_claim(key: str, claims_map: dict[str, Any]) -> None:
    token_claims = mk_claims("1", None, "user")
    if "default" in claims_map["x-hasura-allowed-roles"]:
        assert (await session(key, claims_map, token_claims)).allowed_roles == ("user", "editor")
        return
    error = await refused(key, claims_map, token_claims)
    assert isinstance(error, MissingRoleClaims)
    assert (error.code, error.message) == (
        "jwt-missing-role-claims",
        "JWT claim does not contain x-hasura-allowed-roles",
    )


@BOTH_KEYS
@WITH_AND_WITHOUT_DEFAULTS
async def test_jwt_claims_map_invalid_allowed_roles_in_claim(key: str, claims_map: dict[str, Any]) -> None:
    error = await refused(key, claims_map, mk_claims("1", "user", "user"))
    assert isinstance(error, InvalidJWTClaims)
    # Hasura appends aeson's parse error (": parsing [] failed, expected Array, but encountered String").
    assert error.code == "jwt-invalid-claims"
    assert error.message.startswith("invalid x-hasura-allowed-roles; should be a list of roles")


@BOTH_KEYS
@WITH_AND_WITHOUT_DEFAULTS
async def test_jwt_claims_map_no_default_role(key: str, claims_map: dict[str, Any]) -> None:
    token_claims = mk_claims("1", ["user"])
    if "default" in claims_map["x-hasura-default-role"]:
        assert (await session(key, claims_map, token_claims)).default_role == "user"
        return
    error = await refused(key, claims_map, token_claims)
    assert isinstance(error, MissingRoleClaims)
    assert (error.code, error.message) == (
        "jwt-missing-role-claims",
        "JWT claim does not contain x-hasura-default-role",
    )


@BOTH_KEYS
@WITH_AND_WITHOUT_DEFAULTS
async def test_jwt_claims_map_claim_not_found(key: str, claims_map: dict[str, Any]) -> None:
    token_claims = mk_claims(None, ["user", "editor"], "user")
    if "default" in claims_map["x-hasura-user-id"]:
        assert (await session(key, claims_map, token_claims)).session_variables == {"x-hasura-user-id": "1"}
        return
    error = await refused(key, claims_map, token_claims)
    assert isinstance(error, InvalidJWTClaims)
    assert (error.code, error.message) == (
        "jwt-invalid-claims",
        "JWT claim from claims_map, x-hasura-user-id not found",
    )


# --- TestJWTClaimsMapWithStaticHasuraClaimsMapValues ------------------------------------------


@BOTH_KEYS
async def test_static_claims_map_valid_claims_success(key: str) -> None:
    claims = await session(key, STATIC_CLAIMS_MAP, mk_claims("1"))
    assert claims == HasuraClaims(
        ("user", "editor"), "user", {"x-hasura-user-id": "1", "x-hasura-custom-header": "custom-value"}
    )
    assert select_role(claims, None) == "user"


@BOTH_KEYS
async def test_static_claims_map_invalid_role_in_request_header(key: str) -> None:
    claims = await session(key, STATIC_CLAIMS_MAP, mk_claims("1"))
    with pytest.raises(RoleNotAllowed):
        select_role(claims, "random_string")


@BOTH_KEYS
async def test_static_claims_map_claim_not_found(key: str) -> None:
    error = await refused(key, STATIC_CLAIMS_MAP, mk_claims(None))
    assert isinstance(error, InvalidJWTClaims)
    assert error.message == "JWT claim from claims_map, x-hasura-user-id not found"


def test_the_edge_starts_with_hasuras_claims_map_and_forwards_the_mapped_session(
    start_edge: EdgeFactory, hasura: HasuraDouble
) -> None:
    config = {"type": "HS256", "key": HS256_KEY, "claims_map": STATIC_CLAIMS_MAP}
    edge = start_edge(jwt_secret=json.dumps(config))
    token = jwt.encode(
        {"exp": int(time.time()) + 60, MYAPP: {"user": {"id": "u-7"}}},
        HS256_KEY,
        algorithm="HS256",
    )
    response = httpx.post(
        f"{edge.url}/graphql",
        json={"query": "query { products { id } }"},
        headers={"Authorization": f"Bearer {token}", "x-hasura-role": "editor"},
    )
    assert response.status_code == 200, response.text
    assert hasura.last().session == {
        "x-hasura-role": "editor",
        "x-hasura-user-id": "u-7",
        "x-hasura-custom-header": "custom-value",
    }
