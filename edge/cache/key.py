"""The response cache key: who asked what, hashed.

``cache_key`` is the SHA-256 (hex) of one canonical orjson encoding (sorted keys at every level) of the
normalised document, the operation name, the variables (``None`` and ``{}`` are the same request), the
role, **every** session variable, and any request headers the caller names (``vary``).

Why every session variable, when Hasura EE keys only on the session variables the query's permissions
use: the edge cannot see Hasura's permissions, and any variable might be referenced by a permission, a
column preset, a computed field's session argument or an action handler. Leaving one out could serve one
user's rows to another. With all of them in the key two identities share an entry only when Hasura would
see exactly the same session, i.e. when Hasura itself could not tell them apart. The price is fewer hits
for queries that do not depend on the user; a rule or directive cannot loosen this.

``vary`` is for request headers that reach Hasura and can change its answer (actions and remote schemas
with ``forward_client_headers``, e.g. ``cookie``): their values are part of the key too.

    >>> a = cache_key("query Q {\\n  a\\n}", "Q", None, "user", {"x-hasura-user-id": "1", "x-hasura-org-id": "7"})
    >>> a == cache_key("query Q {\\n  a\\n}", "Q", {}, "user", {"x-hasura-org-id": "7", "x-hasura-user-id": "1"})
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

__all__ = ["KEY_VERSION", "cache_key"]

KEY_VERSION: Final = 1
"""Bumped when the encoding changes, so old entries are simply never found again."""

# Canonical encoding -> its SHA-256. A cached query is asked for again and again with the same
# variables and session, and OpenSSL's setup per digest costs far more than hashing a few hundred
# bytes ("The cache-hit path" in docs/benchmarks.md). Bounded: emptied when full.
_DIGESTS: Final[dict[bytes, str]] = {}
_DIGESTS_MAX: Final = 4096


def cache_key(
    normalised_document: str,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    role: str,
    session_variables: Mapping[str, str],
    *,
    vary: Mapping[str, str] | None = None,
) -> str:
    """64 hex characters. Raises TypeError when the variables cannot be encoded as JSON."""
    canonical = {
        "k": KEY_VERSION,
        "document": normalised_document,
        "operation": operation_name,
        "variables": dict(variables) if variables else {},
        "role": role,
        "session": {name.lower(): value for name, value in session_variables.items()},
        "vary": {name.lower(): value for name, value in vary.items()} if vary else {},
    }
    try:
        encoded = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as error:
        raise TypeError(f"the request cannot be keyed: {error}") from None
    digest = _DIGESTS.get(encoded)
    if digest is None:
        digest = hashlib.sha256(encoded).hexdigest()
        if len(_DIGESTS) >= _DIGESTS_MAX:
            _DIGESTS.clear()
        _DIGESTS[encoded] = digest
    return digest
