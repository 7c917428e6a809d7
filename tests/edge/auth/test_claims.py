"""extract_hasura_claims / select_role: Hasura's claim semantics, and clean errors for junk."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge.auth.claims import HasuraClaims, extract_hasura_claims, select_role
from edge.auth.jwt_config import JWTConfig, parse_jwt_secret
from edge.errors import InvalidJWTClaims, MissingRoleClaims, RoleNotAllowed

from .helpers import HS_KEY, NAMESPACE, hasura

DEFAULT = JWTConfig(type="HS256", key=HS_KEY)


def config(**fields: Any) -> JWTConfig:
    (parsed,) = parse_jwt_secret({"type": "HS256", "key": HS_KEY, **fields})
    return parsed


def test_default_namespace() -> None:
    claims = extract_hasura_claims(
        {"sub": "1", NAMESPACE: hasura(**{"X-Hasura-Org-Id": "7", "other": 5, "x-hasura-flag": ""})},
        DEFAULT,
    )
    assert claims == HasuraClaims(
        allowed_roles=("user", "editor"),
        default_role="user",
        session_variables={"x-hasura-user-id": "42", "x-hasura-org-id": "7", "x-hasura-flag": ""},
    )


def test_role_claim_names_are_case_insensitive() -> None:
    ns = {"X-Hasura-Allowed-Roles": ["a"], "X-HASURA-DEFAULT-ROLE": "a"}
    claims = extract_hasura_claims({NAMESPACE: ns}, DEFAULT)
    assert claims.allowed_roles == ("a",) and claims.default_role == "a"
    assert dict(claims.session_variables) == {}


def test_custom_namespace() -> None:
    claims = extract_hasura_claims({"hasura": hasura()}, config(claims_namespace="hasura"))
    assert claims.default_role == "user"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("$", hasura()),
        ("$.hasura.claims", {"hasura": {"claims": hasura()}}),
        ("$['https://hasura.io/jwt/claims']", {NAMESPACE: hasura()}),
        ('$["a.b"].c', {"a.b": {"c": hasura()}}),
        ("$.list[1]", {"list": [{}, hasura()]}),
        ("hasura.claims", {"hasura": {"claims": hasura()}}),
        ("$['it\\'s']", {"it's": hasura()}),
        ("$.['https://myapp.com/jwt/claims'].hasura", {"https://myapp.com/jwt/claims": {"hasura": hasura()}}),
        ('$.["a"][0]', {"a": [hasura()]}),
    ],
)
def test_namespace_path(path: str, body: dict[str, Any]) -> None:
    claims = extract_hasura_claims(body, config(claims_namespace_path=path))
    assert claims.session_variables["x-hasura-user-id"] == "42"


def test_stringified_json() -> None:
    body = {NAMESPACE: json.dumps(hasura())}
    claims = extract_hasura_claims(body, config(claims_format="stringified_json"))
    assert claims.default_role == "user"
    path_config = config(claims_format="stringified_json", claims_namespace_path="$.h")
    assert extract_hasura_claims({"h": json.dumps(hasura())}, path_config).default_role == "user"


@pytest.mark.parametrize("value", [hasura(), "{not json", "[1, 2]", "null", 5, None, "[" * 5000 + "]" * 5000])
def test_stringified_json_errors(value: Any) -> None:
    with pytest.raises(InvalidJWTClaims):
        extract_hasura_claims({NAMESPACE: value}, config(claims_format="stringified_json"))


CLAIMS_MAP = {
    "x-hasura-allowed-roles": {"path": "$.roles"},
    "x-hasura-default-role": {"path": "$.role", "default": "user"},
    "X-Hasura-User-Id": {"path": "$['user.id']"},
    "x-hasura-org-id": {"path": "$.org.id", "default": "none"},
    "x-hasura-tenant": "acme",
}


def test_claims_map() -> None:
    mapped = config(claims_map=CLAIMS_MAP, claims_namespace="ignored")
    body = {"roles": ["user", "admin"], "role": "admin", "user.id": "u1", "org": {"id": "o1"}}
    claims = extract_hasura_claims(body, mapped)
    assert claims.allowed_roles == ("user", "admin")
    assert claims.default_role == "admin"
    assert dict(claims.session_variables) == {
        "x-hasura-user-id": "u1",
        "x-hasura-org-id": "o1",
        "x-hasura-tenant": "acme",
    }


def test_claims_map_defaults() -> None:
    claims = extract_hasura_claims({"roles": ["user"], "user.id": "u1"}, config(claims_map=CLAIMS_MAP))
    assert claims.default_role == "user"
    assert claims.session_variables["x-hasura-org-id"] == "none"


def test_claims_map_missing_path_without_default() -> None:
    with pytest.raises(InvalidJWTClaims, match="JWT claim from claims_map, x-hasura-user-id not found"):
        extract_hasura_claims({"roles": ["user"]}, config(claims_map=CLAIMS_MAP))
    with pytest.raises(MissingRoleClaims, match="x-hasura-allowed-roles"):
        extract_hasura_claims({"user.id": "u1"}, config(claims_map=CLAIMS_MAP))


def test_claims_map_numeric_value_rejected() -> None:
    with pytest.raises(InvalidJWTClaims, match="x-hasura-user-id"):
        extract_hasura_claims({"roles": ["user"], "user.id": 17}, config(claims_map=CLAIMS_MAP))


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({}, InvalidJWTClaims, f"claims key: '{NAMESPACE}' not found"),
        ({NAMESPACE: None}, InvalidJWTClaims, "JSON object"),
        ({NAMESPACE: "x"}, InvalidJWTClaims, "JSON object"),
        ({NAMESPACE: [hasura()]}, InvalidJWTClaims, "JSON object"),
        ({NAMESPACE: {"x-hasura-default-role": "user"}}, MissingRoleClaims, "x-hasura-allowed-roles"),
        ({NAMESPACE: {"x-hasura-allowed-roles": ["user"]}}, MissingRoleClaims, "x-hasura-default-role"),
        ({NAMESPACE: hasura(allowed="user")}, InvalidJWTClaims, "should be a list of roles"),
        ({NAMESPACE: hasura(allowed=["user", 1])}, InvalidJWTClaims, "should be a list of roles"),
        ({NAMESPACE: hasura(allowed=["user", ""])}, InvalidJWTClaims, "should be a list of roles"),
        ({NAMESPACE: hasura(default=["user"])}, InvalidJWTClaims, "x-hasura-default-role"),
        ({NAMESPACE: hasura(default="")}, InvalidJWTClaims, "x-hasura-default-role"),
        ({NAMESPACE: hasura(user_id=42)}, InvalidJWTClaims, "x-hasura-user-id"),
        ({NAMESPACE: hasura(user_id=4.2)}, InvalidJWTClaims, "x-hasura-user-id"),
        ({NAMESPACE: hasura(**{"X-Hasura-User-Id": "1"})}, InvalidJWTClaims, "more than once"),
    ],
)
def test_claim_errors(body: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        extract_hasura_claims(body, DEFAULT)


def test_namespace_path_not_found() -> None:
    with pytest.raises(InvalidJWTClaims, match="claims not found at claims_namespace_path: '\\$.a.b'"):
        extract_hasura_claims({"a": {"c": 1}}, config(claims_namespace_path="$.a.b"))
    with pytest.raises(InvalidJWTClaims):
        extract_hasura_claims({"a": "string"}, config(claims_namespace_path="$.a.b"))
    with pytest.raises(InvalidJWTClaims):
        extract_hasura_claims({"a": []}, config(claims_namespace_path="$.a[3]"))
    # The message writes the path as Hasura's encodeJSONPath does.
    with pytest.raises(InvalidJWTClaims, match=r"claims_namespace_path: '\$\.a\[\"b\.c\"\]\[0\]'"):
        extract_hasura_claims({}, config(claims_namespace_path="a['b.c'][0]"))


@pytest.mark.parametrize("registered", ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"])
def test_namespace_path_does_not_look_in_registered_claims(registered: str) -> None:
    """Hasura looks claims_namespace_path up among the unregistered claims only (JWT.hs, parseClaimsMap)."""
    with pytest.raises(InvalidJWTClaims, match="claims not found at claims_namespace_path"):
        extract_hasura_claims({registered: hasura()}, config(claims_namespace_path=f"$.{registered}"))
    upper = registered.upper()
    claims = extract_hasura_claims({upper: hasura()}, config(claims_namespace_path=f"$.{upper}"))
    assert claims.default_role == "user"


JUNK = [None, True, False, 0, 1.5, "", {"nested": "object"}, [], ["a", ["b"]]]
ROLE_CLAIMS = ["x-hasura-allowed-roles", "x-hasura-default-role", "x-hasura-user-id"]


@pytest.mark.parametrize("claim", ROLE_CLAIMS)
@pytest.mark.parametrize("junk", JUNK, ids=repr)
@pytest.mark.parametrize("mapped", [False, True], ids=["namespace", "claims_map"])
def test_junk_in_every_claim_gives_a_clean_error(claim: str, junk: Any, mapped: bool) -> None:
    """jwt_tool -M er: null, true, false, 0, strings... in each claim -> 401-class error, never a crash."""
    claims = hasura()
    claims[claim] = junk
    if mapped:
        cfg = config(claims_map={name: {"path": f"$.c['{name}']"} for name in ROLE_CLAIMS})
        body: dict[str, Any] = {"c": claims}
    else:
        cfg, body = DEFAULT, {NAMESPACE: claims}
    if claim == "x-hasura-user-id" and junk == "":
        assert extract_hasura_claims(body, cfg).session_variables["x-hasura-user-id"] == ""
        return
    if claim == "x-hasura-allowed-roles" and junk == []:
        # An empty role list is well-formed (as in Hasura); no role can be selected from it.
        with pytest.raises(RoleNotAllowed):
            select_role(extract_hasura_claims(body, cfg), None)
        return
    with pytest.raises((InvalidJWTClaims, MissingRoleClaims)) as info:
        extract_hasura_claims(body, cfg)
    assert info.value.status == 401


@pytest.mark.parametrize("junk", JUNK, ids=repr)
def test_junk_namespace_gives_a_clean_error(junk: Any) -> None:
    with pytest.raises((InvalidJWTClaims, MissingRoleClaims)):
        extract_hasura_claims({NAMESPACE: junk}, DEFAULT)


CLAIMS = HasuraClaims(allowed_roles=("user", "editor"), default_role="user", session_variables={})


@pytest.mark.parametrize(
    ("claims", "requested", "expected"),
    [
        (CLAIMS, None, "user"),
        (CLAIMS, "editor", "editor"),
        (CLAIMS, "user", "user"),
    ],
)
def test_select_role(claims: HasuraClaims, requested: str | None, expected: str) -> None:
    assert select_role(claims, requested) == expected


@pytest.mark.parametrize(
    ("claims", "requested"),
    [
        (CLAIMS, "admin"),
        (CLAIMS, "Editor"),
        (CLAIMS, ""),
        (HasuraClaims(allowed_roles=("editor",), default_role="user", session_variables={}), None),
        (HasuraClaims(allowed_roles=(), default_role="user", session_variables={}), "user"),
    ],
)
def test_select_role_not_allowed(claims: HasuraClaims, requested: str | None) -> None:
    with pytest.raises(RoleNotAllowed) as info:
        select_role(claims, requested)
    assert info.value.status == 403
    assert info.value.code == "access-denied"


# The messages reach the client (GraphQL error body): each condition has its own, exactly.
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (hasura(), "invalid claims: claims_format is stringified_json but the claims are not a string"),
        (None, "invalid claims: claims_format is stringified_json but the claims are not a string"),
        ("{not json", "invalid claims: the stringified claims are not valid JSON"),
        ("[" * 5000 + "]" * 5000, "invalid claims: the stringified claims are not valid JSON"),
        ("[1, 2]", "invalid claims: the Hasura claims should be a JSON object"),
    ],
)
def test_stringified_json_error_messages(value: Any, message: str) -> None:
    with pytest.raises(InvalidJWTClaims) as info:
        extract_hasura_claims({NAMESPACE: value}, config(claims_format="stringified_json"))
    assert info.value.message == message


def test_claims_map_literal_before_paths_does_not_end_the_map() -> None:
    """A literal entry is one session variable among others: the entries after it are still read."""
    claims_map = {
        "x-hasura-tenant": "acme",
        "x-hasura-allowed-roles": {"path": "$.roles"},
        "x-hasura-default-role": {"path": "$.role"},
        "x-hasura-user-id": {"path": "$.sub"},
    }
    claims = extract_hasura_claims({"roles": ["user"], "role": "user", "sub": "u1"}, config(claims_map=claims_map))
    assert claims == HasuraClaims(
        allowed_roles=("user",),
        default_role="user",
        session_variables={"x-hasura-tenant": "acme", "x-hasura-user-id": "u1"},
    )


@pytest.mark.parametrize(
    ("claims_map", "missing"),
    [
        ({"x-hasura-default-role": "user", "x-hasura-user-id": "u1"}, "x-hasura-allowed-roles"),
        ({"x-hasura-allowed-roles": ["user"], "x-hasura-user-id": "u1"}, "x-hasura-default-role"),
        ({"x-hasura-user-id": "u1"}, "x-hasura-allowed-roles"),
    ],
)
def test_hand_built_claims_map_without_a_role_claim_names_the_missing_one(
    claims_map: dict[str, Any], missing: str
) -> None:
    """parse_jwt_secret refuses such a map; a JWTConfig built directly still gets a clean error naming the claim."""
    with pytest.raises(MissingRoleClaims) as info:
        extract_hasura_claims({"sub": "u1"}, JWTConfig(type="HS256", key=HS_KEY, claims_map=claims_map))
    assert info.value.message == f"JWT claim does not contain {missing}"


@pytest.mark.parametrize(
    ("length", "shown_suffix"),
    [(100, ""), (101, "..."), (5000, "...")],
)
def test_claim_names_in_messages_are_cut_at_100_characters(length: int, shown_suffix: str) -> None:
    """Claim names are attacker-chosen: a message shows at most 100 characters of one, then '...'."""
    name = "x-hasura-" + "n" * (length - len("x-hasura-"))
    with pytest.raises(InvalidJWTClaims) as info:
        extract_hasura_claims({NAMESPACE: hasura(**{name: 7})}, DEFAULT)
    shown = name[:100] + shown_suffix
    assert info.value.message == f"invalid {shown}; the value of a session variable should be a string"
    with pytest.raises(InvalidJWTClaims) as info:
        extract_hasura_claims({NAMESPACE: hasura(**{name: "a", name.upper(): "b"})}, DEFAULT)
    assert info.value.message == f"invalid claims: {shown} is given more than once"
