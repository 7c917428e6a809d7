"""Mint real JWTs for tests (python-jose), with Hasura claims by default."""

from __future__ import annotations

import json
import time
from typing import Any

from jose import jwt

HS256_KEY = "test-only-hs256-key-0123456789abcdef-0123456789abcdef"
JWT_SECRET_JSON = json.dumps({"type": "HS256", "key": HS256_KEY})
NAMESPACE = "https://hasura.io/jwt/claims"


def hasura_claims(
    user_id: str = "user-1",
    *,
    default_role: str = "user",
    allowed_roles: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "x-hasura-allowed-roles": allowed_roles if allowed_roles is not None else ["user", "editor"],
        "x-hasura-default-role": default_role,
        "x-hasura-user-id": user_id,
    }
    claims.update(extra)
    return claims


def mint(
    claims: dict[str, Any] | None = None,
    *,
    key: str = HS256_KEY,
    algorithm: str = "HS256",
    expires_in: float | None = 300,
    headers: dict[str, Any] | None = None,
    **registered: Any,
) -> str:
    body: dict[str, Any] = {"sub": "user-1", "iat": int(time.time())}
    if expires_in is not None:
        body["exp"] = int(time.time() + expires_in)
    body[NAMESPACE] = claims if claims is not None else hasura_claims()
    body.update(registered)
    return str(jwt.encode(body, key, algorithm=algorithm, headers=headers))
