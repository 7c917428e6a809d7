"""API keys: ``X-API-Key: hek_<key_id>_<secret>``, stored as a SHA-256 hash in ``edge.api_keys``.

* :mod:`edge.keys.key_format`: the format, generation, parsing and hash (why a fast unsalted hash is right);
* :mod:`edge.keys.model`: :class:`ApiKey` and the rules for new keys;
* :mod:`edge.keys.repository`: Postgres access (create, find, list, revoke, rotate with a grace period);
* :mod:`edge.keys.store`: :class:`ApiKeyStore`, the cached, single-flight resolution the pipeline calls;
* :mod:`edge.keys.cli`: ``python -m edge keys create|list|revoke|rotate``;
* :mod:`edge.keys.errors`: ``invalid-api-key``, ``api-key-revoked``, ``api-key-expired`` (401) and
  ``api-key-store-unavailable`` (503).

Keys are read from a header only, never from the query string, and compared in constant time.
"""

from edge.keys.errors import (
    ApiKeyNotFound,
    ApiKeyStoreUnavailable,
    ApiKeyValidationError,
    ExpiredApiKey,
    InvalidApiKey,
    RevokedApiKey,
    UnknownPlan,
)
from edge.keys.key_format import ParsedKey, generate_key, hash_key, parse_key
from edge.keys.model import ApiKey
from edge.keys.repository import DEFAULT_ROTATION_GRACE, ApiKeyRepository, create_pool, open_repository
from edge.keys.store import ApiKeyLookup, ApiKeyStore

__all__ = [
    "DEFAULT_ROTATION_GRACE",
    "ApiKey",
    "ApiKeyLookup",
    "ApiKeyNotFound",
    "ApiKeyRepository",
    "ApiKeyStore",
    "ApiKeyStoreUnavailable",
    "ApiKeyValidationError",
    "ExpiredApiKey",
    "InvalidApiKey",
    "ParsedKey",
    "RevokedApiKey",
    "UnknownPlan",
    "create_pool",
    "generate_key",
    "hash_key",
    "open_repository",
    "parse_key",
]
