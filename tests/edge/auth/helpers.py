"""Key pairs, token minting/forging and a counting JWKS server for the auth tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jose import jwt

NAMESPACE = "https://hasura.io/jwt/claims"
HS_KEY = "0123456789abcdef0123456789abcdef-test-only"
NOW = 1_800_000_000.0


def b64(data: bytes | str | dict[str, Any]) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_int(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class KeyPair:
    alg: str
    private_pem: str = field(repr=False)
    public_pem: str
    public_jwk: dict[str, Any]
    private: Any = field(repr=False)

    def jwk(self, kid: str | None = None, **extra: Any) -> dict[str, Any]:
        result = dict(self.public_jwk)
        if kid is not None:
            result["kid"] = kid
        result.update(extra)
        return result


def _pems(private: Any) -> tuple[str, str]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def rsa_pair(bits: int = 2048) -> KeyPair:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b64_int(numbers.n), "e": b64_int(numbers.e)}
    return KeyPair("RS256", *_pems(private), jwk, private)


def ec_pair(curve: ec.EllipticCurve | None = None, alg: str = "ES256", crv: str = "P-256") -> KeyPair:
    private = ec.generate_private_key(curve or ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    size = (private.curve.key_size + 7) // 8
    jwk = {
        "kty": "EC",
        "crv": crv,
        "x": b64(numbers.x.to_bytes(size, "big")),
        "y": b64(numbers.y.to_bytes(size, "big")),
    }
    return KeyPair(alg, *_pems(private), jwk, private)


def ed_pair() -> KeyPair:
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KeyPair("EdDSA", *_pems(private), {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}, private)


def hasura(
    allowed: Any = ("user", "editor"), default: Any = "user", user_id: Any = "42", **extra: Any
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "x-hasura-allowed-roles": list(allowed) if isinstance(allowed, tuple) else allowed,
        "x-hasura-default-role": default,
        "x-hasura-user-id": user_id,
    }
    claims.update(extra)
    return claims


def payload(exp: Any = NOW + 300, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"sub": "42", "iat": int(NOW) - 10, NAMESPACE: hasura()}
    if exp is not None:
        body["exp"] = exp
    body.update(extra)
    return body


def mint(
    body: dict[str, Any],
    *,
    key: str | KeyPair = HS_KEY,
    alg: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    """A correctly signed token (python-jose, or by hand for EdDSA which jose cannot sign)."""
    if isinstance(key, KeyPair):
        if key.alg == "EdDSA":
            header = {"alg": "EdDSA", "typ": "JWT", **(headers or {})}
            signing_input = f"{b64(header)}.{b64(body)}"
            return f"{signing_input}.{b64(key.private.sign(signing_input.encode()))}"
        return str(jwt.encode(body, key.private_pem, algorithm=alg, headers=headers))
    return str(jwt.encode(body, key, algorithm=alg, headers=headers))


def forge(header: dict[str, Any], body: dict[str, Any] | str, signature: bytes | str = b"") -> str:
    """A token with arbitrary header/payload/signature (no checks, no signing)."""
    sig = signature if isinstance(signature, str) else b64(signature)
    raw_body = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return f"{b64(header)}.{b64(raw_body)}.{sig}"


def hs_sign(header: dict[str, Any], body: dict[str, Any], secret: bytes) -> str:
    """HMAC-SHA256 by hand, with any secret (python-jose refuses PEM and empty ones, attackers do not)."""
    signing_input = f"{b64(header)}.{b64(body)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


class Clock:
    """A settable clock: ``clock()`` returns ``clock.now``."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class JWKSApp:
    """A tiny ASGI app serving a mutable JWKS response and counting requests."""

    body: bytes = b'{"keys": []}'
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    hits: int = 0
    on_request: Callable[[], None] | None = None

    def serve_keys(self, *jwks: dict[str, Any], cache_control: str | None = None) -> None:
        self.body = json.dumps({"keys": list(jwks)}).encode()
        self.status = 200
        self.headers = [] if cache_control is None else [(b"cache-control", cache_control.encode())]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.hits += 1
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json"), *self.headers],
            }
        )
        await send({"type": "http.response.body", "body": self.body})
