"""parse_jwt_secret: Hasura's HASURA_GRAPHQL_JWT_SECRET, valid and invalid."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from edge.auth.jwt_config import DEFAULT_CLAIMS_NAMESPACE, HeaderLocation, JWTConfig, parse_jwt_secret

from .helpers import HS_KEY, KeyPair, ec_pair, ed_pair, rsa_pair

RSA = rsa_pair()
EC = ec_pair()
ED = ed_pair()


def _certificate(pair: KeyPair) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pair.private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(pair.private, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode()


CLAIMS_MAP = {
    "x-hasura-allowed-roles": {"path": "$.roles"},
    "x-hasura-default-role": {"path": "$.role", "default": "user"},
    "X-Hasura-User-Id": {"path": "$['user.id']"},
    "x-hasura-tenant": "acme",
}


def test_minimal_hs256_string() -> None:
    (config,) = parse_jwt_secret(json.dumps({"type": "HS256", "key": HS_KEY}))
    assert config == JWTConfig(type="HS256", key=HS_KEY)
    assert config.claims_namespace == DEFAULT_CLAIMS_NAMESPACE
    assert config.claims_format == "json"
    assert config.header == HeaderLocation("Authorization", None)
    assert config.allowed_skew == 0
    assert config.audience is None and config.issuer is None
    assert config.algorithms() == ("HS256",)


def test_key_never_in_repr() -> None:
    (config,) = parse_jwt_secret({"type": "HS512", "key": HS_KEY})
    assert HS_KEY not in repr(config)
    assert hash(config)  # hashable despite the claims_map field


def test_list_of_configs() -> None:
    configs = parse_jwt_secret(
        json.dumps(
            [
                {"type": "HS256", "key": HS_KEY, "issuer": "a"},
                {"type": "RS256", "key": RSA.public_pem, "issuer": "b", "audience": "api"},
                {"jwk_url": "https://idp.example/.well-known/jwks.json", "issuer": "c"},
            ]
        )
    )
    assert [c.issuer for c in configs] == ["a", "b", "c"]
    assert configs[1].audience == ("api",)
    assert configs[2].jwk_url == "https://idp.example/.well-known/jwks.json"


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ({"type": "RS256", "key": RSA.public_pem}, {"algorithms": ("RS256",)}),
        ({"type": "RS512", "key": _certificate(RSA)}, {"algorithms": ("RS512",)}),
        ({"type": "ES256", "key": EC.public_pem}, {"algorithms": ("ES256",)}),
        ({"type": "Ed25519", "key": ED.public_pem}, {"algorithms": ("EdDSA",)}),
        (
            {"jwk_url": "http://127.0.0.1:9/jwks"},
            {"algorithms": ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA")},
        ),
        ({"jwk_url": "https://idp/jwks", "type": "ES256"}, {"algorithms": ("ES256",)}),
        (
            {"type": "HS256", "key": HS_KEY, "claims_namespace_path": "$.hasura['claims']"},
            {"claims_namespace_path": "$.hasura['claims']"},
        ),
        (
            {"type": "HS256", "key": HS_KEY, "claims_namespace": "hasura", "claims_format": "stringified_json"},
            {"claims_namespace": "hasura", "claims_format": "stringified_json"},
        ),
        ({"type": "HS256", "key": HS_KEY, "audience": ["a", "b"]}, {"audience": ("a", "b")}),
        ({"type": "HS256", "key": HS_KEY, "allowed_skew": 60}, {"allowed_skew": 60.0}),
        (
            {"type": "HS256", "key": HS_KEY, "header": {"type": "Cookie", "name": "token"}},
            {"header": HeaderLocation("Cookie", "token")},
        ),
        (
            {"type": "HS256", "key": HS_KEY, "header": {"type": "CustomHeader", "name": "x-token"}},
            {"header": HeaderLocation("CustomHeader", "x-token")},
        ),
    ],
)
def test_valid_configs(secret: dict[str, Any], expected: dict[str, Any]) -> None:
    (config,) = parse_jwt_secret(secret)
    for name, value in expected.items():
        actual = config.algorithms() if name == "algorithms" else getattr(config, name)
        assert actual == value
    assert "none" not in {alg.lower() for alg in config.algorithms()}


def test_claims_map_is_normalised() -> None:
    (config,) = parse_jwt_secret({"type": "HS256", "key": HS_KEY, "claims_map": CLAIMS_MAP})
    assert config.claims_map is not None
    assert set(config.claims_map) == {
        "x-hasura-allowed-roles",
        "x-hasura-default-role",
        "x-hasura-user-id",
        "x-hasura-tenant",
    }


SHORT = "short-secret"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("{not json", "not valid JSON"),
        ("42", "JSON object or a list"),
        ([], "empty"),
        ([{"type": "HS256", "key": HS_KEY}, "x"], "config #1"),
        ({}, "key and jwk_url both cannot be empty"),
        ({"type": "HS256"}, "key and jwk_url both cannot be empty"),
        ({"type": "RS256", "key": RSA.public_pem, "jwk_url": "https://x/jwks"}, "key, jwk_url both cannot be present"),
        ({"key": HS_KEY}, "type is required"),
        ({"type": "none", "key": HS_KEY}, "unknown type"),
        ({"type": "NONE", "key": HS_KEY}, "unknown type"),
        ({"type": "hs256", "key": HS_KEY}, "unknown type"),
        ({"type": "HS1024", "key": HS_KEY}, "unknown type"),
        ({"type": "PS256", "key": RSA.public_pem}, "unknown type"),
        ({"type": "HS256", "key": SHORT}, "at least 32 bytes"),
        ({"type": "HS256", "key": ""}, "non-empty string"),
        ({"type": "HS256", "key": 12345678901234567890123456789012345}, "non-empty string"),
        ({"type": "HS256", "key": RSA.public_pem}, "not a PEM"),
        ({"type": "RS256", "key": "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----"}, "PEM"),
        ({"type": "RS256", "key": EC.public_pem}, "RSA public key"),
        ({"type": "ES256", "key": RSA.public_pem}, "EC public key"),
        ({"type": "ES384", "key": EC.public_pem}, "curve"),
        ({"type": "Ed25519", "key": EC.public_pem}, "Ed25519"),
        ({"type": "RS256", "key": rsa_pair(1024).public_pem}, "2048"),
        ({"jwk_url": "ftp://idp/jwks"}, "http(s)"),
        ({"jwk_url": "/jwks"}, "http(s)"),
        ({"jwk_url": "http://idp:99999/jwks"}, "http(s)"),
        ({"jwk_url": 5}, "must be a string"),
        ({"jwk_url": "https://idp/jwks", "type": "HS256"}, "HS type"),
        (
            {"type": "HS256", "key": HS_KEY, "claims_namespace": "a", "claims_namespace_path": "$.a"},
            "both cannot be set",
        ),
        ({"type": "HS256", "key": HS_KEY, "claims_namespace_path": "$.a[?(@.x)]"}, "claims_namespace_path: invalid"),
        ({"type": "HS256", "key": HS_KEY, "claims_namespace_path": "a..b"}, "claims_namespace_path: invalid JSON"),
        ({"type": "HS256", "key": HS_KEY, "claims_format": "xml"}, "claims_format"),
        ({"type": "HS256", "key": HS_KEY, "claims_map": {"x-hasura-default-role": "user"}}, "allowed-roles"),
        ({"type": "HS256", "key": HS_KEY, "claims_map": {"x-hasura-allowed-roles": ["u"]}}, "default-role"),
        (
            {"type": "HS256", "key": HS_KEY, "claims_map": {**CLAIMS_MAP, "x-hasura-org": {"path": "$$"}}},
            "claims_map: x-hasura-org: invalid JSON path",
        ),
        (
            {"type": "HS256", "key": HS_KEY, "claims_map": {**CLAIMS_MAP, "user-id": "1"}},
            "session variables",
        ),
        (
            {"type": "HS256", "key": HS_KEY, "claims_map": {**CLAIMS_MAP, "x-hasura-allowed-roles": "user"}},
            "list of role names",
        ),
        (
            {"type": "HS256", "key": HS_KEY, "claims_map": {**CLAIMS_MAP, "x-hasura-org": {"default": "1"}}},
            "literal or",
        ),
        (
            {"type": "HS256", "key": HS_KEY, "claims_map": {**CLAIMS_MAP, "x-hasura-org": 7}},
            "must be a string",
        ),
        ({"type": "HS256", "key": HS_KEY, "audience": []}, "audience"),
        ({"type": "HS256", "key": HS_KEY, "audience": ["a", 1]}, "audience"),
        ({"type": "HS256", "key": HS_KEY, "issuer": ""}, "issuer"),
        ({"type": "HS256", "key": HS_KEY, "issuer": ["a"]}, "issuer"),
        ({"type": "HS256", "key": HS_KEY, "allowed_skew": -1}, "allowed_skew"),
        ({"type": "HS256", "key": HS_KEY, "allowed_skew": "10"}, "allowed_skew"),
        ({"type": "HS256", "key": HS_KEY, "allowed_skew": True}, "allowed_skew"),
        ({"type": "HS256", "key": HS_KEY, "header": {"type": "Cookie"}}, "needs a non-empty name"),
        ({"type": "HS256", "key": HS_KEY, "header": {"type": "Query", "name": "t"}}, "header type"),
        ({"type": "HS256", "key": HS_KEY, "header": "Authorization"}, "header must be"),
        ({"type": "HS256", "key": HS_KEY, "issuers": "typo"}, "unknown field(s): issuers"),
    ],
)
def test_invalid_configs(secret: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^EDGE_JWT_SECRET") as info:
        parse_jwt_secret(secret)
    text = str(info.value)
    assert message in text
    for material in (HS_KEY, SHORT, RSA.public_pem, EC.public_pem, "not a key"):
        assert material not in text
    assert info.value.__cause__ is None  # no chained parser error that could quote the key


def test_invalid_json_message_does_not_quote_the_key() -> None:
    with pytest.raises(ValueError) as info:
        parse_jwt_secret('{"type": "HS256", "key": "' + HS_KEY + '"')
    assert HS_KEY not in str(info.value)
