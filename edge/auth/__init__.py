"""JWT authentication core: config parsing, key sets, signature/claims verification, Hasura claims.

Pure logic plus one I/O seam (the JWKS fetch through an injected ``httpx.AsyncClient``); the
ASGI adapter that reads headers and maps errors to HTTP lives elsewhere.
"""

from __future__ import annotations

from edge.auth.claims import HasuraClaims, extract_hasura_claims, select_role
from edge.auth.jwks import JWKSCache, VerificationKey
from edge.auth.jwt_config import HeaderLocation, JWTConfig, parse_jwt_secret
from edge.auth.jwt_verifier import JWTVerifier, VerifiedToken

__all__ = [
    "HasuraClaims",
    "HeaderLocation",
    "JWKSCache",
    "JWTConfig",
    "JWTVerifier",
    "VerificationKey",
    "VerifiedToken",
    "extract_hasura_claims",
    "parse_jwt_secret",
    "select_role",
]
